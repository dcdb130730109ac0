//! The AVR's rules, as plain functions: the GIAVA manual's dose rules ([`rules`]) and
//! what a registration must hold ([`request`]).

pub(crate) mod request;
pub(crate) mod rules;
