//! The Immuni API's request rules, as the real backend checks them: the JSON schema
//! of each call and its headers ([`request`]), and the exposure keys ([`tek`]);
//! failed checks throttled per client ([`throttle`]).

pub(crate) mod request;
pub mod tek;
pub(crate) mod throttle;
