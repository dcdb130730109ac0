//! Immuni's endpoints, one file per service: the OTP service (`/v1/otp`, called by
//! Sistema TS), the exposure-ingestion service the app calls (`/v1/ingestion/*`),
//! the green-certificate retrieval, and the uploads for assertions.

pub(crate) mod admin;
pub(crate) mod dgc;
pub(crate) mod ingestion;
pub(crate) mod otp;

/// An answer in Immuni's own error format.
pub(crate) type Answer = Result<axum::response::Response, crate::error::ImmuniError>;

/// Throttles the app's calls per client address: past
/// `[immuni] failed_checks_per_client` failed checks (answers 401) within
/// `failed_checks_window`, the client's calls answer 429 with `Retry-After` in
/// Immuni's error shape (error code 1000), without being checked.
pub(crate) async fn throttled(
    axum::extract::State(im): axum::extract::State<std::sync::Arc<crate::state::Immuni>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let settings = &im.ctx.config().immuni;
    let (limit, window) = (settings.failed_checks_per_client, settings.failed_checks_window.to_std());
    if let Some(wait) = im.throttle.wait(client, limit, window, std::time::Instant::now()) {
        let mut res = crate::error::ImmuniError::framework(axum::http::StatusCode::TOO_MANY_REQUESTS)
            .with_detail(format!("{limit} failed checks from {client} within the failed_checks_window: wait"))
            .into_response();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return res;
    }
    let res = next.run(req).await;
    if res.status() == axum::http::StatusCode::UNAUTHORIZED {
        im.throttle.failed(client, limit, window, std::time::Instant::now());
    }
    res
}
