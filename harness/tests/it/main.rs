//! Integration tests of the `ecosim` binary and the ecosystem it boots.

mod cli;
mod ecosystem;
