//! `/sar/v1/esiti`: a lab's result to Sistema TS, the CUN to the citizen.

use ecosim_domain::codes::Cun;
use ecosim_domain::rng::SeededRng;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Lab, received};

async fn lab(ts_status: u16) -> (Lab, Cun) {
    let cun = Cun::generate(&mut SeededRng::new(9));
    let ts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/ts/v1/test-results"))
        .respond_with(ResponseTemplate::new(ts_status).set_body_json(json!({"id": "r-1", "cun": cun.to_string()})))
        .mount(&ts)
        .await;
    let sms = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(202).set_body_json(json!({}))).mount(&sms).await;
    (Lab::start(ts, sms, MockServer::start().await).await, cun)
}

fn report(t: &Lab, c: &ecosim_domain::population::Citizen) -> Value {
    json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "esito": "POSITIVO", "tipo_test": "MOLECOLARE",
        "data_esecuzione": t.today(), "struttura": "LAB-1",
        "contatti": {"cellulare": c.mobile().map(|m| m.to_string())},
    })
}

#[tokio::test]
async fn a_result_reaches_sistema_ts_once_and_the_cun_is_texted_with_the_real_wording() {
    let (t, cun) = lab(201).await;
    let c = t.citizen(|c| c.mobile().is_some() && !c.is_minor_on(t.sar.ctx.clock().today()));
    let (status, ack) = t.call("lab-160", Method::POST, "/sar/v1/esiti", Some(report(&t, &c))).await;
    assert_eq!((status, ack["stato"].as_str()), (202, Some("accettato")), "{ack}");
    let id = ack["id"].as_str().expect("id").to_owned();
    let sent = received(&t.ts, "/ts/v1/test-results", 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0["codice_fiscale"], c.codice_fiscale().as_str());
    assert!(sent[0].0.get("contatti").is_none(), "the contacts stay in the SAR (ORD-3.1a5): {}", sent[0].0);
    assert_eq!(sent[0].1.as_deref(), Some(format!("sar-esito-{id}").as_str()), "an Idempotency-Key");
    let texted = received(&t.sms, "/sms/v1/messages", 1).await;
    let sms = &texted[0].0;
    assert_eq!(sms["from"], "sistema Ts");
    assert_eq!(sms["to"], c.mobile().map(|m| m.to_string()).unwrap_or_default());
    assert!(sms["text"].as_str().is_some_and(|s| s.contains(&cun.to_string())), "{sms}");
    for _ in 0..300 {
        let (_, v) = t.call("lab-160", Method::GET, &format!("/sar/v1/esiti/{id}"), None).await;
        if v["stato"] == "notificato" {
            assert_eq!(v["cun"], format!("CUN-{}", cun.as_str()), "{v}");
            assert_eq!(v["tentativi"], 1, "{v}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never notified");
}

#[tokio::test]
async fn an_outage_of_sistema_ts_only_delays_the_result() {
    let (t, _cun) = lab(503).await;
    let c = t.citizen(|c| c.mobile().is_some());
    let (_, ack) = t.call("lab-160", Method::POST, "/sar/v1/esiti", Some(report(&t, &c))).await;
    let id = ack["id"].as_str().expect("id").to_owned();
    assert!(!received(&t.ts, "/ts/v1/test-results", 1).await.is_empty());
    let (_, v) = t.call("lab-160", Method::GET, &format!("/sar/v1/esiti/{id}"), None).await;
    assert!(v["stato"] == "inviato" || v["stato"] == "accettato", "waiting to retry: {v}");
    assert!(v.get("cun").is_none(), "{v}");
    assert!(received(&t.sms, "/sms/v1/messages", 0).await.is_empty(), "no CUN, no SMS");
}

#[tokio::test]
async fn bad_results_are_refused_naming_the_field_and_other_labs_see_nothing() {
    let (t, _cun) = lab(201).await;
    let c = t.citizen(|c| c.mobile().is_some());
    let mut bad = report(&t, &c);
    bad["esito"] = json!("forse");
    let (status, p) = t.call("lab-160", Method::POST, "/sar/v1/esiti", Some(bad)).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (400, Some("esito")), "{p}");
    let mut future = report(&t, &c);
    future["data_esecuzione"] = json!("2099-01-01");
    let (status, p) = t.call("lab-160", Method::POST, "/sar/v1/esiti", Some(future)).await;
    assert_eq!((status, p["requirement"].as_str()), (422, Some("ORD-3.1a")), "{p}");
    let (status, _) = t.call("vaccinatore-160", Method::POST, "/sar/v1/esiti", Some(report(&t, &c))).await;
    assert_eq!(status, 403, "a vaccinator is not a lab");
    let (_, ack) = t.call("lab-160", Method::POST, "/sar/v1/esiti", Some(report(&t, &c))).await;
    let id = ack["id"].as_str().expect("id");
    let (status, _) = t.call("lab-030", Method::GET, &format!("/sar/v1/esiti/{id}"), None).await;
    assert_eq!(status, 404, "another region's lab does not see it");
}
