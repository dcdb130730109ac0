//! The shared HTTP machinery over real loopback HTTP: boundary layer, admin API,
//! fault rules, journal, problem+json, authentication.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::admin::{self, SimulatorAdmin};
use ecosim_core::config::Config;
use ecosim_core::problem::{ApiJson, Problem};
use ecosim_core::store::Store;
use ecosim_core::{Context, System, boundary};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A toy simulator with one table, standing in for a real one.
struct Toy {
    store: Store,
}

impl SimulatorAdmin for Toy {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<Value, Problem> {
        Ok(Value::Object(self.store.counts()?))
    }
}

#[derive(serde::Deserialize)]
struct Note {
    text: String,
    #[allow(dead_code)]
    contatti: Option<Contatti>,
}

#[derive(serde::Deserialize)]
struct Contatti {
    #[allow(dead_code)]
    cellulare: ecosim_domain::codes::MobileNumber,
}

pub(crate) struct TestApp {
    pub(crate) url: String,
    pub(crate) ctx: Context,
    pub(crate) http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url)).basic_auth("sar-160", Some("sar-160-secret"))
    }
    pub(crate) async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}/_admin{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("admin call");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

async fn spawn_toy() -> TestApp {
    spawn_toy_with(Config { population: 100, ..Config::for_tests(42) }).await
}

/// The toy on `config` (its `[connections]` limits included): `/ping`, `POST /notes`
/// (JSON), `GET /search?n=<number>` and `GET /slow?ms=<millis>`.
pub(crate) async fn spawn_toy_with(config: Config) -> TestApp {
    ecosim_core::telemetry::init_for_tests();
    let limits = config.connections.limits();
    let ctx = Context::new(config);
    let toy = Arc::new(Toy {
        store: ctx.open_store(System::SistemaTs, &["CREATE TABLE notes (text TEXT NOT NULL);"]).expect("store"),
    });
    let t = toy.clone();
    #[derive(serde::Deserialize)]
    struct Search {
        n: u32,
    }
    let routes = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/search", get(|Query(q): Query<Search>| async move { axum::Json(json!({ "n": q.n })) }))
        .route(
            "/slow",
            get(|Query(q): Query<Search>| async move {
                tokio::time::sleep(Duration::from_millis(u64::from(q.n))).await;
                "done"
            }),
        )
        .route(
            "/notes",
            post(move |caller: Caller, ApiJson(note): ApiJson<Note>| {
                let t = t.clone();
                async move {
                    caller.require_role(&[Role::Sar])?;
                    t.store.with(|c| c.execute("INSERT INTO notes VALUES (?1)", [&note.text]))?;
                    Ok::<_, Problem>(axum::Json(json!({"saved": note.text, "by": caller.0.name})))
                }
            }),
        );
    let app =
        boundary::mount(routes.merge(admin::router(ctx.clone(), System::SistemaTs, toy)), &ctx, System::SistemaTs);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(ecosim_core::server::serve_within(listener, app, limits, async {
        let _ = rx.await;
    }));
    TestApp { url, ctx, http: reqwest::Client::new(), _shutdown: tx }
}

#[tokio::test]
async fn health_names_the_system() {
    let app = spawn_toy().await;
    let (status, body) = app.admin(reqwest::Method::GET, "/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["system"], "sistema-ts");
}

#[tokio::test]
async fn requests_are_journaled_with_caller_bodies_and_virtual_time() {
    let app = spawn_toy().await;
    let res = app.post("/notes").json(&json!({"text": "ciao"})).send().await.expect("post");
    assert_eq!(res.status(), 200);
    let (_, page) = app.admin(reqwest::Method::GET, "/journal?since=0", None).await;
    let e = &page["exchanges"][0];
    assert_eq!(e["from"], "sar-160");
    assert_eq!(e["to"], "sistema-ts");
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/notes");
    assert_eq!(e["status"], 200);
    assert_eq!(e["request_body"], r#"{"text":"ciao"}"#);
    assert!(e["response_body"].as_str().expect("text").contains("sar-160"));
    assert_eq!(e["time"], app.ctx.clock().now().to_string());
    // Admin calls themselves are not journaled.
    let (_, page) = app.admin(reqwest::Method::GET, "/journal?since=1", None).await;
    assert_eq!(page["exchanges"], json!([]));
}

#[tokio::test]
async fn every_answer_carries_the_virtual_time_and_reads_marked_as_observer_are_not_journalled() {
    let app = spawn_toy().await;
    app.ctx.clock().advance(jiff::SignedDuration::from_hours(30)).expect("forward");
    let res = app.http.get(format!("{}/ping", app.url)).send().await.expect("get");
    assert_eq!(res.headers()[boundary::VIRTUAL_TIME_HEADER], app.ctx.clock().now().to_string().as_str());
    let res = app.http.get(format!("{}/_admin/health", app.url)).send().await.expect("health");
    assert!(res.headers().contains_key(boundary::VIRTUAL_TIME_HEADER), "admin answers too");
    let before = app.ctx.journal().last_seq();
    app.http.get(format!("{}/ping", app.url)).header(boundary::OBSERVER_HEADER, "1").send().await.expect("get");
    assert_eq!(app.ctx.journal().last_seq(), before, "an observer's read is not part of the flow");
    // A write is journalled whatever it says it is.
    app.post("/notes").header(boundary::OBSERVER_HEADER, "1").json(&json!({"text": "x"})).send().await.expect("post");
    assert_eq!(app.ctx.journal().last_seq(), before + 1);
}

#[tokio::test]
async fn a_drop_reply_fault_commits_the_request_and_loses_the_answer() {
    let app = spawn_toy().await;
    let (status, _) = app
        .admin(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"match": {"path": "/notes"}, "action": {"drop_reply": true}, "times": 1})),
        )
        .await;
    assert_eq!(status, 201);
    let lost = app.post("/notes").json(&json!({"text": "kept"})).send().await;
    assert!(lost.is_err(), "the answer never comes: {lost:?}");
    let count: i64 = app.ctx.journal().since(0).exchanges.iter().filter(|e| e.status == 0).count() as i64;
    assert_eq!(count, 1, "journalled as dropped");
    let e = app.ctx.journal().since(0).exchanges.into_iter().last().expect("journalled");
    assert!(e.response_body.text().contains("kept"), "the system did serve it: {}", e.response_body.text());
    // The next one is answered.
    let res = app.post("/notes").json(&json!({"text": "second"})).send().await.expect("answered");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_problem_json() {
    let app = spawn_toy().await;
    let res = app.http.post(format!("{}/notes", app.url)).json(&json!({"text": "x"})).send().await.expect("post");
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("www-authenticate"));
    let res = app
        .http
        .post(format!("{}/notes", app.url))
        .basic_auth("sar-160", Some("wrong"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .post(format!("{}/notes", app.url))
        .basic_auth("lab-160", Some("lab-160-secret"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_field() {
    let app = spawn_toy().await;
    for (body, field) in [
        (json!({}), "text"),
        (json!({"text": 5}), "text"),
        (json!({"text": "x", "contatti": {"cellulare": "333 1234567"}}), "contatti.cellulare"),
    ] {
        let res = app.post("/notes").json(&body).send().await.expect("post");
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Problem = res.json().await.expect("problem");
        assert_eq!(p.errors[0].field, field, "{body}");
    }
    let res = app.post("/notes").body("text=x").send().await.expect("post");
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn a_status_fault_fires_its_number_of_times_with_retry_after() {
    let app = spawn_toy().await;
    let (status, rule) = app
        .admin(
            reqwest::Method::POST,
            "/faults",
            Some(json!({"match": {"method": "POST", "path": "/notes*"}, "action": {"status": 503, "retry_after": 2}, "times": 2})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rule["match"]["system"], "sistema-ts");
    for _ in 0..2 {
        let res = app.post("/notes").json(&json!({"text": "x"})).send().await.expect("post");
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "2");
    }
    let res = app.post("/notes").json(&json!({"text": "x"})).send().await.expect("post");
    assert_eq!(res.status(), 200);
    let (_, state) = app.admin(reqwest::Method::GET, "/state", None).await;
    assert_eq!(state["simulator"]["notes"], 1, "faulted requests must not reach the handler");
    let page = app.ctx.journal().since(0);
    assert_eq!(page.exchanges.iter().filter(|e| e.fault.is_some()).count(), 2);
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer() {
    let app = spawn_toy().await;
    app.admin(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"match": {"path": "/ping"}, "action": {"drop": true}, "times": 1})),
    )
    .await;
    let err = app.http.get(format!("{}/ping", app.url)).send().await.expect_err("dropped");
    assert!(!err.is_status(), "{err}");
    assert_eq!(app.http.get(format!("{}/ping", app.url)).send().await.expect("ok").status(), 200);
    assert_eq!(app.ctx.journal().since(0).exchanges[0].status, 0);
}

#[tokio::test]
async fn delay_and_timeout_faults_hold_the_answer() {
    let app = spawn_toy().await;
    app.admin(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"match": {"path": "/ping"}, "action": {"delay": "300ms"}, "times": 1})),
    )
    .await;
    let started = std::time::Instant::now();
    let res = app.http.get(format!("{}/ping", app.url)).send().await.expect("served after the delay");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    app.admin(
        reqwest::Method::POST,
        "/faults",
        Some(json!({"match": {"path": "/ping"}, "action": {"timeout": "5s"}, "times": 1})),
    )
    .await;
    let err = app
        .http
        .get(format!("{}/ping", app.url))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("no answer in time");
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn fault_rules_are_listed_removed_and_validated() {
    let app = spawn_toy().await;
    let (_, rule) =
        app.admin(reqwest::Method::POST, "/faults", Some(json!({"action": {"status": 500}, "probability": 0.5}))).await;
    let (_, list) = app.admin(reqwest::Method::GET, "/faults", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let id = rule["id"].as_u64().expect("id");
    let (status, _) = app.admin(reqwest::Method::DELETE, &format!("/faults/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = app.admin(reqwest::Method::DELETE, &format!("/faults/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, p) = app
        .admin(reqwest::Method::POST, "/faults", Some(json!({"match": {"system": "immuni"}, "action": {"drop": true}})))
        .await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("match.system")));
    let (status, p) = app.admin(reqwest::Method::POST, "/faults", Some(json!({"action": {"explode": true}}))).await;
    assert_eq!(status, 400);
    assert_eq!(p["errors"][0]["field"], "action.explode");
}

#[tokio::test]
async fn the_clock_advances_through_the_admin_api_and_refuses_bad_input() {
    let app = spawn_toy().await;
    let start = app.ctx.clock().now();
    let (status, body) = app.admin(reqwest::Method::POST, "/clock", Some(json!({"advance": "15d"}))).await;
    assert_eq!(status, 200);
    let expected = start.checked_add(jiff::SignedDuration::from_hours(360)).expect("in range");
    assert_eq!(body["now"], expected.to_string());
    assert_eq!(app.ctx.clock().now(), expected);
    let (status, p) = app.admin(reqwest::Method::POST, "/clock", Some(json!({"advance": "15 days"}))).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("advance")));
    let (status, p) = app.admin(reqwest::Method::POST, "/clock", Some(json!({"set": start.to_string()}))).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("set")));
    let (status, _) = app.admin(reqwest::Method::POST, "/clock", Some(json!({}))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn reset_empties_the_simulator_and_state_counts_it() {
    let app = spawn_toy().await;
    app.post("/notes").json(&json!({"text": "x"})).send().await.expect("post");
    let (_, state) = app.admin(reqwest::Method::GET, "/state", None).await;
    assert_eq!(state["simulator"]["notes"], 1);
    assert_eq!(state["population"], 100);
    let (status, _) = app.admin(reqwest::Method::POST, "/reset", None).await;
    assert_eq!(status, 200);
    let (_, state) = app.admin(reqwest::Method::GET, "/state", None).await;
    assert_eq!(state["simulator"]["notes"], 0);
}

#[tokio::test]
async fn the_journal_query_is_checked() {
    let app = spawn_toy().await;
    let (status, p) = app.admin(reqwest::Method::GET, "/journal?since=abc", None).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("since")));
    let (status, _) = app.admin(reqwest::Method::GET, "/journal?until=3", None).await;
    assert_eq!(status, 400);
}
