//! Immuni's own HTTP tests: Immuni alone on port 0, the HIS (Sistema TS) stood in
//! for by a mock server (the unlock flows end to end are in `harness/tests`).

mod real_suites;

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_domain::codes::{Otp, sha256_hex};
use ecosim_domain::rng::SeededRng;
use ecosim_immuni::Immuni;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn immuni(his_status: u16) -> (Spawned<Immuni>, MockServer) {
    let his = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/his/v1/cun/verify"))
        .respond_with(
            ResponseTemplate::new(his_status)
                .set_body_json(json!({"id_test_verification": "t-1", "date_test": "2021-09-30"})),
        )
        .mount(&his)
        .await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, his.uri());
    (spawn::<Immuni>(config).await.expect("Immuni starts"), his)
}

/// Sistema TS authorises `otp` (symptoms today): `(status, body as text)`.
async fn authorise(im: &Spawned<Immuni>, otp: &str) -> (u16, String) {
    let today = im.ctx.clock().today().to_string();
    let res = im
        .client("sistema-ts")
        .request(reqwest::Method::POST, "/v1/otp")
        .json(&json!({"otp": otp, "symptoms_started_on": today}))
        .send()
        .await
        .expect("answer");
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

/// An app call: `(status, body as text)`.
async fn app(im: &Spawned<Immuni>, p: &str, token: &str, body: Value) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(format!("{}{p}", im.url))
        .bearer_auth(token)
        .header("Immuni-Dummy-Data", "0")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .expect("Immuni answers");
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn an_otp_authorised_by_sistema_ts_checks_once_authorised_and_a_second_time_collides() {
    let (im, _his) = immuni(200).await;
    let otp = Otp::generate(&mut SeededRng::new(7)).to_string();
    let other = Otp::generate(&mut SeededRng::new(8)).to_string();
    let authorise = || authorise(&im, &otp);
    assert_eq!(authorise().await.0, 204);
    // Write-once while alive (the real OTP service's 409/1400).
    insta::assert_snapshot!(format!("{:?}", authorise().await), @r#"(409, "{\"error_code\":1400,\"message\":\"OTP already authorized.\"}")"#);
    let (status, _) = app(&im, "/v1/ingestion/check-otp", &sha256_hex(&otp), json!({"padding": ""})).await;
    assert_eq!(status, 204);
    let unknown = app(&im, "/v1/ingestion/check-otp", &sha256_hex(&other), json!({"padding": ""})).await;
    insta::assert_snapshot!(format!("{unknown:?}"), @r#"(401, "{\"error_code\":1101,\"message\":\"Unauthorized OTP.\"}")"#);
}

#[tokio::test]
async fn check_cun_asks_the_his_and_maps_its_refusal_as_immuni_does() {
    let (im, his) = immuni(200).await;
    let token = sha256_hex("CUN-6HQ5EW73HE");
    let (status, body) =
        app(&im, "/v1/ingestion/check-cun", &token, json!({"last_his_number": "12345678", "padding": ""})).await;
    assert_eq!(status, 204, "{body}");
    let asked = his.received_requests().await.expect("recorded");
    let sent: Value = serde_json::from_slice(&asked[0].body).expect("json");
    assert_eq!(sent["last_his_number"], "12345678", "{sent}");
    // The HIS says no: the app hears 401/1101, nothing more.
    let (im, _his) = immuni(401).await;
    let refused =
        app(&im, "/v1/ingestion/check-cun", &token, json!({"last_his_number": "12345678", "padding": ""})).await;
    insta::assert_snapshot!(format!("{refused:?}"), @r#"(401, "{\"error_code\":1101,\"message\":\"Unauthorized OTP.\"}")"#);
    // A malformed card number never reaches the HIS: 400/1001.
    let bad = app(&im, "/v1/ingestion/check-cun", &token, json!({"last_his_number": "1234", "padding": ""})).await;
    insta::assert_snapshot!(format!("{bad:?}"), @r#"(400, "{\"error_code\":1001,\"message\":\"Request not compliant with the defined schema.\"}")"#);
}

/// An upload whose second key is off the grid of days (as the real suite's
/// `test_upload_invalid_start_numbers`), with the OTP `otp` authorised first.
async fn upload_inconsistent(im: &Spawned<Immuni>, otp: &str) -> reqwest::Response {
    assert_eq!(authorise(im, otp).await.0, 204);
    let now = im.ctx.clock().now().as_second();
    let teks: Vec<Value> = (0..3)
        .map(|i| json!({"key_data": format!("{}AAAAAAAAAAAAAAAAAAAAA==", i), "rolling_start_number": now / 600 - 144 * i + if i == 1 { 10 } else { 0 }, "rolling_period": 144}))
        .collect();
    reqwest::Client::new()
        .post(format!("{}/v1/ingestion/upload", im.url))
        .bearer_auth(sha256_hex(otp))
        .header("Immuni-Dummy-Data", "0")
        .header("Immuni-Client-Clock", now.to_string())
        .header("Content-Type", "application/json; charset=utf-8")
        .body(json!({"teks": teks, "province": "RM", "exposure_detection_summaries": []}).to_string())
        .send()
        .await
        .expect("Immuni answers")
}

#[tokio::test]
async fn an_inconsistent_batch_is_dropped_behind_a_204_and_the_drop_shows_everywhere() {
    let (im, _his) = immuni(200).await;
    let otp = Otp::generate(&mut SeededRng::new(9)).to_string();
    let res = upload_inconsistent(&im, &otp).await;
    assert_eq!(res.status(), 204);
    let warning = res.headers()["ecosim-warning"].to_str().expect("ascii").to_owned();
    assert!(warning.contains("3 keys dropped") && warning.contains("teks[1].rolling_start_number"), "{warning}");
    let uploads: Value =
        reqwest::get(format!("{}/_admin/uploads", im.url)).await.expect("answer").json().await.expect("json");
    assert_eq!(uploads["uploads"][0]["teks"], json!([]), "{uploads}");
    assert_eq!(uploads["uploads"][0]["teks_dropped"]["count"], 3, "{uploads}");
    let journal = im.ctx.journal().since(0);
    let entry = journal.exchanges.iter().find(|e| e.path == "/v1/ingestion/upload").expect("journalled");
    assert!(entry.note.as_deref().is_some_and(|n| n.contains("IMM-UPLOAD")), "{entry:?}");
}

#[tokio::test]
async fn strict_teks_refuses_the_inconsistent_batch_and_keeps_the_otp() {
    let his = MockServer::start().await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, his.uri());
    config.immuni.strict_teks = true;
    let im = spawn::<Immuni>(config).await.expect("Immuni starts");
    let otp = Otp::generate(&mut SeededRng::new(10)).to_string();
    let res = upload_inconsistent(&im, &otp).await;
    let detail = res.headers()["x-ecosim-detail"].to_str().expect("ascii").to_owned();
    assert!(detail.contains("strict_teks"), "{detail}");
    insta::assert_snapshot!(res.text().await.expect("body"), @r#"{"error_code":1001,"message":"Request not compliant with the defined schema."}"#);
    let (status, _) = app(&im, "/v1/ingestion/check-otp", &sha256_hex(&otp), json!({})).await;
    assert_eq!(status, 204, "a refused upload does not spend the OTP");
}

#[tokio::test]
async fn dummy_get_dgc_fails_like_the_other_dummy_checks_and_faults_answer_in_immunis_format() {
    let his = MockServer::start().await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, his.uri());
    config.immuni.dummy_error_percent = 100;
    let im = spawn::<Immuni>(config).await.expect("Immuni starts");
    let res = reqwest::Client::new()
        .post(format!("{}/v1/ingestion/get-dgc", im.url))
        .bearer_auth(sha256_hex("x"))
        .header("Immuni-Dummy-Data", "1")
        .header("Content-Type", "application/json")
        .body(
            json!({"token_type": "authcode", "last_his_number": "12345678", "his_expiring_date": "2026-01-01"})
                .to_string(),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 401);
    // An injected 503 (Immuni down behind its proxy) still answers Immuni's JSON.
    let rule = json!({"match": {"path": "/v1/ingestion/*"}, "action": {"status": 503, "retry_after": 2}});
    reqwest::Client::new().post(format!("{}/_admin/faults", im.url)).json(&rule).send().await.expect("fault added");
    let (status, body) = app(&im, "/v1/ingestion/check-otp", &sha256_hex("x"), json!({})).await;
    insta::assert_snapshot!(format!("{status} {body}"), @r#"503 {"error_code":1000,"message":"An unknown error occurred."}"#);
}

#[tokio::test]
async fn a_client_that_keeps_failing_checks_is_throttled_and_others_are_not() {
    let his = MockServer::start().await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, his.uri());
    config.immuni.failed_checks_per_client = 3;
    let im = spawn::<Immuni>(config).await.expect("Immuni starts");
    let mut rng = SeededRng::new(9);
    let guess = |rng: &mut SeededRng| sha256_hex(Otp::generate(rng).as_str());
    for _ in 0..3 {
        let (status, body) = app(&im, "/v1/ingestion/check-otp", &guess(&mut rng), json!({})).await;
        assert_eq!((status, body.as_str()), (401, r#"{"error_code":1101,"message":"Unauthorized OTP."}"#));
    }
    // The fourth try is not even checked: even an authorised OTP waits.
    let otp = Otp::generate(&mut rng);
    assert_eq!(authorise(&im, otp.as_str()).await.0, 204);
    let res = reqwest::Client::new()
        .post(format!("{}/v1/ingestion/check-otp", im.url))
        .bearer_auth(sha256_hex(otp.as_str()))
        .header("Immuni-Dummy-Data", "0")
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(res.text().await.expect("body"), r#"{"error_code":1000,"message":"An unknown error occurred."}"#);
    // Sistema TS (another caller, not the app's routes) is not throttled.
    assert_eq!(authorise(&im, Otp::generate(&mut rng).as_str()).await.0, 204);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_immunis_format() {
    let (im, _his) = immuni(200).await;
    let res = reqwest::Client::new().get(format!("{}/v1/nothing", im.url)).send().await.expect("answer");
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.expect("body"), r#"{"error_code":1000,"message":"An unknown error occurred."}"#);
    let res = reqwest::Client::new().get(format!("{}/v1/ingestion/check-otp", im.url)).send().await.expect("answer");
    assert_eq!(res.status(), 405);
    assert_eq!(res.text().await.expect("body"), r#"{"error_code":1000,"message":"An unknown error occurred."}"#);
}

#[tokio::test]
async fn uploads_and_unused_otps_go_when_their_time_is_over() {
    let (im, _his) = immuni(200).await;
    let mut rng = SeededRng::new(21);
    assert_eq!(upload_inconsistent(&im, Otp::generate(&mut rng).as_str()).await.status(), 204);
    // An OTP authorised and never used, then the clock moves past both retentions.
    assert_eq!(authorise(&im, Otp::generate(&mut rng).as_str()).await.0, 204);
    im.ctx.move_clock(im.ctx.clock().now() + jiff::SignedDuration::from_hours(15 * 24)).await.expect("moved");
    assert_eq!(upload_inconsistent(&im, Otp::generate(&mut rng).as_str()).await.status(), 204);
    let uploads: Value =
        reqwest::get(format!("{}/_admin/uploads", im.url)).await.expect("answer").json().await.expect("json");
    assert_eq!(uploads["uploads"].as_array().map(Vec::len), Some(1), "the 15-day-old upload is gone: {uploads}");
    let state: Value =
        reqwest::get(format!("{}/_admin/state", im.url)).await.expect("answer").json().await.expect("json");
    assert_eq!(state["simulator"]["otps"], 0, "the unused OTP expired and was swept: {state}");
}
