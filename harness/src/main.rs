//! The `ecosim` binary.
fn main() {}
