//! Immuni's endpoints, one file per service: the OTP service (`/v1/otp`, called by
//! Sistema TS), the exposure-ingestion service the app calls (`/v1/ingestion/*`),
//! the green-certificate retrieval, and the uploads for assertions.

pub(crate) mod admin;
pub(crate) mod dgc;
pub(crate) mod ingestion;
pub(crate) mod otp;

/// An answer in Immuni's own error format.
pub(crate) type Answer = Result<axum::response::Response, crate::error::ImmuniError>;
