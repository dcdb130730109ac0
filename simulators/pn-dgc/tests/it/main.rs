//! PN-DGC's own HTTP tests: PN-DGC alone on port 0, the SMS gateway stood in for by
//! a mock server (the flows from a dose to a green pass are in `harness/tests`).

use std::time::Duration;

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_pn_dgc::PnDgc;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn pn_dgc() -> (Spawned<PnDgc>, MockServer) {
    let sms = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/v1/messages"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"id": "m-1", "status": "accepted"})))
        .mount(&sms)
        .await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SmsGateway, sms.uri());
    (spawn::<PnDgc>(config).await.expect("PN-DGC starts"), sms)
}

/// Mario Rossi as Sistema TS describes him in an event.
fn mario() -> Value {
    json!({
        "id": "RSSMRA45D25F205N", "tipo": "CF", "cognome": "ROSSI", "nome": "MARIO",
        "data_nascita": "1945-04-25", "ultime_8_cifre_ts": "12345678", "scadenza_ts": "2026-12-31",
    })
}

/// A negative test result for Mario Rossi: issued at once.
fn test_event(pn: &Spawned<PnDgc>, id: &str) -> Value {
    json!({
        "id": id,
        "assistito": mario(),
        "contatti": {"cellulare": "+393331234567"},
        "test": {
            "cun": "CUN-6HQ5EW73HE", "tipo_test": "MOLECOLARE", "esito": "NEGATIVO",
            "data_esecuzione": pn.ctx.clock().today().to_string(), "struttura": "LAB1",
        },
    })
}

async fn call(pn: &Spawned<PnDgc>, account: &str, m: Method, p: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = pn.client(account).request(m, p);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("PN-DGC answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The AUTHCODE from the SMS PN-DGC sent to the mock gateway.
async fn authcode_sent(sms: &MockServer) -> (String, Value) {
    for _ in 0..300 {
        if let Some(r) = sms.received_requests().await.unwrap_or_default().first() {
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            let text = body["text"].as_str().unwrap_or("").to_owned();
            let code = text.split_whitespace().skip_while(|w| *w != "AUTHCODE").nth(1).map(str::to_owned);
            let Some(code) = code.filter(|c| ecosim_domain::codes::Authcode::parse(c).is_ok()) else {
                panic!("no AUTHCODE in {text:?}");
            };
            return (code, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no AUTHCODE SMS sent");
}

#[tokio::test]
async fn a_negative_test_is_certified_at_once_and_retrieved_with_its_authcode() {
    let (pn, sms) = pn_dgc().await;
    let (status, view) = call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(test_event(&pn, "t-1"))).await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(
        (view["stato"].as_str(), view["requirement"].as_str()),
        (Some("in_attesa"), Some("DGC-TIMING")),
        "{view}"
    );
    let (code, sent) = authcode_sent(&sms).await;
    assert_eq!(sent["from"], "Min Salute", "{sent}");
    assert_eq!(sent["to"], "+393331234567", "{sent}");
    let q = format!(
        "/v1/dgc?mode=ONLY_QRCODE&healthInsuranceCardNumber=12345678&healthInsuranceCardDate=2026-12-31&authCodeSHA256={}",
        ecosim_domain::codes::sha256_hex(&code)
    );
    let (status, got) = call(&pn, "anonymous", Method::GET, &q, None).await;
    assert_eq!(status, 200, "{got}");
    assert!(got["data"]["hc1"].as_str().is_some_and(|h| h.starts_with("HC1:")), "{got}");
    assert!(got["data"]["qrcode"].as_str().is_some_and(|q| !q.is_empty()), "{got}");
    // A wrong card expiry is no certificate.
    let (status, p) = call(&pn, "anonymous", Method::GET, &q.replace("2026-12-31", "2027-01-01"), None).await;
    assert_eq!((status, p["requirement"].as_str()), (404, Some("DGC-RETRIEVE")), "{p}");
}

#[tokio::test]
async fn the_same_event_again_is_answered_alike_and_other_data_under_its_id_conflicts() {
    let (pn, _sms) = pn_dgc().await;
    let post = |e| call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(e));
    assert_eq!(post(test_event(&pn, "t-2")).await.0, 202);
    let (status, again) = post(test_event(&pn, "t-2")).await;
    assert_eq!(status, 200, "{again}");
    let mut other = test_event(&pn, "t-2");
    other["assistito"]["nome"] = json!("LUIGI");
    let (status, p) = post(other).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (409, Some("id")), "{p}");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let (pn, _sms) = pn_dgc().await;
    let (status, _) = call(&pn, "sar-160", Method::POST, "/pn-dgc/v1/eventi", Some(test_event(&pn, "t-3"))).await;
    assert_eq!(status, 403, "only Sistema TS's service account sends events");
    let mut bad = test_event(&pn, "t-4");
    bad["assistito"]["ultime_8_cifre_ts"] = json!("1234");
    let (status, p) = call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(bad)).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("assistito.ultime_8_cifre_ts")), "{p}");
    let (status, p) =
        call(&pn, "anonymous", Method::GET, "/v1/dgc?healthInsuranceCardNumber=12&authCodeSHA256=x", None).await;
    assert_eq!(status, 400, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["healthInsuranceCardNumber", "healthInsuranceCardDate", "authCodeSHA256"], "{p}");
}

#[tokio::test]
async fn the_signer_is_published_for_verifiers() {
    let (pn, _sms) = pn_dgc().await;
    let (status, s) = call(&pn, "anonymous", Method::GET, "/v1/dgc/signer", None).await;
    assert_eq!(status, 200);
    assert_eq!(s["kid_hex"].as_str().map(str::len), Some(16), "{s}");
    assert!(s["certificate"].as_str().is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----")), "{s}");
    insta::assert_snapshot!(s["subject"].as_str().unwrap_or(""), @"CN=ecosim DSC IT 1,O=Ministero della Salute (ecosim),C=IT");
    assert!(s["csca"].as_str().is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----")), "{s}");
    assert_ne!(s["csca"], s["certificate"]);
    insta::assert_snapshot!(s["csca_subject"].as_str().unwrap_or(""), @"CN=ecosim CSCA IT,O=Ministero della Salute (ecosim),C=IT");
}

/// A dose event for Mario Rossi: `dose` of Comirnaty given `days_ago` before today.
fn dose_event(pn: &Spawned<PnDgc>, id: &str, dose: u8, days_ago: i64) -> Value {
    let day = pn.ctx.clock().today().checked_sub(jiff::Span::new().days(days_ago)).expect("date");
    json!({
        "id": id,
        "assistito": mario(),
        "contatti": {"cellulare": "+393331234567"},
        "vaccinazione": {"data": day.to_string(), "aic": "049269018", "dose": dose, "tipo_dose": "ciclo_primario"},
    })
}

#[tokio::test]
async fn a_back_dated_first_dose_never_gets_a_certificate_the_later_dose_supersedes() {
    let (pn, sms) = pn_dgc().await;
    let post = |e: Value| call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(e));
    let advance = || async {
        let url = format!("{}/_admin/clock", pn.url);
        let res = reqwest::Client::new().post(url).json(&json!({"advance": "2d"})).send().await.expect("clock");
        assert!(res.status().is_success());
    };
    // The second dose, 30 days ago: a completed cycle, certified within two days.
    let (status, v) = post(dose_event(&pn, "d-2", 2, 30)).await;
    assert_eq!(status, 202, "{v}");
    advance().await;
    authcode_sent(&sms).await;
    // Then the first dose, 55 days ago, arrives late: its 1/2 would be superseded.
    let first = dose_event(&pn, "d-1", 1, 55);
    let (status, v) = post(first.clone()).await;
    assert_eq!(status, 202, "{v}");
    advance().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, again) = post(first).await;
    assert_eq!(again["stato"], "scartato", "{again}");
    assert_eq!(again["motivo"], "superseded: a later dose is certified", "{again}");
    assert_eq!(sms.received_requests().await.map(|r| r.len()), Some(1), "one AUTHCODE, for the 2/2 only");
}

/// Test results arrive many at once on a peak day: each event is signed once, by the
/// request that brought it, and none is refused because another request was issuing
/// it (before, every request issued every due event, so concurrent ones signed each
/// other's certificates and collided on the certificate's id).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_results_arriving_together_are_each_certified_once() {
    let (pn, sms) = pn_dgc().await;
    let pn = std::sync::Arc::new(pn);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let pn = pn.clone();
        tasks.spawn(async move {
            let e = test_event(&pn, &format!("peak-{i}"));
            call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(e)).await
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = tasks.join_next().await {
        statuses.push(r.expect("joined").0);
    }
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    let (_, state) = call(&pn, "sistema-ts", Method::GET, "/_admin/state", None).await;
    assert_eq!(state["simulator"]["certificati"], 64, "{state}");
    assert_eq!(state["simulator"]["in_attesa"], 0, "{state}");
    // One AUTHCODE SMS each.
    for _ in 0..300 {
        if sms.received_requests().await.unwrap_or_default().len() >= 64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sms.received_requests().await.unwrap_or_default().len(), 64);
}

#[tokio::test]
async fn the_same_seed_and_test_event_give_the_same_authcode_and_signed_certificate() {
    let mut made = Vec::new();
    for _ in 0..2 {
        let (pn, sms) = pn_dgc().await;
        let (status, view) =
            call(&pn, "sistema-ts", Method::POST, "/pn-dgc/v1/eventi", Some(test_event(&pn, "t-same"))).await;
        assert_eq!(status, 202, "{view}");
        let (code, _) = authcode_sent(&sms).await;
        let q = format!(
            "/v1/dgc?mode=ONLY_QRCODE&healthInsuranceCardNumber=12345678&healthInsuranceCardDate=2026-12-31&authCodeSHA256={}",
            ecosim_domain::codes::sha256_hex(&code)
        );
        let (status, got) = call(&pn, "anonymous", Method::GET, &q, None).await;
        assert_eq!(status, 200, "{got}");
        made.push((code, got["data"]["hc1"].as_str().expect("hc1").to_owned()));
    }
    assert_eq!(made[0], made[1]);
}
