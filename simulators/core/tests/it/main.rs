//! Integration tests of ecosim-core: one binary, a module per area.

mod codes;
mod http;
mod population;
