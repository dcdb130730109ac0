//! Flow 2, unlocking Immuni: call centre, self-service with the CUN, ASL; the
//! Immuni backend's exact answers.

use ecosim_core::System;
use ecosim_domain::codes::{CardLast8, Cun};
use ecosim_domain::population::Citizen;
use ecosim_harness::app::VirtualApp;
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_ecosystem};

/// A citizen with a live CUN of the given result, sent by their region's SAR.
async fn with_cun(t: &TestEco, esito: &str, nth: usize) -> (Citizen, Cun) {
    let c =
        t.eco.context().population().iter().filter(|c| c.region().code == "160").nth(nth).cloned().expect("a citizen");
    let body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "esito": esito, "tipo_test": "MOLECOLARE",
        "data_esecuzione": t.today(), "struttura": "LAB-1",
    });
    let res = t.post_as("sar-160", System::SistemaTs, "/ts/v1/test-results", &body).await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.expect("json");
    (c, Cun::parse(v["cun"].as_str().expect("cun")).expect("valid"))
}

fn app(t: &TestEco) -> VirtualApp {
    VirtualApp::new(&t.eco.url(System::Immuni), 7)
}

async fn call_center(t: &TestEco, body: Value) -> (u16, Value) {
    let res = t.post_as("callcenter-1", System::SistemaTs, "/ts/v1/sblocchi/call-center", &body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn history(t: &TestEco, cun: &Cun) -> Vec<Value> {
    let v: Value =
        t.get_as("sar-160", System::SistemaTs, &format!("/ts/v1/test-results/{cun}")).await.json().await.expect("json");
    v["storia"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn call_centre_unlock_then_check_otp_and_a_single_upload() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let (status, body) = call_center(
        &t,
        json!({"cun": cun.to_string(), "ultime_8_cifre_ts": citizen.card().last8().as_str(), "otp": otp.as_str(), "supervisore": "supervisore-1"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let check = app.check_otp(&otp, false).await;
    assert_eq!(check.status, 204);
    assert_eq!(check.cache_control.as_deref(), Some("no-store"));
    let now = t.eco.context().clock().now();
    let teks = app.teks(now);
    assert_eq!(app.upload(&otp.sha256(), teks.clone(), "BA", now, false).await.status, 204);
    let again = app.upload(&otp.sha256(), teks, "BA", now, false).await;
    assert_eq!((again.status, again.error_code()), (401, Some(1101)));
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"].as_array().map(Vec::len), Some(1));
    // ORD-8.4: no symptom date given, so Immuni got the swab date.
    assert_eq!(uploads["uploads"][0]["symptoms_started_on"], t.today());
    // ORD-7.3: recorded on the CUN with its mode.
    let unlocked: Vec<Value> = history(&t, &cun).await.into_iter().filter(|e| e["evento"] == "unlocked").collect();
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0]["dettaglio"]["modalita"], "call_center");
    assert_eq!(unlocked[0]["dettaglio"]["supervisore"], "supervisore-1");
}

#[tokio::test]
async fn the_call_centre_passes_the_symptom_date_when_given() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let body = json!({"cun": cun.as_str(), "ultime_8_cifre_ts": citizen.card().last8().as_str(), "otp": otp.as_str(),
                      "supervisore": "supervisore-1", "data_inizio_sintomi": "2021-09-28"});
    assert_eq!(call_center(&t, body).await.0, 204);
    let now = t.eco.context().clock().now();
    let teks = app.teks(now);
    assert_eq!(app.upload(&otp.sha256(), teks, "BA", now, false).await.status, 204);
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"][0]["symptoms_started_on"], "2021-09-28");
}

#[tokio::test]
async fn the_call_centre_refuses_negative_cuns_wrong_digits_and_missing_supervisors() {
    let t = spawn_ecosystem().await;
    let (positive, cun) = with_cun(&t, "POSITIVO", 0).await;
    let (negative, neg_cun) = with_cun(&t, "NEGATIVO", 1).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let base = |cun: &Cun, c: &Citizen| json!({"cun": cun.to_string(), "ultime_8_cifre_ts": c.card().last8().as_str(), "otp": otp.as_str(), "supervisore": "supervisore-1"});
    let (status, p) = call_center(&t, base(&neg_cun, &negative)).await;
    assert_eq!((status, p["requirement"].as_str()), (422, Some("ORD-2.6")));
    let mut wrong = base(&cun, &positive);
    wrong["ultime_8_cifre_ts"] = json!("00000000");
    assert_eq!(call_center(&t, wrong).await.0, 404);
    let mut unsupervised = base(&cun, &positive);
    unsupervised["supervisore"] = json!("callcenter-1");
    let (status, p) = call_center(&t, unsupervised).await;
    assert_eq!((status, p["requirement"].as_str()), (403, Some("ORD-8.6")));
    let mut mistyped = base(&cun, &positive);
    mistyped["otp"] = json!("KJ23IWY5UA");
    let (status, p) = call_center(&t, mistyped).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("otp")));
    // Only call-centre operators use this endpoint.
    let res = t.post_as("asl-160", System::SistemaTs, "/ts/v1/sblocchi/call-center", &base(&cun, &positive)).await;
    assert_eq!(res.status(), 403);
    // Nothing reached Immuni.
    assert_eq!(app.check_otp(&otp, false).await.status, 401);
}

#[tokio::test]
async fn immuni_checks_the_otp_it_is_given_and_authorises_it_once() {
    let t = spawn_ecosystem().await;
    let post_otp = |otp: &str| {
        t.http
            .post(t.url(System::Immuni, "/v1/otp"))
            .basic_auth("sistema-ts", Some("sistema-ts-secret"))
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"otp": otp, "symptoms_started_on": "2021-09-30"}).to_string())
            .send()
    };
    let bad = post_otp("KJ23IWY5UA").await.expect("reachable");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error_code"], 1001);
    assert_eq!(post_otp("KJ23IWY5UJ").await.expect("first").status(), 204);
    let second = post_otp("KJ23IWY5UJ").await.expect("second");
    assert_eq!(second.status(), 409);
    assert_eq!(second.json::<Value>().await.expect("json")["error_code"], 1400);
    let anonymous = t
        .http
        .post(t.url(System::Immuni, "/v1/otp"))
        .json(&json!({"otp": "9K2RAY8UUQ", "symptoms_started_on": "2021-09-30"}))
        .send()
        .await
        .expect("reachable");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_authorised_otp_expires_after_150_seconds() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let body = json!({"cun": cun.as_str(), "ultime_8_cifre_ts": citizen.card().last8().as_str(), "otp": otp.as_str(), "supervisore": "supervisore-1"});
    assert_eq!(call_center(&t, body).await.0, 204);
    t.admin(System::Immuni, "/clock", json!({"advance": "149s"})).await;
    assert_eq!(app.check_otp(&otp, false).await.status, 204);
    t.admin(System::Immuni, "/clock", json!({"advance": "2s"})).await;
    let expired = app.check_otp(&otp, false).await;
    assert_eq!((expired.status, expired.error_code()), (401, Some(1101)));
}

#[tokio::test]
async fn self_service_unlock_uploads_then_invalidates_the_cun() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let last8 = citizen.card().last8();
    let mut app = app(&t);
    assert_eq!(app.check_cun(&cun, &last8, None, false).await.status, 204);
    let now = t.eco.context().clock().now();
    let teks = app.teks(now);
    assert_eq!(app.upload(&VirtualApp::cun_token(&cun), teks, "BA", now, false).await.status, 204);
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"][0]["from_cun"], true);
    // DM-A.1c: asymptomatic, so the swab date.
    assert_eq!(uploads["uploads"][0]["symptoms_started_on"], t.today());
    // DM-A.1b: the CUN cannot be used again.
    let again = app.check_cun(&cun, &last8, None, false).await;
    assert_eq!((again.status, again.error_code()), (409, Some(1400)));
    let unlocked: Vec<Value> = history(&t, &cun).await.into_iter().filter(|e| e["evento"] == "unlocked").collect();
    assert_eq!(unlocked[0]["dettaglio"]["modalita"], "self");
}

#[tokio::test]
async fn a_symptom_date_after_the_swab_is_replaced_by_the_swab_date() {
    let t = spawn_ecosystem().await;
    t.admin(System::Immuni, "/clock", json!({"advance": "1d"})).await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let swab = t.today();
    t.admin(System::Immuni, "/clock", json!({"advance": "2d"})).await;
    let mut app = app(&t);
    let later = t.eco.context().clock().today();
    assert_eq!(app.check_cun(&cun, &citizen.card().last8(), Some(later), false).await.status, 204);
    let now = t.eco.context().clock().now();
    let teks = app.teks(now);
    assert_eq!(app.upload(&VirtualApp::cun_token(&cun), teks, "BA", now, false).await.status, 204);
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"][0]["symptoms_started_on"], swab);
}

#[tokio::test]
async fn self_service_fails_for_wrong_digits_negative_and_expired_cuns() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let (negative, neg_cun) = with_cun(&t, "NEGATIVO", 1).await;
    let mut app = app(&t);
    let wrong = app.check_cun(&cun, &CardLast8::parse("00000000").expect("digits"), None, false).await;
    assert_eq!((wrong.status, wrong.error_code()), (401, Some(1101)));
    let neg = app.check_cun(&neg_cun, &negative.card().last8(), None, false).await;
    assert_eq!((neg.status, neg.error_code()), (401, Some(1101)));
    t.admin(System::SistemaTs, "/clock", json!({"advance": "15d"})).await;
    let expired = app.check_cun(&cun, &citizen.card().last8(), None, false).await;
    assert_eq!((expired.status, expired.error_code()), (401, Some(1101)));
}

#[tokio::test]
async fn guessing_the_digits_of_a_cun_locks_that_cun_for_an_hour() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let last8 = citizen.card().last8();
    // Five guesses of the card digits, each different: counted against the CUN.
    for guess in 0..5 {
        let digits = CardLast8::parse(&format!("{:08}", 11_111_111 * (guess + 1) % 100_000_000)).expect("digits");
        assert_ne!(digits, last8);
        assert_eq!(app.check_cun(&cun, &digits, None, false).await.status, 401);
    }
    // Now the CUN is locked: even the right digits are refused, as the HIS's known
    // 401 (not an unknown error), until the window passes.
    let locked = app.check_cun(&cun, &last8, None, false).await;
    assert_eq!((locked.status, locked.error_code()), (401, Some(1101)));
    t.admin(System::SistemaTs, "/clock", json!({"advance": "61m"})).await;
    assert_eq!(app.check_cun(&cun, &last8, None, false).await.status, 204);
}

#[tokio::test]
async fn failures_with_a_citizens_digits_do_not_lock_the_citizen_out() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let (_, other) = with_cun(&t, "POSITIVO", 1).await;
    let mut app = app(&t);
    let last8 = citizen.card().last8();
    // A stranger who knows the citizen's card digits tries other CUNs.
    for _ in 0..6 {
        assert_eq!(app.check_cun(&other, &last8, None, false).await.status, 401);
    }
    // The digits are locked for guesses, not for the citizen's own pair.
    assert_eq!(app.check_cun(&cun, &last8, None, false).await.status, 204);
}

#[tokio::test]
async fn the_call_centre_meets_the_same_locks_as_429() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let unlock = |digits: String, otp: String| json!({"cun": cun.as_str(), "ultime_8_cifre_ts": digits, "otp": otp, "supervisore": "supervisore-1"});
    for guess in 0..5 {
        let body = unlock(format!("{:08}", 22_222_222 + guess), app.new_otp().as_str().to_owned());
        let res = t.post_as("callcenter-1", System::SistemaTs, "/ts/v1/sblocchi/call-center", &body).await;
        assert_eq!(res.status(), 404, "guess {guess}");
    }
    let body = unlock(citizen.card().last8().as_str().to_owned(), app.new_otp().as_str().to_owned());
    let res = t.post_as("callcenter-1", System::SistemaTs, "/ts/v1/sblocchi/call-center", &body).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("3600"));
}

#[tokio::test]
async fn the_asl_unlocks_with_otp_symptom_date_and_codice_fiscale() {
    let t = spawn_ecosystem().await;
    let (citizen, cun) = with_cun(&t, "POSITIVO", 0).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let body = json!({"codice_fiscale": citizen.codice_fiscale().as_str(), "otp": otp.as_str(), "data_inizio_sintomi": "2021-09-29"});
    let res = t.post_as("asl-160", System::SistemaTs, "/ts/v1/sblocchi/asl", &body).await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.check_otp(&otp, false).await.status, 204);
    let unlocked: Vec<Value> = history(&t, &cun).await.into_iter().filter(|e| e["evento"] == "unlocked").collect();
    assert_eq!(unlocked[0]["dettaglio"]["modalita"], "asl");
    let unknown = json!({"codice_fiscale": "RSSMRA45D25F205N", "otp": app.new_otp().as_str(), "data_inizio_sintomi": "2021-09-29"});
    let res = t.post_as("asl-160", System::SistemaTs, "/ts/v1/sblocchi/asl", &unknown).await;
    assert_eq!(res.status(), 422);
    let res = t.post_as("callcenter-1", System::SistemaTs, "/ts/v1/sblocchi/asl", &body).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn dummy_requests_are_validated_and_change_nothing() {
    let t = spawn_ecosystem().await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let now = t.eco.context().clock().now();
    let teks = app.teks(now);
    let dummy_upload = app.upload(&otp.sha256(), teks, "BA", now, true).await;
    assert_eq!(dummy_upload.status, 204);
    let uploads = t.get_json(System::Immuni, "/_admin/uploads").await;
    assert_eq!(uploads["uploads"], json!([]));
    // 1% of dummy checks answer 401; the rest 204; none authorise anything.
    let mut answers = Vec::new();
    for _ in 0..200 {
        answers.push(app.check_otp(&otp, true).await.status);
    }
    assert!(answers.iter().all(|s| *s == 204 || *s == 401));
    assert!(answers.iter().filter(|s| **s == 204).count() >= 190);
    assert_eq!(app.check_otp(&otp, false).await.status, 401);
    // A dummy request is still schema-checked.
    let bad = app.send("/v1/ingestion/check-otp", "not-a-sha", true, json!({}), None).await;
    assert_eq!((bad.status, bad.error_code()), (400, Some(1001)));
}

#[tokio::test]
async fn malformed_headers_and_bodies_get_1001() {
    let t = spawn_ecosystem().await;
    let token = "a".repeat(64);
    let raw = |path: &str, headers: Vec<(&str, String)>, body: String| {
        let mut req = t.http.post(t.url(System::Immuni, path)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let good = || {
        vec![
            ("authorization", format!("Bearer {token}")),
            ("immuni-dummy-data", "0".to_owned()),
            ("content-type", "application/json; charset=utf-8".to_owned()),
        ]
    };
    type Case = (&'static str, Vec<(&'static str, String)>, String);
    let cases: Vec<Case> = vec![
        ("/v1/ingestion/check-otp", good().into_iter().filter(|(k, _)| *k != "authorization").collect(), "{}".into()),
        (
            "/v1/ingestion/check-otp",
            good().into_iter().map(|(k, v)| if k == "immuni-dummy-data" { (k, "2".into()) } else { (k, v) }).collect(),
            "{}".into(),
        ),
        (
            "/v1/ingestion/check-otp",
            good()
                .into_iter()
                .map(|(k, v)| if k == "content-type" { (k, "text/plain".into()) } else { (k, v) })
                .collect(),
            "{}".into(),
        ),
        ("/v1/ingestion/check-otp", good(), "[1]".into()),
        ("/v1/ingestion/check-otp", good(), r#"{"padding": "XYZ"}"#.into()),
        ("/v1/ingestion/check-otp", good(), r#"{"extra": 1}"#.into()),
        ("/v1/ingestion/check-cun", good(), r#"{"last_his_number": "1234567"}"#.into()),
        (
            "/v1/ingestion/check-cun",
            good(),
            r#"{"last_his_number": "12345678", "symptoms_started_on": "2099-01-01"}"#.into(),
        ),
        (
            "/v1/ingestion/upload",
            good(),
            r#"{"teks": [], "province": "BA", "exposure_detection_summaries": []}"#.into(),
        ),
        (
            "/v1/ingestion/upload",
            good().into_iter().chain([("immuni-client-clock", "1633068000".to_owned())]).collect(),
            r#"{"teks": [], "province": "bari", "exposure_detection_summaries": []}"#.into(),
        ),
    ];
    for (path, headers, body) in cases {
        let res = raw(path, headers.clone(), body.clone()).await.expect("reachable");
        assert_eq!(res.status(), 400, "{path} {headers:?} {body}");
        let v: Value = res.json().await.expect("json");
        assert_eq!(
            v,
            json!({"error_code": 1001, "message": "Request not compliant with the defined schema."}),
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn every_immuni_error_body_is_exactly_the_real_one() {
    use axum::response::IntoResponse;
    use ecosim_immuni::ImmuniError;
    let bodies = [
        ImmuniError::unknown(),
        ImmuniError::schema("x"),
        ImmuniError::unauthorized_otp(),
        ImmuniError::no_dgc(),
        ImmuniError::otp_collision(),
    ];
    let mut rendered = String::new();
    for e in bodies {
        let res = e.into_response();
        let status = res.status().as_u16();
        let ct = res.headers()["content-type"].to_str().expect("ascii").to_owned();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.expect("body");
        rendered.push_str(&format!("{status} {ct} {}\n", String::from_utf8_lossy(&body)));
    }
    insta::assert_snapshot!(rendered, @r#"
    500 application/json; charset=utf-8 {"error_code":1000,"message":"An unknown error occurred."}
    400 application/json; charset=utf-8 {"error_code":1001,"message":"Request not compliant with the defined schema."}
    401 application/json; charset=utf-8 {"error_code":1101,"message":"Unauthorized OTP."}
    404 application/json; charset=utf-8 {"error_code":1102,"message":"No DGC found."}
    409 application/json; charset=utf-8 {"error_code":1400,"message":"OTP already authorized."}
    "#);
}

#[tokio::test]
async fn checks_wait_like_the_real_backend_unless_in_fast_mode() {
    let mut config = ecosim_core::config::Config::for_tests(42);
    config.timing.fast = false;
    config.timing.immuni_wait_sigma = ecosim_core::duration::HumanDuration(jiff::SignedDuration::ZERO);
    let t = crate::support::spawn_with(config).await;
    let mut app = app(&t);
    let otp = app.new_otp();
    let started = std::time::Instant::now();
    assert_eq!(app.check_otp(&otp, false).await.status, 401);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150), "{:?}", started.elapsed());
}

#[tokio::test]
async fn get_dgc_asks_pn_dgc_and_relays_the_certificate_or_1102() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let pn_dgc = MockServer::start().await;
    let authcode = ecosim_domain::codes::Authcode::parse("WK2DEHZD9PC1").expect("valid");
    Mock::given(method("GET"))
        .and(path("/v1/dgc"))
        .and(query_param("mode", "ONLY_QRCODE"))
        .and(query_param("healthInsuranceCardNumber", "12345678"))
        .and(query_param("healthInsuranceCardDate", "2026-05-31"))
        .and(query_param("authCodeSHA256", authcode.sha256().as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"qrcode": "iVBORw0KGgo=", "fglTipoDgc": "cbis", "hc1": "HC1:X"}})),
        )
        .mount(&pn_dgc)
        .await;
    Mock::given(method("GET")).and(path("/v1/dgc")).respond_with(ResponseTemplate::new(404)).mount(&pn_dgc).await;
    let mut config = ecosim_core::config::Config::for_tests(42);
    config.urls.pn_dgc = Some(pn_dgc.uri());
    // The mock stands in for PN-DGC.
    let eco = ecosim_harness::ecosystem::Ecosystem::start_without(config, &[System::PnDgc]).await.expect("starts");
    let t = crate::support::TestEco { eco, http: reqwest::Client::new() };
    let mut app = app(&t);
    let last8 = CardLast8::parse("12345678").expect("digits");
    let expiry = jiff::civil::date(2026, 5, 31);
    let found = app.get_dgc("authcode", &authcode.sha256(), &last8, expiry, false).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body, json!({"qrcode": "iVBORw0KGgo=", "fglTipoDgc": "cbis"}));
    let wrong_date = app.get_dgc("authcode", &authcode.sha256(), &last8, jiff::civil::date(2026, 6, 1), false).await;
    assert_eq!((wrong_date.status, wrong_date.error_code()), (404, Some(1102)));
    let dummy = app.get_dgc("authcode", &authcode.sha256(), &last8, expiry, true).await;
    assert_eq!((dummy.status, dummy.body.clone()), (200, Value::Null));
    let bad = app.get_dgc("passport", &authcode.sha256(), &last8, expiry, false).await;
    assert_eq!((bad.status, bad.error_code()), (400, Some(1001)));
}
