//! The HTTP client one system uses to call another.
//!
//! Simulators talk over HTTP, never by calling each other's functions, through the
//! base URLs of the configuration, so any of them can be replaced by a real system.
//! Plain HTTP only (the ecosystem runs on loopback): no TLS stack is compiled in.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};

use crate::accounts::Account;

/// How long a client keeps an idle pooled connection: under the servers' idle limit
/// (`[connections] header_timeout`, 10 s by default), so a connection is never reused
/// just as the server closes it.
pub const POOL_IDLE: Duration = Duration::from_secs(5);

/// A pooled client for calls between systems (keep-alive, 10 s timeout, no proxy).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Calls one system as one account.
#[derive(Debug, Clone)]
pub struct SystemClient {
    http: reqwest::Client,
    base: String,
    account: Option<(String, String)>,
}

impl SystemClient {
    /// A client of the system at `base_url`, authenticating as `account` (HTTP Basic).
    pub fn new(http: reqwest::Client, base_url: &str, account: Option<&Account>) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            account: account.map(|a| (a.name.clone(), a.password.clone())),
        }
    }

    /// The same system, as another account.
    pub fn as_account(&self, account: &Account) -> Self {
        Self { account: Some((account.name.clone(), account.password.clone())), ..self.clone() }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` (starting with `/`), with the account's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.account {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }
}

/// The `Retry-After` of a response, when given in seconds.
pub fn retry_after(res: &Response) -> Option<Duration> {
    res.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What a delivery attempt over HTTP came to, for an outbox: 2xx done; 408, 425,
/// 429, 5xx and connection failures retried (honouring `Retry-After`); any other
/// status refused for good.
pub async fn outcome_of(result: reqwest::Result<Response>) -> crate::outbox::Outcome {
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
