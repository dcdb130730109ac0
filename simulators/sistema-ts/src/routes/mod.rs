//! HTTP routes of Sistema TS.

pub(crate) mod test_results;
