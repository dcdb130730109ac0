//! The client systems call each other with, against a plain axum server on port 0:
//! what goes on the wire (credentials, JSON, query) and what comes back.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{any, get};
use ecosim_core::accounts::Account;
use ecosim_core::client::{Method, SystemClient, http_client, outcome_of};
use ecosim_core::outbox::Outcome;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Echoes what it got: method, path and query, the headers that matter, the body.
async fn echo(method: axum::http::Method, uri: Uri, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(json!({
        "method": method.as_str(), "uri": uri.to_string(), "body": body,
        "authorization": header("authorization"), "content_type": header("content-type"),
        "key": header("idempotency-key"), "host": header("host"),
    }))
}

async fn serve() -> String {
    let app = Router::new()
        .route("/moved", get(|| async { (StatusCode::FOUND, [("location", "/elsewhere")], "") }))
        .route("/busy", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "7")], "later") }))
        .route("/refused", get(|| async { (StatusCode::UNPROCESSABLE_ENTITY, "no such person") }))
        .route("/not-json", get(|| async { "plain words" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                "at last"
            }),
        )
        .fallback(any(echo));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn account() -> Account {
    Account {
        name: "sar-160".into(),
        password: "sar-160-secret".into(),
        role: ecosim_core::accounts::Role::Sar,
        region: Some("160".into()),
    }
}

#[tokio::test]
async fn a_call_carries_basic_credentials_json_the_key_and_the_query() {
    let base = serve().await;
    let client = SystemClient::new(http_client(), &format!("{base}/"), Some(&account()));
    let res = client
        .request(Method::POST, "/ts/v1/test-results?x=1")
        .query(&[("dal", "2021-10-26"), ("nome", "Anna Maria")])
        .header("Idempotency-Key", "sar-esito-1")
        .json(&json!({"esito": "POSITIVO"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.expect("json");
    assert_eq!(got["method"], "POST");
    assert_eq!(got["uri"], "/ts/v1/test-results?x=1&dal=2021-10-26&nome=Anna+Maria");
    assert_eq!(got["authorization"], "Basic c2FyLTE2MDpzYXItMTYwLXNlY3JldA==", "sar-160:sar-160-secret");
    assert_eq!(got["content_type"], "application/json");
    assert_eq!(got["key"], "sar-esito-1");
    assert_eq!(got["body"], r#"{"esito":"POSITIVO"}"#);
    assert_eq!(got["host"], base.trim_start_matches("http://"));

    let anonymous = SystemClient::new(http_client(), &base, None);
    let got: Value = anonymous.request(Method::GET, "/x").send().await.expect("answer").json().await.expect("json");
    assert_eq!((got["authorization"].clone(), got["body"].clone()), (Value::Null, json!("")));
}

#[tokio::test]
async fn a_path_with_a_space_or_an_accent_is_percent_encoded() {
    let base = serve().await;
    let client = SystemClient::new(http_client(), &base, None);
    let got: Value = client
        .request(Method::GET, "/sms/v1/inbox/Niccolò Rossi")
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(got["uri"], "/sms/v1/inbox/Niccol%C3%B2%20Rossi");
}

#[tokio::test]
async fn redirects_are_answers_and_outcomes_follow_the_status() {
    let base = serve().await;
    let client = SystemClient::new(http_client(), &base, None);
    let res = client.request(Method::GET, "/moved").send().await.expect("answer");
    assert_eq!(res.status(), 302, "not followed");
    assert!(matches!(outcome_of(Ok(res)).await, Outcome::Failed(_)), "a redirect is not a delivery");

    let busy = outcome_of(client.request(Method::GET, "/busy").send().await).await;
    assert_eq!(
        busy,
        Outcome::Retry {
            after: Some(std::time::Duration::from_secs(7)),
            error: "503 Service Unavailable: later".into()
        }
    );
    let refused = outcome_of(client.request(Method::GET, "/refused").send().await).await;
    assert_eq!(refused, Outcome::Failed("422 Unprocessable Entity: no such person".into()));
    assert_eq!(outcome_of(client.request(Method::GET, "/ok").send().await).await, Outcome::Done);

    let err = client.request(Method::GET, "/not-json").send().await.expect("answer").json::<Value>().await.unwrap_err();
    assert!(err.to_string().contains("/not-json") && err.to_string().contains("decoding"), "{err}");
}

#[tokio::test]
async fn nobody_listening_is_an_error_naming_the_url_and_a_retry() {
    // A port just freed: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
    let client = SystemClient::new(http_client(), &format!("http://127.0.0.1:{port}"), None);
    let result = client.request(Method::POST, "/sms/v1/messages").json(&json!({})).send().await;
    let err = result.as_ref().map(|_| ()).unwrap_err().to_string();
    assert!(err.contains(&format!("http://127.0.0.1:{port}/sms/v1/messages")), "{err}");
    assert!(err.to_lowercase().contains("connect"), "the cause is given: {err}");
    assert!(matches!(outcome_of(result).await, Outcome::Retry { after: None, .. }));

    let bad_header = client.request(Method::GET, "/x").header("Idempotency-Key", "a\nb").send().await;
    assert!(bad_header.as_ref().map(|_| ()).unwrap_err().to_string().contains("invalid header Idempotency-Key"));
    let bad = SystemClient::new(http_client(), "https://sar.example", None).request(Method::GET, "/x").send().await;
    assert!(bad.as_ref().map(|_| ()).unwrap_err().to_string().contains("plain http only"), "no TLS stack");
}

#[tokio::test]
async fn a_call_may_be_given_its_own_timeout() {
    let base = serve().await;
    let http = http_client();
    let short =
        http.request(Method::GET, format!("{base}/slow")).timeout(std::time::Duration::from_millis(50)).send().await;
    let err = short.map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("/slow") && err.contains("timed out"), "{err}");
    let answer = http.request(Method::GET, format!("{base}/slow")).send().await.expect("within the default 10 s");
    assert_eq!(answer.text().await.expect("body"), "at last");
}
