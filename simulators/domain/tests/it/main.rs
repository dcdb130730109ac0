//! Integration tests of ecosim-domain: one binary, a module per area.

mod codes;
mod population;
