//! Immuni's errors, exactly as the real backend answers them.
//!
//! The body is `{"error_code": N, "message": "..."}` with
//! `Content-Type: application/json; charset=utf-8`, nothing else: real clients
//! parse it. Where the simulator knows more than the real backend would say (which
//! field, which TEK), it adds an `X-Ecosim-Detail` header, never a body field.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Immuni's JSON content type.
pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";

/// An Immuni error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmuniError {
    kind: Kind,
    detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unknown,
    Schema,
    UnauthorizedOtp,
    NoDgc,
    OtpCollision,
    /// Any other status the backend (or the proxy in front of it) answers, with the
    /// unknown-error body.
    Other(StatusCode),
}

impl ImmuniError {
    /// 500 / 1000 "An unknown error occurred."
    pub fn unknown() -> Self {
        Self { kind: Kind::Unknown, detail: None }
    }
    /// 400 / 1001 "Request not compliant with the defined schema."
    pub fn schema(detail: impl Into<String>) -> Self {
        Self { kind: Kind::Schema, detail: Some(detail.into()) }
    }
    /// 401 / 1101 "Unauthorized OTP."
    pub fn unauthorized_otp() -> Self {
        Self { kind: Kind::UnauthorizedOtp, detail: None }
    }
    /// 404 / 1102 "No DGC found."
    pub fn no_dgc() -> Self {
        Self { kind: Kind::NoDgc, detail: None }
    }
    /// 409 / 1400 "OTP already authorized."
    pub fn otp_collision() -> Self {
        Self { kind: Kind::OtpCollision, detail: None }
    }

    /// The error Immuni answers with `status`: its own code where it has one (400,
    /// 401, 404, 409; a body over the limit is a schema error, 400), otherwise
    /// `status` with the unknown-error body (1000).
    pub fn for_status(status: StatusCode) -> Self {
        let kind = match status.as_u16() {
            400 | 413 => Kind::Schema,
            401 => Kind::UnauthorizedOtp,
            404 => Kind::NoDgc,
            409 => Kind::OtpCollision,
            500 => Kind::Unknown,
            _ => Kind::Other(status),
        };
        Self { kind, detail: None }
    }

    /// What the web framework's own refusals become (an unknown route 404, a method
    /// a route does not take 405): that status with the unknown-error body (1000),
    /// as the real backend's handler for any `SanicException` answers.
    pub fn framework(status: StatusCode) -> Self {
        Self { kind: Kind::Other(status), detail: None }
    }

    /// Adds what the simulator knows (sent as `X-Ecosim-Detail`).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Status, error code and message.
    pub fn parts(&self) -> (StatusCode, u16, &'static str) {
        match self.kind {
            Kind::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, 1000, "An unknown error occurred."),
            Kind::Schema => (StatusCode::BAD_REQUEST, 1001, "Request not compliant with the defined schema."),
            Kind::UnauthorizedOtp => (StatusCode::UNAUTHORIZED, 1101, "Unauthorized OTP."),
            Kind::NoDgc => (StatusCode::NOT_FOUND, 1102, "No DGC found."),
            Kind::OtpCollision => (StatusCode::CONFLICT, 1400, "OTP already authorized."),
            Kind::Other(status) => (status, 1000, "An unknown error occurred."),
        }
    }
}

impl IntoResponse for ImmuniError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        // Immuni's own shape, key order and all: {"error_code","message"}.
        #[derive(serde::Serialize)]
        struct Body {
            error_code: u16,
            message: &'static str,
        }
        let body = serde_json::to_string(&Body { error_code: code, message }).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(detail) = self.detail
            && let Ok(v) = HeaderValue::from_str(&detail.replace(['\r', '\n'], " "))
        {
            h.insert("x-ecosim-detail", v);
        }
        res
    }
}

impl From<ecosim_core::store::StoreError> for ImmuniError {
    fn from(e: ecosim_core::store::StoreError) -> Self {
        tracing::error!(error = %e, "immuni store failure");
        Self::unknown()
    }
}

impl From<rusqlite::Error> for ImmuniError {
    fn from(e: rusqlite::Error) -> Self {
        ecosim_core::store::StoreError::from(e).into()
    }
}

/// The 204 every successful call answers: empty body, no caching.
pub(crate) fn no_content() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The IMM-ERR mutant (`ecosim mutants`): every error answered as problem+json
/// instead of Immuni's `{"error_code","message"}`.
pub(crate) async fn as_problem(res: Response) -> Response {
    if res.status().is_success() {
        return res;
    }
    let status = res.status();
    ecosim_core::Problem::new(status, "error", status.canonical_reason().unwrap_or("error")).into_response()
}
