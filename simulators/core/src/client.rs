//! The HTTP client one system uses to call another.
//!
//! Simulators talk over HTTP, never by calling each other's functions, through the
//! base URLs of the configuration, so any of them can be replaced by a real system.
//! Plain HTTP/1.1 only (the ecosystem runs on loopback): no TLS stack is compiled in.
//!
//! A thin layer over hyper's pooled client, not reqwest: reqwest parsed every URL
//! three times (its host through IDNA) and wrapped each call in redirect and retry
//! layers, a sixth of the SAR's work per CUN journey (#14). What it does not do, on
//! purpose: follow redirects (a 3xx is an answer like any other, and an outbox takes
//! it as a refusal), use a proxy, or decompress.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use hyper::{Method, StatusCode};

use crate::accounts::Account;

/// How long a client keeps an idle pooled connection: under the servers' idle limit
/// (`[connections] header_timeout`, 10 s by default), so a connection is never reused
/// just as the server closes it.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

/// How long a call may take, from sending to the last byte of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A pooled client for calls between systems (keep-alive, 10 s timeout, no proxy).
/// Cloning it shares the pool.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The pooled client (one per system: connections are kept per host).
pub fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .build(connector);
    Http { client }
}

impl Http {
    /// A request to the absolute `url`.
    pub fn request(&self, method: Method, url: impl Into<String>) -> RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        RequestBuilder {
            http: self.clone(),
            method,
            url: url.into(),
            headers,
            body: Ok(Bytes::new()),
            timeout: TIMEOUT,
        }
    }
}

/// Why a call came to nothing: not sent, no answer in time, or an answer that does
/// not read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(String);

impl ClientError {
    fn sending(url: &str, why: impl std::fmt::Display) -> Self {
        Self(format!("error sending request for url ({url}): {why}"))
    }
    fn reading(url: &str, why: impl std::fmt::Display) -> Self {
        Self(format!("error reading the answer from url ({url}): {why}"))
    }
}

/// An error with its causes, `a: b: c` (hyper's own says only "client error (Connect)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A request being built: headers, a JSON body, a query.
#[derive(Debug)]
pub struct RequestBuilder {
    http: Http,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Result<Bytes, String>,
    timeout: Duration,
}

impl RequestBuilder {
    /// How long this call may take, from sending to the last byte of the answer
    /// ([`TIMEOUT`] unless set: a load generator waits longer for a slow system).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets a header (an invalid name or value fails the call when sent).
    pub fn header<V: TryInto<HeaderValue>>(mut self, name: &str, value: V) -> Self {
        match (HeaderName::from_bytes(name.as_bytes()), value.try_into()) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => self.body = Err(format!("invalid header {name}")),
        }
        self
    }

    /// Sets an already-built header value (credentials).
    pub(crate) fn header_value(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// `value` as the JSON body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.body = self.body.map(|_| Bytes::from(bytes));
                self.headers.entry(header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
            }
            Err(e) => self.body = Err(format!("body not serializable: {e}")),
        }
        self
    }

    /// Appends `pairs` to the URL's query, form-encoded.
    pub fn query<T: Serialize + ?Sized>(mut self, pairs: &T) -> Self {
        match serde_urlencoded::to_string(pairs) {
            Ok(q) if q.is_empty() => {}
            Ok(q) => {
                self.url.push(if self.url.contains('?') { '&' } else { '?' });
                self.url.push_str(&q);
            }
            Err(e) => self.body = Err(format!("query not serializable: {e}")),
        }
        self
    }

    /// Sends it; the answer's head must come within its timeout ([`TIMEOUT`]).
    pub async fn send(self) -> Result<Response, ClientError> {
        let Self { http, method, url, headers, body, timeout } = self;
        let body = body.map_err(|e| ClientError::sending(&url, format!("builder error: {e}")))?;
        let uri = uri_of(&url).map_err(|e| ClientError::sending(&url, format!("builder error: {e}")))?;
        let mut req = hyper::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, http.client.request(req)).await {
            Ok(Ok(res)) => {
                let (head, body) = res.into_parts();
                Ok(Response { status: head.status, headers: head.headers, body, url, deadline })
            }
            Ok(Err(e)) => Err(ClientError::sending(&url, chain(&e))),
            Err(_) => Err(ClientError::sending(&url, "operation timed out")),
        }
    }
}

/// `url` as a request URI: parsed as it is when it is one (the usual case, and
/// cheap), else through the URL standard's parser, which percent-encodes what a URI
/// may not hold (a space, a non-ASCII letter).
fn uri_of(url: &str) -> Result<hyper::Uri, String> {
    match url.parse::<hyper::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Ok(uri),
        _ => {
            let parsed = url::Url::parse(url).map_err(|e| format!("{e}"))?;
            if parsed.scheme() != "http" {
                return Err(format!("scheme {} not supported (plain http only)", parsed.scheme()));
            }
            String::from(parsed).parse::<hyper::Uri>().map_err(|e| e.to_string())
        }
    }
}

/// An answer: status and headers read, the body still to come.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: hyper::body::Incoming,
    url: String,
    deadline: tokio::time::Instant,
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole body (within what is left of the call's timeout).
    pub async fn bytes(self) -> Result<Bytes, ClientError> {
        match tokio::time::timeout_at(self.deadline, self.body.collect()).await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(e)) => Err(ClientError::reading(&self.url, chain(&e))),
            Err(_) => Err(ClientError::reading(&self.url, "operation timed out")),
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub async fn text(self) -> Result<String, ClientError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The body as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let url = self.url.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::reading(&url, format!("error decoding body: {e}")))
    }
}

/// Calls one system as one account.
#[derive(Debug, Clone)]
pub struct SystemClient {
    http: Http,
    base: String,
    /// `Authorization: Basic ...`, encoded once.
    authorization: Option<HeaderValue>,
}

fn basic(account: &Account) -> Option<HeaderValue> {
    let mut value =
        HeaderValue::try_from(crate::accounts::basic_authorization(&account.name, &account.password)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl SystemClient {
    /// A client of the system at `base_url`, authenticating as `account` (HTTP Basic).
    pub fn new(http: Http, base_url: &str, account: Option<&Account>) -> Self {
        Self { http, base: base_url.trim_end_matches('/').to_owned(), authorization: account.and_then(basic) }
    }

    /// The same system, as another account.
    pub fn as_account(&self, account: &Account) -> Self {
        Self { authorization: basic(account), ..self.clone() }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`, with its query if any), with the
    /// account's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.authorization {
            Some(value) => req.header_value(header::AUTHORIZATION, value.clone()),
            None => req,
        }
    }
}

/// The `Retry-After` of a response, when given in seconds.
pub fn retry_after(res: &Response) -> Option<Duration> {
    res.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What a delivery attempt over HTTP came to, for an outbox: 2xx done; 408, 425,
/// 429, 5xx and connection failures retried (honouring `Retry-After`); any other
/// status refused for good.
pub async fn outcome_of(result: Result<Response, ClientError>) -> crate::outbox::Outcome {
    use crate::outbox::Outcome;
    match result {
        Ok(res) if res.status().is_success() => Outcome::Done,
        Ok(res) => {
            let status = res.status();
            let after = retry_after(&res);
            let body = res.text().await.unwrap_or_default();
            let error = format!("{status}: {}", body.chars().take(300).collect::<String>());
            if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
                Outcome::Retry { after, error }
            } else {
                Outcome::Failed(error)
            }
        }
        Err(e) => Outcome::Retry { after: None, error: e.to_string() },
    }
}

/// What an SMTP delivery attempt came to, for an outbox.
pub fn mail_outcome(result: Result<(), crate::mail::MailError>) -> crate::outbox::Outcome {
    use crate::mail::MailError;
    use crate::outbox::Outcome;
    match result {
        Ok(()) => Outcome::Done,
        Err(e @ (MailError::Io(_) | MailError::Transient(_))) => Outcome::Retry { after: None, error: e.to_string() },
        Err(e @ MailError::Permanent(_)) => Outcome::Failed(e.to_string()),
    }
}

/// A message as the SMS gateway's `POST /sms/v1/messages` takes it (fields in the
/// order the bytes on the wire have always had).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmsRequest<'a> {
    /// The sender alias (`sistema Ts`, `Min Salute`) or number.
    pub from: &'a str,
    /// The text.
    pub text: &'a str,
    /// The recipient, E.164.
    pub to: &'a str,
}
