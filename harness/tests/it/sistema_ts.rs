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

/// Each system serves the document `openapi::every_route_in_the_code_is_documented…`
/// checks against its routes.
#[tokio::test]
async fn each_system_serves_its_openapi_document() {
    let t = spawn_ecosystem().await;
    for (system, text) in [
        (System::SistemaTs, ecosim_sistema_ts::OPENAPI),
        (System::Immuni, ecosim_immuni::OPENAPI),
        (System::SmsGateway, ecosim_sms_gateway::OPENAPI),
        (System::Sar, ecosim_sar::OPENAPI),
        (System::PnDgc, ecosim_pn_dgc::OPENAPI),
        (System::Avn, ecosim_avn::OPENAPI),
    ] {
        let served = t.get_json(system, "/openapi.json").await;
        assert_eq!(served["openapi"], "3.1.0");
        assert_eq!(served, serde_json::from_str::<Value>(text).expect("document"), "{system}");
    }
}
