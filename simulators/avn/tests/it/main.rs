//! AVN's own HTTP tests: AVN alone on port 0, Sistema TS stood in for by a mock
//! server (the cross-system flows are in `harness/tests`).

use std::time::Duration;

use ecosim_avn::Avn;
use ecosim_core::System;
use ecosim_core::config::{Config, Forwarding};
use ecosim_core::simulator::{Spawned, spawn};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// AVN forwarding at once to a mock Sistema TS that answers `status`.
async fn avn_with_ts(status: u16) -> (Spawned<Avn>, MockServer) {
    let ts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ts/v1/avn/vaccinazioni"))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({"accettate": 1})))
        .mount(&ts)
        .await;
    let mut config = Config::for_tests(42);
    config.set_url(System::SistemaTs, ts.uri());
    config.timing.avn_forwarding = Forwarding::Immediate;
    (spawn::<Avn>(config).await.expect("AVN starts"), ts)
}

fn dose(avn: &Spawned<Avn>, id: &str, versione: u32) -> Value {
    json!({
        "id_regionale": id,
        "id_assistito": {"tipo": "CF", "valore": "RSSMRA45D25F205N"},
        "regione_residenza": "030", "regione_somministrazione": "160", "asl": "160101",
        "struttura": "HUB-BARI", "data_somministrazione": avn.ctx.clock().today().to_string(), "ora": "10:30",
        "aic": "049269018", "lotto": "FC5089", "dose": 1, "tipo_dose": "ciclo_primario",
        "categoria_rischio": "altro", "condizione_sanitaria": "nessuna", "via": "IM",
        "sito": "deltoide_sx", "modalita": "CO", "contatti_dgc": {"cellulare": "+393331234567"},
        "versione": versione,
    })
}

async fn call(avn: &Spawned<Avn>, account: &str, m: Method, p: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = avn.client(account).request(m, p);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("AVN answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Times and the clock's date taken out of an answer, for snapshots.
fn redacted(mut v: Value) -> String {
    for pointer in ["/ricevuta_il", "/inoltrata_il", "/somministrazione/data_somministrazione"] {
        if let Some(x) = v.pointer_mut(pointer)
            && !x.is_null()
        {
            *x = json!("[redacted]");
        }
    }
    serde_json::to_string_pretty(&v).expect("json")
}

async fn until_forwarded(avn: &Spawned<Avn>, id: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = call(avn, "avr-160", Method::GET, &format!("/avn/v1/somministrazioni/160/{id}"), None).await;
        if v["inoltro_ts"] == "inoltrata" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dose {id} never forwarded");
}

#[tokio::test]
async fn a_dose_is_stored_and_forwarded_to_sistema_ts_with_an_idempotency_key() {
    let (avn, ts) = avn_with_ts(200).await;
    let (status, receipt) =
        call(&avn, "avr-160", Method::POST, "/avn/v1/somministrazioni", Some(dose(&avn, "d-1", 1))).await;
    assert_eq!(status, 201, "{receipt}");
    insta::assert_snapshot!(serde_json::to_string(&receipt).expect("json"), @r#"{"id":"160:d-1","id_regionale":"d-1","versione":1}"#);
    let held = until_forwarded(&avn, "d-1").await;
    insta::assert_snapshot!(redacted(held), @r#"
    {
      "inoltrata_il": "[redacted]",
      "inoltro_ts": "inoltrata",
      "ricevuta_il": "[redacted]",
      "somministrazione": {
        "aic": "049269018",
        "asl": "160101",
        "categoria_rischio": "altro",
        "condizione_sanitaria": "nessuna",
        "contatti_dgc": {
          "cellulare": "+393331234567"
        },
        "data_somministrazione": "[redacted]",
        "dose": 1,
        "id_assistito": {
          "tipo": "CF",
          "valore": "RSSMRA45D25F205N"
        },
        "id_regionale": "d-1",
        "lotto": "FC5089",
        "modalita": "CO",
        "ora": "10:30",
        "regione_residenza": "030",
        "regione_somministrazione": "160",
        "sito": "deltoide_sx",
        "struttura": "HUB-BARI",
        "tipo_dose": "ciclo_primario",
        "versione": 1,
        "via": "IM"
      },
      "versione": 1
    }
    "#);
    let sent = ts.received_requests().await.expect("recorded");
    assert_eq!(sent.len(), 1);
    let key = sent[0].headers.get("Idempotency-Key").and_then(|k| k.to_str().ok()).unwrap_or("");
    assert!(key.starts_with("avn-lotto-"), "{key}");
    let body: Value = serde_json::from_slice(&sent[0].body).expect("json");
    assert_eq!(body["vaccinazioni"][0]["id_regionale"], "d-1", "{body}");
}

#[tokio::test]
async fn the_same_dose_again_is_answered_alike_a_correction_replaces_it_and_other_data_conflicts() {
    let (avn, _ts) = avn_with_ts(200).await;
    let post = |d| call(&avn, "avr-160", Method::POST, "/avn/v1/somministrazioni", Some(d));
    assert_eq!(post(dose(&avn, "d-2", 1)).await.0, 201);
    assert_eq!(post(dose(&avn, "d-2", 1)).await.0, 200, "the same dose again");
    let mut other = dose(&avn, "d-2", 1);
    other["lotto"] = json!("OTHER");
    let (status, problem) = post(other.clone()).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (409, Some("versione")), "{problem}");
    other["versione"] = json!(2);
    let (status, receipt) = post(other).await;
    assert_eq!((status, receipt["versione"].as_u64()), (200, Some(2)), "{receipt}");
}

#[tokio::test]
async fn an_outage_of_sistema_ts_only_delays_the_batch() {
    let (avn, ts) = avn_with_ts(503).await;
    assert_eq!(
        call(&avn, "avr-160", Method::POST, "/avn/v1/somministrazioni", Some(dose(&avn, "d-3", 1))).await.0,
        201
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, held) = call(&avn, "avr-160", Method::GET, "/avn/v1/somministrazioni/160/d-3", None).await;
    assert_eq!(held["inoltro_ts"], "in_coda", "{held}");
    ts.reset().await;
    Mock::given(method("POST"))
        .and(header_exists("Idempotency-Key"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&ts)
        .await;
    until_forwarded(&avn, "d-3").await;
}

#[tokio::test]
async fn bad_input_and_the_wrong_region_are_refused_naming_the_field() {
    let (avn, _ts) = avn_with_ts(200).await;
    let mut bad = dose(&avn, "d-4", 1);
    bad["ora"] = json!("25:00");
    let (status, p) = call(&avn, "avr-160", Method::POST, "/avn/v1/somministrazioni", Some(bad)).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str(), p["requirement"].as_str()),
        (400, Some("ora"), Some("AVR-1.3a"))
    );
    let (status, p) = call(&avn, "avr-030", Method::POST, "/avn/v1/somministrazioni", Some(dose(&avn, "d-5", 1))).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (403, Some("regione_somministrazione")), "{p}");
    let (status, _) =
        call(&avn, "vaccinatore-160", Method::POST, "/avn/v1/somministrazioni", Some(dose(&avn, "d-6", 1))).await;
    assert_eq!(status, 403, "a vaccinator is not an AVR");
    let (status, p) = call(&avn, "avr-030", Method::GET, "/avn/v1/regioni/030/mobilita?dal=ieri", None).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("dal")), "{p}");
}

#[tokio::test]
async fn the_mobility_feed_gives_a_region_its_residents_doses_from_elsewhere() {
    let (avn, _ts) = avn_with_ts(200).await;
    assert_eq!(
        call(&avn, "avr-160", Method::POST, "/avn/v1/somministrazioni", Some(dose(&avn, "d-7", 1))).await.0,
        201
    );
    let (status, feed) = call(&avn, "avr-030", Method::GET, "/avn/v1/regioni/030/mobilita", None).await;
    assert_eq!(status, 200, "{feed}");
    assert_eq!(feed["somministrazioni"][0]["id_regionale"], "d-7", "{feed}");
    assert!(feed["somministrazioni"][0]["ricevuta_il"].is_string(), "{feed}");
    // The feed is exactly what the OpenAPI document says it is.
    let doc: serde_json::Value = serde_json::from_str(ecosim_avn::OPENAPI).expect("the document");
    let schema = ecosim_core::openapi::response_schema(&doc, "GET", "/avn/v1/regioni/{codice}/mobilita", 200)
        .expect("documented");
    assert_eq!(ecosim_core::openapi::undocumented(&doc, schema, &feed, ""), Vec::<String>::new());
    let (status, _) = call(&avn, "avr-160", Method::GET, "/avn/v1/regioni/030/mobilita", None).await;
    assert_eq!(status, 403, "another region's feed");
}
