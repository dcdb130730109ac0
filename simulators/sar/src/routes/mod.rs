//! HTTP routes of the reference SAR.

pub(crate) mod esiti;
