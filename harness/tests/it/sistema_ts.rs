//! Sistema TS's test-result interface: regions, labs, corrections, retention.

use ecosim_core::System;
use ecosim_domain::codes::Cun;
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
async fn a_result_gets_a_unique_cun_kept_fourteen_days() {
    let t = spawn_ecosystem().await;
    let body = result_for(&t, "160");
    let a = send(&t, "sar-160", &body).await;
    let b = send(&t, "sar-160", &body).await;
    for v in [&a, &b] {
        assert!(Cun::parse(v["cun"].as_str().expect("cun")).is_ok());
        assert_eq!(v["conservato_fino_al"], "2021-10-15");
    }
    assert_ne!(a["cun"], b["cun"]);
}

#[tokio::test]
async fn a_region_never_sees_another_regions_record() {
    let t = spawn_ecosystem().await;
    let created = send(&t, "sar-160", &result_for(&t, "160")).await;
    let cun = created["cun"].as_str().expect("cun");
    let own = t.get_as("sar-160", System::SistemaTs, &format!("/ts/v1/test-results/{cun}")).await;
    assert_eq!(own.status(), 200);
    let other = t.get_as("sar-030", System::SistemaTs, &format!("/ts/v1/test-results/{cun}")).await;
    assert_eq!(other.status(), 404);
    let text = other.text().await.expect("body");
    assert!(!text.contains("ANTIGENICO") && !text.contains("ASL-BA-01"), "{text}");
    let listed: Value = t
        .get_as("sar-030", System::SistemaTs, &format!("/ts/v1/test-results?dal={0}&al={0}", t.today()))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["risultati"], json!([]));
}

#[tokio::test]
async fn downloads_carry_no_codice_fiscale_nor_contacts() {
    let t = spawn_ecosystem().await;
    let body = result_for(&t, "160");
    let created = send(&t, "sar-160", &body).await;
    let cf = body["codice_fiscale"].as_str().expect("cf");
    let mobile = body["contatti"]["cellulare"].as_str().expect("mobile");
    let one = t
        .get_as("sar-160", System::SistemaTs, &format!("/ts/v1/test-results/{}", created["cun"].as_str().expect("cun")))
        .await;
    let list = t.get_as("sar-160", System::SistemaTs, &format!("/ts/v1/test-results?dal={0}&al={0}", t.today())).await;
    for res in [one, list] {
        let text = res.text().await.expect("body");
        assert!(text.contains("ANTIGENICO"), "{text}");
        assert!(!text.contains(cf) && !text.contains(&mobile[3..]), "identifiers leaked: {text}");
        assert!(!text.contains("codice_fiscale") && !text.contains("cellulare"), "{text}");
    }
}

#[tokio::test]
async fn a_region_corrects_a_record_and_the_history_says_so() {
    let t = spawn_ecosystem().await;
    let created = send(&t, "sar-160", &result_for(&t, "160")).await;
    let cun = created["cun"].as_str().expect("cun");
    let res = t
        .http
        .patch(t.url(System::SistemaTs, &format!("/ts/v1/test-results/{cun}")))
        .basic_auth("sar-160", Some("sar-160-secret"))
        .json(&json!({"esito": "NEGATIVO", "struttura": "ASL-BA-02"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["esito"], "NEGATIVO");
    assert_eq!(v["struttura"], "ASL-BA-02");
    assert_eq!(v["cun"], cun, "the CUN does not change");
    let events: Vec<&str> =
        v["storia"].as_array().expect("storia").iter().map(|e| e["evento"].as_str().expect("e")).collect();
    assert_eq!(events, ["issued", "corrected"]);
    assert_eq!(v["storia"][1]["dettaglio"]["campi"], json!(["esito", "struttura"]));
    // A correction is validated like a submission.
    let res = t
        .http
        .patch(t.url(System::SistemaTs, &format!("/ts/v1/test-results/{cun}")))
        .basic_auth("sar-160", Some("sar-160-secret"))
        .json(&json!({"esito": "BOH"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "esito");
    // Another region cannot correct it.
    let res = t
        .http
        .patch(t.url(System::SistemaTs, &format!("/ts/v1/test-results/{cun}")))
        .basic_auth("sar-030", Some("sar-030-secret"))
        .json(&json!({"esito": "POSITIVO"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn records_are_purged_after_fourteen_days_on_the_shared_clock() {
    let t = spawn_ecosystem().await;
    let created = send(&t, "sar-160", &result_for(&t, "160")).await;
    let path = format!("/ts/v1/test-results/{}", created["cun"].as_str().expect("cun"));
    t.admin(System::SistemaTs, "/clock", json!({"advance": "13d"})).await;
    assert_eq!(t.get_as("sar-160", System::SistemaTs, &path).await.status(), 200);
    t.admin(System::SistemaTs, "/clock", json!({"advance": "2d"})).await;
    assert_eq!(t.get_as("sar-160", System::SistemaTs, &path).await.status(), 404);
    let state = t.get_json(System::SistemaTs, "/_admin/state").await;
    assert_eq!(state["simulator"]["test_results"], 0);
    assert_eq!(state["simulator"]["cun_registry"], 1, "the CUN is never issued again");
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_cun() {
    let t = spawn_ecosystem().await;
    let body = result_for(&t, "160");
    let post = |b: &Value| {
        t.http
            .post(t.url(System::SistemaTs, "/ts/v1/test-results"))
            .basic_auth("sar-160", Some("sar-160-secret"))
            .header("Idempotency-Key", "k-1")
            .json(b)
            .send()
    };
    let a = post(&body).await.expect("a");
    let b = post(&body).await.expect("b");
    assert_eq!((a.status(), b.status()), (reqwest::StatusCode::CREATED, reqwest::StatusCode::CREATED));
    let (a, b): (Value, Value) = (a.json().await.expect("a"), b.json().await.expect("b"));
    assert_eq!(a["cun"], b["cun"]);
    let mut other = body.clone();
    other["esito"] = json!("NEGATIVO");
    assert_eq!(post(&other).await.expect("c").status(), 409);
    // The key is the caller's: another region using it makes its own record.
    let c = t
        .http
        .post(t.url(System::SistemaTs, "/ts/v1/test-results"))
        .basic_auth("sar-030", Some("sar-030-secret"))
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .expect("d");
    assert_eq!(c.status(), 201);
}

#[tokio::test]
async fn a_lab_may_send_directly_where_there_is_no_sar() {
    let t = spawn_ecosystem().await;
    let created = send(&t, "lab-170", &result_for(&t, "170")).await;
    let v: Value = t
        .get_as("sar-170", System::SistemaTs, &format!("/ts/v1/test-results/{}", created["cun"].as_str().expect("cun")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["regione"], "170");
    assert_eq!(v["storia"][0]["dettaglio"]["da"], "lab-170");
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
async fn every_malformed_field_is_named() {
    let t = spawn_ecosystem().await;
    let good = result_for(&t, "160");
    let cases = [
        ("codice_fiscale", json!("RSSMRA45D25F205X"), 400),
        ("codice_fiscale", json!("RSSMRA45D25F205N"), 422),
        ("esito", json!("positivo"), 400),
        ("tipo_test", json!("PCR"), 400),
        ("data_esecuzione", json!("2021-13-01"), 400),
        ("data_esecuzione", json!("2099-01-01"), 422),
        ("data_esecuzione", json!("2021-09-01"), 422),
        ("struttura", json!(""), 400),
        ("contatti", json!({"cellulare": "abc"}), 400),
        ("contatti", json!({"email": "x@y"}), 400),
        ("contatti", json!({"cellulare_genitore": "3331234567"}), 400),
        ("invio_cun_da_ts", json!("yes"), 400),
    ];
    for (field, value, status) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let res = t.post_as("sar-160", System::SistemaTs, "/ts/v1/test-results", &body).await;
        assert_eq!(res.status().as_u16(), status, "{field} = {value}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.expect("problem");
        assert!(p["errors"][0]["field"].as_str().expect("field").starts_with(field), "{field}: {p}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("struttura");
    let p: Value =
        t.post_as("sar-160", System::SistemaTs, "/ts/v1/test-results", &missing).await.json().await.expect("json");
    assert_eq!(p["errors"][0]["field"], "struttura");
    let res = t.get_as("sar-160", System::SistemaTs, "/ts/v1/test-results/CUN-KJ23IWY5UA").await;
    assert_eq!(res.status(), 400);
    let res = t.get_as("sar-160", System::SistemaTs, "/ts/v1/test-results?dal=2021-10-01").await;
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "al");
    let res = t.get_as("sar-160", System::SistemaTs, "/ts/v1/test-results?dal=2021-10-05&al=2021-10-01").await;
    assert_eq!(res.status(), 400);
    let res = t.post_as("avr-160", System::SistemaTs, "/ts/v1/test-results", &good).await;
    assert_eq!(res.status(), 403);
    let res = t.http.post(t.url(System::SistemaTs, "/ts/v1/test-results")).json(&good).send().await.expect("anon");
    assert_eq!(res.status(), 401);
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
