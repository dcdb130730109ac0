//! Sistema TS's rules, as plain functions.

pub mod test_result;
pub mod vaccinazioni;
