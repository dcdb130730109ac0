//! `/avr/v1/...`: a vaccinator registers a dose; the AVR numbers it, holds the
//! green-pass contacts and sends the dose to AVN.

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Lab, received};

/// The SAR with a Sistema TS that knows `c` and holds no doses, and an AVN that takes doses.
async fn avr(c: &ecosim_domain::population::Citizen) -> Lab {
    let ts = MockServer::start().await;
    let cf = c.codice_fiscale().as_str().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/ts/v1/assistiti/{cf}/vaccinazioni")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&ts)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/ts/v1/assistiti/{cf}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "codice_fiscale": cf, "tipo_identificativo": "CF", "data_nascita": c.birth_date().to_string(),
            "regione": "160", "asl": "160101", "codici_fiscali_precedenti": [],
        })))
        .mount(&ts)
        .await;
    let avn = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/avn/v1/somministrazioni"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({})))
        .mount(&avn)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/avn/v1/regioni/160/mobilita$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"somministrazioni": []})))
        .mount(&avn)
        .await;
    Lab::start(ts, MockServer::start().await, avn).await
}

fn dose(t: &Lab, c: &ecosim_domain::population::Citizen) -> Value {
    json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "data_somministrazione": t.today(), "ora": "10:00",
        "aic": "049269018", "lotto": "FC5089", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna",
        "via": "IM", "sito": "deltoide_sx", "struttura": "HUB-1",
        "contatti_dgc": {"cellulare": "+393331234567"}, "conferma_contatti": true,
    })
}

fn adult(t: &Lab) -> ecosim_domain::population::Citizen {
    let today = t.sar.ctx.clock().today();
    t.citizen(|c| (18..65).contains(&c.age_on(today)))
}

#[tokio::test]
async fn a_first_dose_is_numbered_sent_to_avn_and_its_contacts_held_for_the_next() {
    let probe = Lab::start(MockServer::start().await, MockServer::start().await, MockServer::start().await).await;
    let c = adult(&probe);
    let t = avr(&c).await;
    let (status, reg) = t.call("vaccinatore-160", Method::POST, "/avr/v1/vaccinazioni", Some(dose(&t, &c))).await;
    assert_eq!(status, 201, "{reg}");
    assert_eq!((reg["numero_dose"].as_u64(), reg["tipo_dose"].as_str()), (Some(1), Some("ciclo_primario")), "{reg}");
    let sent = received(&t.avn, "/avn/v1/somministrazioni", 1).await;
    assert_eq!(sent[0].0["id_assistito"]["valore"], c.codice_fiscale().as_str());
    assert_eq!(sent[0].0["dose"], 1);
    assert_eq!(sent[0].0["contatti_dgc"]["cellulare"], "+393331234567");
    let cf = c.codice_fiscale().as_str();
    let (status, held) =
        t.call("vaccinatore-160", Method::GET, &format!("/avr/v1/assistiti/{cf}/contatti-dgc"), None).await;
    assert_eq!((status, held["cellulare"].as_str()), (200, Some("+393331234567")), "{held}");
    let (status, _) =
        t.call("vaccinatore-160", Method::DELETE, &format!("/avr/v1/assistiti/{cf}/contatti-dgc"), None).await;
    assert_eq!(status, 204);
    let (status, p) =
        t.call("vaccinatore-160", Method::GET, &format!("/avr/v1/assistiti/{cf}/contatti-dgc"), None).await;
    assert_eq!((status, p["requirement"].as_str()), (404, Some("AVR-5c")), "{p}");
    let id = reg["id"].as_str().expect("id");
    for _ in 0..300 {
        let (_, v) = t.call("vaccinatore-160", Method::GET, &format!("/avr/v1/vaccinazioni/{id}"), None).await;
        if v["avn"] == "consegnata" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never delivered to AVN");
}

#[tokio::test]
async fn the_contact_rules_come_first_and_name_the_rule() {
    let probe = Lab::start(MockServer::start().await, MockServer::start().await, MockServer::start().await).await;
    let c = adult(&probe);
    let t = avr(&c).await;
    let mut unconfirmed = dose(&t, &c);
    unconfirmed["conferma_contatti"] = json!(false);
    let (status, p) = t.call("vaccinatore-160", Method::POST, "/avr/v1/vaccinazioni", Some(unconfirmed)).await;
    assert_eq!(
        (status, p["regola"].as_str(), p["errors"][0]["field"].as_str()),
        (422, Some("AVR-5a"), Some("conferma_contatti")),
        "{p}"
    );
    let mut spaced = dose(&t, &c);
    spaced["contatti_dgc"]["cellulare"] = json!("333 1234567");
    let (status, p) = t.call("vaccinatore-160", Method::POST, "/avr/v1/vaccinazioni", Some(spaced)).await;
    assert_eq!((status, p["regola"].as_str()), (422, Some("AVR-5b")), "{p}");
    let mut bad = dose(&t, &c);
    bad["aic"] = json!("123");
    bad["ora"] = json!("25:00");
    let (status, p) = t.call("vaccinatore-160", Method::POST, "/avr/v1/vaccinazioni", Some(bad)).await;
    let fields: Vec<&str> = p["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!((status, fields), (400, vec!["ora", "aic"]), "{p}");
    let (status, _) = t.call("lab-160", Method::POST, "/avr/v1/vaccinazioni", Some(dose(&t, &c))).await;
    assert_eq!(status, 403, "a lab is not a vaccinator");
    assert!(received(&t.avn, "/avn/v1/somministrazioni", 0).await.is_empty(), "nothing refused reaches AVN");
}
