//! HTTP routes of Sistema TS.

pub(crate) mod assistiti;
pub(crate) mod guarigioni;
pub(crate) mod his;
pub(crate) mod test_results;
pub(crate) mod unlock;
pub(crate) mod vaccinazioni;
