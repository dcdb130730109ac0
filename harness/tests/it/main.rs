//! Integration tests of the `ecosim` binary.
