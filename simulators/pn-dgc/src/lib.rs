//! `ecosim-pn-dgc`: the Piattaforma Nazionale DGC simulator (green pass).

pub mod dcc;
pub mod signer;
