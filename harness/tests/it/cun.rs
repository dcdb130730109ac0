//! Flow 1 end to end: lab -> reference SAR -> Sistema TS -> SMS and e-mail.

use ecosim_core::System;
use ecosim_domain::codes::Cun;
use serde_json::json;

use crate::support::{cun_in, spawn_ecosystem};

#[tokio::test]
async fn positive_and_negative_results_each_get_a_valid_cun_by_sms_and_email() {
    let t = spawn_ecosystem().await;
    let today = t.eco.context().clock().today();
    let adults: Vec<_> = t
        .eco
        .context()
        .population()
        .iter()
        .filter(|c| c.region().code == "160" && !c.is_minor_on(today) && c.mobile().is_some() && c.email().is_some())
        .take(2)
        .cloned()
        .collect();
    for (citizen, esito) in adults.iter().zip(["POSITIVO", "NEGATIVO"]) {
        let id = t.lab_reports("lab-160", &t.report(citizen, esito)).await;
        let state = t.sar_state("lab-160", &id, "notificato").await;
        let cun = state["cun"].as_str().expect("cun").to_owned();
        assert!(Cun::parse(&cun).is_ok(), "{cun}");
        assert_eq!(state["tentativi"], 1);

        let mobile = citizen.mobile().expect("mobile").to_string();
        // A negative result also brings the test certificate's AUTHCODE (Flow 4).
        let sms = t.cun_sms(&mobile).await;
        assert_eq!(sms.len(), 1, "{esito}: {sms:?}");
        assert_eq!(sms[0]["from"], "sistema Ts");
        assert_eq!(sms[0]["segments"], 1);
        assert_eq!(sms[0]["encoding"], "GSM-7");
        let text = sms[0]["text"].as_str().expect("text");
        assert_eq!(cun_in(text), cun);
        assert!(text.starts_with("Il codice del tuo test Covid-19 del "), "{text}");
        assert!(text.ends_with("può contattare il numero 800912491"), "{text}");

        let mails: Vec<_> = t
            .mail_inbox(&citizen.email().expect("email").to_string())
            .await
            .into_iter()
            .filter(|m| m["subject"].as_str().is_some_and(|s| s.starts_with("Codice CUN")))
            .collect();
        assert_eq!(mails.len(), 1);
        assert_eq!(cun_in(mails[0]["body"].as_str().expect("body")), cun);
        assert!(mails[0]["subject"].as_str().expect("subject").starts_with("Codice CUN"));
    }
}

#[tokio::test]
async fn a_minors_cun_reaches_the_parent() {
    let t = spawn_ecosystem().await;
    let today = t.eco.context().clock().today();
    let child = t.citizen(|c| c.is_minor_on(today) && c.mobile().is_none());
    let lab = format!("lab-{}", child.region().code);
    let id = t.lab_reports(&lab, &t.report(&child, "NEGATIVO")).await;
    let state = t.sar_state(&lab, &id, "notificato").await;
    let parent = child.parent_mobile().expect("parent").to_string();
    let sms = t.cun_sms(&parent).await;
    assert_eq!(sms.len(), 1);
    assert_eq!(cun_in(sms[0]["text"].as_str().expect("text")), state["cun"].as_str().expect("cun"));
}

#[tokio::test]
async fn an_outage_of_sistema_ts_delays_delivery_and_sends_exactly_one_sms() {
    let t = spawn_ecosystem().await;
    t.admin(
        System::SistemaTs,
        "/faults",
        json!({"match": {"method": "POST", "path": "/ts/v1/test-results"}, "action": {"status": 503}, "times": 2}),
    )
    .await;
    let citizen = t.citizen(|c| c.region().code == "030" && c.mobile().is_some() && c.parent_mobile().is_none());
    let id = t.lab_reports("lab-030", &t.report(&citizen, "POSITIVO")).await;
    let state = t.sar_state("lab-030", &id, "notificato").await;
    assert_eq!(state["tentativi"], 3, "{state}");
    let ts_attempts: Vec<&str> = state["consegne"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["kind"] == "ts")
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert!(ts_attempts[0].starts_with("retry: 503") && ts_attempts[1].starts_with("retry: 503"), "{ts_attempts:?}");
    assert_eq!(ts_attempts[2], "done");
    let sms = t.sms_inbox(&citizen.mobile().expect("mobile").to_string()).await;
    assert_eq!(sms.len(), 1, "exactly one SMS: {sms:?}");
    // Sistema TS holds exactly one record for it.
    let listed =
        t.get_as("sar-030", System::SistemaTs, &format!("/ts/v1/test-results?dal={0}&al={0}", t.today())).await;
    let listed: serde_json::Value = listed.json().await.expect("json");
    assert_eq!(listed["risultati"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_outage_of_the_sms_gateway_only_delays_the_sms() {
    let t = spawn_ecosystem().await;
    t.admin(
        System::SmsGateway,
        "/faults",
        json!({"match": {"path": "/sms/v1/messages"}, "action": {"drop": true}, "times": 3}),
    )
    .await;
    let citizen = t.citizen(|c| c.region().code == "120" && c.mobile().is_some() && c.parent_mobile().is_none());
    let id = t.lab_reports("lab-120", &t.report(&citizen, "NEGATIVO")).await;
    t.sar_state("lab-120", &id, "notificato").await;
    assert_eq!(t.sms_inbox(&citizen.mobile().expect("mobile").to_string()).await.len(), 1);
}

#[tokio::test]
async fn a_lab_retrying_with_the_same_idempotency_key_reports_once() {
    let t = spawn_ecosystem().await;
    let citizen = t.citizen(|c| c.region().code == "160" && c.mobile().is_some() && c.parent_mobile().is_none());
    let body = t.report(&citizen, "POSITIVO");
    let send = || {
        t.http
            .post(t.url(System::Sar, "/sar/v1/esiti"))
            .basic_auth("lab-160", Some("lab-160-secret"))
            .header("Idempotency-Key", "lab-order-77")
            .json(&body)
            .send()
    };
    let first: serde_json::Value = send().await.expect("first").json().await.expect("json");
    let second: serde_json::Value = send().await.expect("second").json().await.expect("json");
    assert_eq!(first, second);
    let mut other = body.clone();
    other["esito"] = json!("NEGATIVO");
    let conflict = t
        .http
        .post(t.url(System::Sar, "/sar/v1/esiti"))
        .basic_auth("lab-160", Some("lab-160-secret"))
        .header("Idempotency-Key", "lab-order-77")
        .json(&other)
        .send()
        .await
        .expect("third");
    assert_eq!(conflict.status(), 409);
    t.sar_state("lab-160", first["id"].as_str().expect("id"), "notificato").await;
    assert_eq!(t.sms_inbox(&citizen.mobile().expect("mobile").to_string()).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_codice_fiscale_ends_in_errore_with_sistema_ts_reason() {
    let t = spawn_ecosystem().await;
    let citizen = t.citizen(|c| c.region().code == "160");
    let mut body = t.report(&citizen, "POSITIVO");
    body["codice_fiscale"] = json!("RSSMRA45D25F205N");
    let id = t.lab_reports("lab-160", &body).await;
    let state = t.sar_state("lab-160", &id, "errore").await;
    assert!(state["errore"].as_str().expect("errore").contains("422"), "{state}");
    assert_eq!(state["tentativi"], 1, "a refusal is not retried");
}

#[tokio::test]
async fn the_sar_refuses_malformed_reports_naming_every_field() {
    let t = spawn_ecosystem().await;
    let res = t
        .post_as(
            "lab-160",
            System::Sar,
            "/sar/v1/esiti",
            &json!({"codice_fiscale": "XX", "esito": "POS", "tipo_test": "PCR", "data_esecuzione": "ieri",
                    "struttura": "", "contatti": {"cellulare": "12", "email": "a@", "cellulare_genitore": "x"}}),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: serde_json::Value = res.json().await.expect("problem");
    let fields: Vec<&str> =
        p["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("f")).collect();
    assert_eq!(
        fields,
        [
            "codice_fiscale",
            "esito",
            "tipo_test",
            "data_esecuzione",
            "struttura",
            "contatti.cellulare",
            "contatti.email",
            "contatti.cellulare_genitore"
        ]
    );
    for (body, field) in [
        (json!({"esito": "POSITIVO"}), "codice_fiscale"),
        (json!({"codice_fiscale": 5}), "codice_fiscale"),
        (json!({"nome": "Mario"}), "nome"),
    ] {
        let res = t.post_as("lab-160", System::Sar, "/sar/v1/esiti", &body).await;
        assert_eq!(res.status(), 400, "{body}");
        let p: serde_json::Value = res.json().await.expect("problem");
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    let future = {
        let c = t.citizen(|c| c.region().code == "160");
        let mut b = t.report(&c, "POSITIVO");
        b["data_esecuzione"] = json!("2099-01-01");
        b
    };
    let res = t.post_as("lab-160", System::Sar, "/sar/v1/esiti", &future).await;
    assert_eq!(res.status(), 422);
    // Only labs report.
    let res = t.post_as("sar-160", System::Sar, "/sar/v1/esiti", &future).await;
    assert_eq!(res.status(), 403);
    let res = t.get_as("lab-030", System::Sar, "/sar/v1/esiti/nope").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn stopping_and_restarting_with_a_data_dir_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ecosim_core::config::Config {
        data_dir: Some(dir.path().to_owned()),
        ..ecosim_core::config::Config::for_tests(42)
    };
    let t = crate::support::spawn_with(config.clone()).await;
    let people: Vec<_> = t
        .eco
        .context()
        .population()
        .iter()
        .filter(|c| c.region().code == "160" && c.mobile().is_some() && c.parent_mobile().is_none())
        .take(2)
        .cloned()
        .collect();
    let (first, second) = (people[0].clone(), people[1].clone());
    let delivered = t.lab_reports("lab-160", &t.report(&first, "POSITIVO")).await;
    let before = t.sar_state("lab-160", &delivered, "notificato").await;
    // Sistema TS is down: the second result is acknowledged but cannot be delivered yet.
    t.admin(System::SistemaTs, "/faults", json!({"match": {"path": "/ts/v1/test-results"}, "action": {"status": 503}}))
        .await;
    let stuck = t.lab_reports("lab-160", &t.report(&second, "NEGATIVO")).await;
    t.sar_state("lab-160", &stuck, "inviato").await;
    t.admin(System::SistemaTs, "/clock", json!({"advance": "2d"})).await;
    let now = t.eco.context().clock().now();
    t.eco.shutdown().await;

    // Same data directory, new process state (fault rules are not persisted).
    let t = crate::support::spawn_with(config).await;
    assert_eq!(t.eco.context().clock().now(), now, "the clock resumes where it was");
    let after = t.sar_state("lab-160", &delivered, "notificato").await;
    assert_eq!(after["cun"], before["cun"]);
    let cun = before["cun"].as_str().expect("cun");
    assert_eq!(t.get_as("sar-160", System::SistemaTs, &format!("/ts/v1/test-results/{cun}")).await.status(), 200);
    assert_eq!(t.sms_inbox(&first.mobile().expect("mobile").to_string()).await.len(), 1);
    let resumed = t.sar_state("lab-160", &stuck, "notificato").await;
    assert!(resumed["tentativi"].as_u64().expect("attempts") >= 2, "{resumed}");
    assert_eq!(t.cun_sms(&second.mobile().expect("mobile").to_string()).await.len(), 1);
    t.eco.shutdown().await;
}

#[tokio::test]
async fn with_a_thread_per_system_the_flow_works_the_same() {
    let config = ecosim_core::config::Config { thread_per_system: true, ..ecosim_core::config::Config::for_tests(42) };
    let t = crate::support::spawn_with(config).await;
    let citizen = t.citizen(|c| {
        c.region().code == "160" && c.mobile().is_some() && c.email().is_some() && c.parent_mobile().is_none()
    });
    let id = t.lab_reports("lab-160", &t.report(&citizen, "POSITIVO")).await;
    let state = t.sar_state("lab-160", &id, "notificato").await;
    assert_eq!(t.sms_inbox(&citizen.mobile().expect("mobile").to_string()).await.len(), 1);
    assert_eq!(t.mail_inbox(&citizen.email().expect("email").to_string()).await.len(), 1);
    assert!(state["cun"].as_str().is_some());
    t.eco.shutdown().await;
}
