//! PN-DGC's rules, as plain functions: which events yield a certificate and when
//! ([`event`]), what the certificate says and how it is signed ([`dcc`], [`signer`]).

pub mod dcc;
pub mod event;
pub mod signer;
