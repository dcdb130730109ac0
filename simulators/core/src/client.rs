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
    /// `base` parsed once: parsing a URL (its host through IDNA) cost more than the
    /// rest of building a request, and reqwest parses each twice more itself.
    parsed: Option<reqwest::Url>,
    account: Option<(String, String)>,
}

impl SystemClient {
    /// A client of the system at `base_url`, authenticating as `account` (HTTP Basic).
    pub fn new(http: reqwest::Client, base_url: &str, account: Option<&Account>) -> Self {
        let base = base_url.trim_end_matches('/').to_owned();
        Self {
            http,
            parsed: reqwest::Url::parse(&base).ok().filter(|u| !u.cannot_be_a_base()),
            base,
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
        let req = match &self.parsed {
            Some(base) => self.http.request(method, join(base, path)),
            // Not a URL: reqwest reports it when the request is sent.
            None => self.http.request(method, format!("{}{path}", self.base)),
        };
        match &self.account {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }
}

/// `base` (no trailing `/`) followed by `path` (with its query, if any): what
/// parsing `{base}{path}` gives, without parsing the host again.
fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(query);
    url
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Joining the parsed base gives the URL parsing the whole string gives.
        #[test]
        fn a_joined_url_is_the_parsed_one(
            base in prop::sample::select(vec![
                "http://127.0.0.1:18080", "http://localhost:8080/", "http://sar.example:9/vendor/api",
                "http://[::1]:7000/x/",
            ]),
            path in "(/[a-zA-Z0-9%._~-]{0,12}){1,4}(\\?[a-z0-9=&%]{0,10})?",
        ) {
            let trimmed = base.trim_end_matches('/');
            let parsed = reqwest::Url::parse(trimmed).expect("a base");
            let whole = reqwest::Url::parse(&format!("{trimmed}{path}")).expect("a URL");
            prop_assert_eq!(join(&parsed, &path), whole);
        }
    }
}
