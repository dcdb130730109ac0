//! The gateway's rules, as plain functions: how a text is counted in segments, and
//! what a sender, a recipient and a callback may be.

pub mod encoding;
pub(crate) mod message;
