//! Integration tests of ecosim-core: one binary, a module per area.

mod hardening;
mod http;
