//! The Immuni API's request rules, as the real backend checks them: the JSON schema
//! of each call and its headers ([`request`]), and the exposure keys ([`tek`]).

pub(crate) mod request;
pub mod tek;
