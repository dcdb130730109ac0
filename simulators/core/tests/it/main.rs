//! Integration tests of ecosim-core: one binary, a module per area.

mod client;
mod hardening;
mod http;
