//! Sistema TS's rules, as plain functions.

pub(crate) mod registry;
pub mod test_result;
pub mod vaccinazioni;
