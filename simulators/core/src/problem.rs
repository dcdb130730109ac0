//! RFC 9457 `application/problem+json` errors, and a JSON extractor that produces them.
//!
//! Every designed API of ecosim answers errors as
//! `{type, title, status, detail, errors: [{field, message}], requirement?}`:
//! the field is named, and so is the requirement id where one applies.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use ecosim_domain::validation::{FieldError, Fields, Invalid, parse_date};

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer (boxed, so `Result<T, Problem>` stays small).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

/// The members of a problem document.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProblemDetails {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Field-level complaints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The requirement id the refusal enforces (`ORD-3.1a`, `AVR-5a`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// Seconds the client should wait (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// Members of a kind of problem (`regola`, `messaggio`...).
    #[serde(flatten)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)?;
        for e in &self.errors {
            write!(f, "; {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

impl Problem {
    /// A problem of `status` with a slug naming its kind.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDetails {
            kind: format!("urn:ecosim:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            requirement: None,
            retry_after: None,
            extensions: serde_json::Map::new(),
        }))
    }

    /// 400: a malformed field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// 400: one or more malformed fields.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut p = Self::new(StatusCode::BAD_REQUEST, "invalid-request", format!("invalid: {}", fields.join(", ")));
        p.errors = errors;
        p
    }

    /// 422: well formed, but against a rule.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rule-violated", detail)
    }

    /// 401 with a Basic challenge.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: authenticated, not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 500, for failures of ecosim itself (never for bad input).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// Adds a field complaint.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError { field: field.into(), message: message.into() });
        self
    }

    /// Names the requirement the refusal enforces.
    pub fn with_requirement(mut self, id: impl Into<String>) -> Self {
        self.requirement = Some(id.into());
        self
    }

    /// Adds a member of this kind of problem (`"regola": "AVR-5a"`).
    pub fn with_extension(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ecosim\""));
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::internal(format!("storage failure: {e}"))
    }
}

impl From<rusqlite::Error> for Problem {
    fn from(e: rusqlite::Error) -> Self {
        crate::store::StoreError::from(e).into()
    }
}

impl From<Invalid> for Problem {
    /// 400 naming every field (with the requirement id, if the rule has one).
    fn from(invalid: Invalid) -> Self {
        let requirement = invalid.requirement.clone();
        let p = Self::invalid(invalid.errors);
        match requirement {
            Some(id) => p.with_requirement(id),
            None => p,
        }
    }
}

/// Deserialises JSON, naming the offending field on failure; anything but white
/// space after the JSON value is refused (`{...}garbage` is not a JSON document).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = from_json_value(de)?;
    de.end().map_err(|e| {
        let message = e.to_string();
        Problem::invalid_field("body", message.split(" at line ").next().unwrap_or(&message).to_owned())
    })?;
    Ok(value)
}

fn from_json_value<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at its parent (an unknown one at itself).
        let named = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let field = match named {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None if inner.is_syntax() || inner.is_eof() => "body".to_owned(),
            None => path,
        };
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        Problem::invalid_field(field, message)
    })
}

/// Whether `headers` say the body is JSON (`application/json` or `*+json`, any
/// parameters); 415 naming `Content-Type` if not (or if it is missing).
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as JSON with Content-Type: application/json",
        )
        .with_field("Content-Type", "must be application/json"))
    }
}

/// A JSON body extractor whose rejections are problem+json naming the field.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        from_json(&bytes).map(ApiJson)
    }
}

/// The raw bytes of a body declared JSON ([`require_json`] checked), for the routes
/// that need the bytes themselves (an `Idempotency-Key` fingerprint); parse them
/// with [`from_json`].
#[derive(Debug, Clone)]
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::invalid_field("body", format!("could not read the body: {e}")))?;
        Ok(Self(bytes))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        esito: String,
        contatti: Contatti,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Contatti {
        cellulare: ecosim_domain::codes::MobileNumber,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        esito: Option<String>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let p = from_json::<Body>(br#"{"esito":"POSITIVO","contatti":{"cellulare":"333 123"}}"#).unwrap_err();
        assert_eq!(p.status, 400);
        assert_eq!(p.errors[0].field, "contatti.cellulare");
        let p = from_json::<Body>(br#"{"contatti":{"cellulare":"3331234567"}}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "esito");
        let p = from_json::<Body>(br#"{"esito":"P","contatti":{}}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "contatti.cellulare");
        let p = from_json::<Strict>(br#"{"nome":"Mario"}"#).unwrap_err();
        assert_eq!(p.errors[0].field, "nome");
        let p = from_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(p.errors[0].field, "body");
    }

    #[test]
    fn anything_after_the_json_value_is_refused_but_white_space() {
        assert!(from_json::<Strict>(b"{\"esito\":\"P\"}  \r\n").is_ok());
        for trailing in [&b"{\"esito\":\"P\"}garbage"[..], b"{} {}", b"{}]", b"{}\0"] {
            let p = from_json::<Strict>(trailing).unwrap_err();
            assert_eq!((p.status, p.errors[0].field.as_str()), (400, "body"), "{p}");
            assert!(p.errors[0].message.contains("trailing"), "{p}");
        }
    }

    #[test]
    fn only_json_media_types_pass() {
        let with = |ct: Option<&str>| {
            let mut h = axum::http::HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("header"));
            }
            require_json(&h)
        };
        for ok in
            ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
        {
            assert!(with(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [None, Some("text/plain"), Some("image/png"), Some("application/x-www-form-urlencoded"), Some("")] {
            let p = with(bad).unwrap_err();
            assert_eq!((p.status, p.errors[0].field.as_str()), (415, "Content-Type"), "{bad:?}");
        }
    }
}
