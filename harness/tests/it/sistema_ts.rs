//! Sistema TS with the ecosystem around it: the CUN it texts itself (ORD-6.2) through the
//! real gateway and SMTP, and every system's OpenAPI document. (Its own routes are tested
//! in `simulators/sistema-ts/tests`.)

use ecosim_core::System;
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_ecosystem};

/// What a SAR sends Sistema TS for a citizen of `region`.
fn result_for(t: &TestEco, region: &str) -> Value {
    let c = t.citizen(|c| c.region().code == region && c.mobile().is_some());
    json!({
        "codice_fiscale": c.codice_fiscale().as_str(),
        "esito": "POSITIVO",
        "tipo_test": "ANTIGENICO",
        "data_esecuzione": t.today(),
        "struttura": "ASL-BA-01",
        "contatti": {"cellulare": c.mobile().map(|m| m.to_string()), "email": c.email().map(|e| e.to_string())},
    })
}

async fn send(t: &TestEco, account: &str, body: &Value) -> Value {
    let res = t.post_as(account, System::SistemaTs, "/ts/v1/test-results", body).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json().await.expect("json")
}

#[tokio::test]
async fn sistema_ts_sends_the_cun_itself_when_asked() {
    let t = spawn_ecosystem().await;
    let mut body = result_for(&t, "020");
    body["invio_cun_da_ts"] = json!(true);
    let created = send(&t, "sar-020", &body).await;
    let cun = created["cun"].as_str().expect("cun");
    let mobile = body["contatti"]["cellulare"].as_str().expect("mobile");
    let mut sms = Vec::new();
    for _ in 0..300 {
        sms = t.sms_inbox(mobile).await;
        if !sms.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["from"], "sistema Ts");
    assert!(sms[0]["text"].as_str().expect("text").contains(cun));
    if let Some(email) = body["contatti"]["email"].as_str() {
        for _ in 0..300 {
            if !t.mail_inbox(email).await.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(t.mail_inbox(email).await.len(), 1);
    }
    let v: Value =
        t.get_as("sar-020", System::SistemaTs, &format!("/ts/v1/test-results/{cun}")).await.json().await.expect("json");
    let notified = v["storia"].as_array().expect("storia").iter().filter(|e| e["evento"] == "notified").count();
    assert!(notified >= 1, "{v}");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let t = spawn_ecosystem().await;
    for (system, paths) in [
        (
            System::SistemaTs,
            vec![
                "/ts/v1/test-results",
                "/ts/v1/test-results/{cun}",
                "/his/v1/cun/verify",
                "/his/v1/cun/invalidate",
                "/ts/v1/sblocchi/call-center",
                "/ts/v1/sblocchi/asl",
                "/ts/v1/assistiti/{id}",
                "/ts/v1/assistiti/{id}/vaccinazioni",
                "/ts/v1/assistiti/stranieri",
                "/ts/v1/anagrafe/variazioni-cf",
                "/ts/v1/avn/vaccinazioni",
                "/ts/v1/vaccinazioni-estero",
                "/ts/v1/anomalie",
                "/ts/v1/guarigioni",
            ],
        ),
        (
            System::Immuni,
            vec![
                "/v1/otp",
                "/v1/ingestion/check-otp",
                "/v1/ingestion/upload",
                "/v1/ingestion/check-cun",
                "/v1/ingestion/get-dgc",
                "/_admin/uploads",
            ],
        ),
        (
            System::SmsGateway,
            vec!["/sms/v1/messages", "/sms/v1/messages/{id}", "/sms/v1/inbox/{msisdn}", "/mail/v1/inbox/{address}"],
        ),
        (
            System::Sar,
            vec![
                "/sar/v1/esiti",
                "/sar/v1/esiti/{id}",
                "/avr/v1/vaccinazioni",
                "/avr/v1/vaccinazioni/{id}",
                "/avr/v1/vaccinazioni/{id}/numero-dose",
                "/avr/v1/assistiti/{cf}/vaccinazioni",
                "/avr/v1/assistiti/{cf}/verifica-nazionale",
                "/avr/v1/assistiti/{cf}/infezioni",
                "/avr/v1/assistiti/{cf}/contatti-dgc",
            ],
        ),
        (System::PnDgc, vec!["/pn-dgc/v1/eventi", "/v1/dgc", "/v1/certificate/citizen/io", "/v1/dgc/signer"]),
        (
            System::Avn,
            vec![
                "/avn/v1/somministrazioni",
                "/avn/v1/somministrazioni/{regione}/{id_regionale}",
                "/avn/v1/regioni/{codice}/mobilita",
            ],
        ),
    ] {
        let doc = t.get_json(system, "/openapi.json").await;
        assert_eq!(doc["openapi"], "3.1.0");
        let listed: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
        assert_eq!(listed.len(), paths.len(), "{system}");
        for p in paths {
            assert!(doc["paths"].get(p).is_some(), "{system} does not document {p}");
        }
    }
}
