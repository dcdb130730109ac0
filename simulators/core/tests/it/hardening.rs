//! What a hostile or careless client meets at every system's edge, over real
//! loopback sockets: strict JSON and media types, every error as problem+json,
//! oversized targets and headers, slow bodies and headers, idle sockets and the
//! connection cap.

use std::time::{Duration, Instant};

use ecosim_core::config::Config;
use ecosim_core::duration::HumanDuration;
use jiff::SignedDuration;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{TestApp, spawn_toy_with};

fn config() -> Config {
    let mut c = Config { population: 100, ..Config::for_tests(42) };
    c.connections.header_timeout = HumanDuration(SignedDuration::from_millis(400));
    c.connections.body_timeout = HumanDuration(SignedDuration::from_millis(400));
    c.connections.max = 8;
    c
}

/// Status, Content-Type and body of `res`.
async fn answer(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, ct, res.json().await.unwrap_or(Value::Null))
}

fn field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or("")
}

/// Writes `raw` on a new connection and reads until the server closes it or
/// `within` passes; returns what came back.
async fn raw_exchange(app: &TestApp, raw: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(app.url.trim_start_matches("http://")).await.expect("connect");
    s.write_all(raw).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn json_bodies_must_be_json_and_declared_so() {
    let app = spawn_toy_with(config()).await;
    let send = |ct: Option<&'static str>, body: &'static str| {
        let mut req = app.post("/notes").body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let (status, ct, p) =
        answer(send(Some("application/json"), r#"{"text":"ciao"}garbage"#).await.expect("send")).await;
    assert_eq!((status, ct.as_str(), field(&p)), (400, "application/problem+json", "body"), "{p}");
    for ct in [None, Some("text/plain"), Some("image/png")] {
        let (status, _, p) = answer(send(ct, r#"{"text":"ciao"}"#).await.expect("send")).await;
        assert_eq!((status, field(&p)), (415, "Content-Type"), "{ct:?}: {p}");
    }
    let (status, _, _) = answer(send(Some("application/json"), "{\"text\":\"ciao\"}\n").await.expect("send")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_queries_are_problems_naming_what_is_wrong() {
    let app = spawn_toy_with(config()).await;
    let (status, ct, p) = answer(app.http.get(format!("{}/nowhere", app.url)).send().await.expect("send")).await;
    assert_eq!((status, ct.as_str(), field(&p)), (404, "application/problem+json", "path"), "{p}");
    assert!(p["detail"].as_str().unwrap_or("").contains("GET /nowhere"), "{p}");

    let res = app.http.delete(format!("{}/notes", app.url)).send().await.expect("send");
    let allow = res.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (status, ct, p) = answer(res).await;
    assert_eq!((status, ct.as_str(), field(&p)), (405, "application/problem+json", "method"), "{p}");
    assert!(allow.contains("POST"), "Allow kept: {allow}");

    let (status, ct, p) = answer(app.http.get(format!("{}/search?n=many", app.url)).send().await.expect("send")).await;
    assert_eq!((status, ct.as_str(), field(&p)), (400, "application/problem+json", "query"), "{p}");
    // The control plane's own routes answer the same way.
    let (status, ct, _) = answer(app.http.get(format!("{}/_admin/nothing", app.url)).send().await.expect("send")).await;
    assert_eq!((status, ct.as_str()), (404, "application/problem+json"));
    let (status, _, p) = answer(app.http.get(format!("{}/search?n=7", app.url)).send().await.expect("send")).await;
    assert_eq!((status, p["n"].as_u64()), (200, Some(7)));
}

#[tokio::test]
async fn oversized_targets_and_headers_are_refused_with_a_body() {
    let app = spawn_toy_with(config()).await;
    let long = format!("{}/search?n=1&pad={}", app.url, "a".repeat(9 * 1024));
    let (status, ct, p) = answer(app.http.get(long).send().await.expect("send")).await;
    assert_eq!((status, ct.as_str(), field(&p)), (414, "application/problem+json", "path"), "{p}");
    let mut req = app.http.get(format!("{}/ping", app.url));
    for i in 0..10 {
        req = req.header(format!("x-pad-{i}"), "b".repeat(4 * 1024));
    }
    let (status, ct, p) = answer(req.send().await.expect("send")).await;
    assert_eq!((status, ct.as_str(), field(&p)), (431, "application/problem+json", "headers"), "{p}");
    // Nothing of them was journaled.
    assert!(app.ctx.journal().since(0).exchanges.is_empty());
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed() {
    let app = spawn_toy_with(config()).await;
    let head = "POST /notes HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Basic c2FyLTE2MDpzYXItMTYwLXNlY3JldA==\r\ncontent-length: 100\r\n\r\n{\"text\":";
    let started = Instant::now();
    let reply = raw_exchange(&app, head.as_bytes(), Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_timeout"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn half_sent_headers_and_idle_keep_alive_are_closed_after_the_header_timeout() {
    let app = spawn_toy_with(config()).await;
    let started = Instant::now();
    let reply = raw_exchange(&app, b"GET /ping HTTP/1.1\r\nhost: x\r\n", Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(3), "held for {:?}: {reply}", started.elapsed());
    // A complete request is answered, then the idle kept-alive connection is closed too.
    let started = Instant::now();
    let reply = raw_exchange(&app, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n", Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("pong"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(3), "idle for {:?}", started.elapsed());
}

#[tokio::test]
async fn idle_sockets_beyond_the_cap_do_not_keep_callers_out() {
    let mut c = config();
    c.connections.header_timeout = HumanDuration(SignedDuration::from_secs(60));
    let app = spawn_toy_with(c).await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        if i % 2 == 0 {
            s.write_all(b"GET /ping HTTP/1.1\r\n").await.expect("half a request");
        }
        idle.push(s);
    }
    // 200 idle sockets on a listener that keeps 8: health still answers, every time.
    for _ in 0..20 {
        let client = reqwest::Client::new();
        let res = client.get(format!("{}/_admin/health", app.url)).send().await.expect("health");
        assert_eq!(res.status(), 200);
    }
    drop(idle);
}

#[tokio::test]
async fn when_every_connection_is_serving_a_newcomer_is_refused_503_at_once() {
    let mut c = config();
    c.connections.max = 2;
    let app = spawn_toy_with(c).await;
    let slow = |app: &TestApp| {
        let url = format!("{}/slow?n=1500", app.url);
        tokio::spawn(async move { reqwest::Client::new().get(url).send().await.map(|r| r.status().as_u16()) })
    };
    let (a, b) = (slow(&app), slow(&app));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let reply = raw_exchange(&app, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n", Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("retry-after: 1") && reply.contains("too-many-connections"), "{reply}");
    assert!(started.elapsed() < Duration::from_millis(1000), "refused at once, not after {:?}", started.elapsed());
    assert_eq!(a.await.expect("join").expect("slow a"), 200);
    assert_eq!(b.await.expect("join").expect("slow b"), 200);
}

#[tokio::test]
async fn with_an_admin_token_the_admin_api_needs_it_and_the_journal_is_masked() {
    let mut c = config();
    c.admin.token = Some("s3cret-token".into());
    c.admin.mask_journal = Some(true);
    let app = spawn_toy_with(c).await;
    let res = app.post("/notes").json(&serde_json::json!({"text": "CUN-6HQ5EW73HE per RSSMRA45D25F205N"})).send().await;
    assert_eq!(res.expect("send").status(), 200);
    let health = app.http.get(format!("{}/_admin/health", app.url)).send().await.expect("health");
    assert_eq!(health.status(), 200, "health stays open");
    for path in ["/_admin/journal", "/_admin/state", "/_admin/faults"] {
        let res = app.http.get(format!("{}{path}", app.url)).send().await.expect("send");
        let challenge = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, _, p) = answer(res).await;
        assert_eq!((status, field(&p)), (401, "Authorization"), "{path}: {p}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"ecosim-admin\""));
        let wrong = app.http.get(format!("{}{path}", app.url)).bearer_auth("s3cret-tokem").send().await;
        assert_eq!(wrong.expect("send").status(), 401, "{path}");
    }
    let res = app.http.get(format!("{}/_admin/journal", app.url)).bearer_auth("s3cret-token").send().await;
    let (status, _, page) = answer(res.expect("send")).await;
    assert_eq!(status, 200);
    let text = page.to_string();
    assert!(!text.contains("RSSMRA45D25F205N") && !text.contains("6HQ5EW73HE"), "{text}");
    assert!(text.contains("CUN-**********"), "{text}");
    // What the process keeps is whole: only what the API shows is masked.
    let kept = app.ctx.journal().since(0).exchanges[0].request_body.text();
    assert!(kept.contains("RSSMRA45D25F205N"), "{kept}");
}
