//! Sistema TS's own HTTP tests: Sistema TS alone on port 0, its neighbours (the SMS
//! gateway, Immuni, PN-DGC) stood in for by mock servers. The flows through them
//! are in `harness/tests`.

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_core::simulator::{Spawned, spawn};
use ecosim_domain::codes::Cun;
use ecosim_domain::population::Citizen;
use ecosim_sistema_ts::SistemaTs;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

mod his;

/// Sistema TS with mock neighbours, and the calls the tests make to it.
struct TestEco {
    ts: Spawned<SistemaTs>,
    http: reqwest::Client,
    /// The SMS gateway, PN-DGC and Immuni, all one mock answering success.
    neighbours: MockServer,
}

impl TestEco {
    fn url(&self, system: System, path: &str) -> String {
        assert_eq!(system, System::SistemaTs, "only Sistema TS runs here");
        format!("{}{path}", self.ts.url)
    }

    /// The first citizen matching `pred`.
    fn citizen(&self, pred: impl Fn(&Citizen) -> bool) -> Citizen {
        self.ts.ctx.population().iter().find(|c| pred(c)).cloned().expect("a matching citizen")
    }

    fn today(&self) -> String {
        self.ts.ctx.clock().today().to_string()
    }

    fn password(&self, account: &str) -> String {
        self.ts.ctx.accounts().get(account).map(|a| a.password.clone()).expect("a configured account")
    }

    async fn post_as(&self, account: &str, system: System, path: &str, body: &Value) -> reqwest::Response {
        let req = self.http.post(self.url(system, path)).basic_auth(account, Some(self.password(account)));
        req.json(body).send().await.expect("reachable")
    }

    async fn get_as(&self, account: &str, system: System, path: &str) -> reqwest::Response {
        let req = self.http.get(self.url(system, path)).basic_auth(account, Some(self.password(account)));
        req.send().await.expect("reachable")
    }

    async fn get_json(&self, system: System, path: &str) -> Value {
        self.http.get(self.url(system, path)).send().await.expect("reachable").json().await.expect("json")
    }

    async fn admin(&self, system: System, path: &str, body: Value) -> Value {
        let res = self.http.post(self.url(system, &format!("/_admin{path}"))).json(&body).send().await.expect("admin");
        assert!(res.status().is_success(), "admin {path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }
}

async fn spawn_ts() -> TestEco {
    let neighbours = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .mount(&neighbours)
        .await;
    let mut config = Config::for_tests(42);
    for system in [System::SmsGateway, System::PnDgc, System::Immuni] {
        config.set_url(system, neighbours.uri());
    }
    let ts = spawn::<SistemaTs>(config).await.expect("Sistema TS starts");
    TestEco { ts, http: reqwest::Client::new(), neighbours }
}

#[tokio::test]
async fn a_negative_result_becomes_an_event_for_pn_dgc_and_ord_6_2_an_sms() {
    let t = spawn_ts().await;
    let mut body = result_for(&t, "020");
    body["esito"] = json!("NEGATIVO");
    body["invio_cun_da_ts"] = json!(true);
    let created = send(&t, "sar-020", &body).await;
    let cun = created["cun"].as_str().expect("cun").to_owned();
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = t.neighbours.received_requests().await.unwrap_or_default();
        if seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let by_path = |p: &str| -> Value {
        let r = seen.iter().find(|r| r.url.path() == p).unwrap_or_else(|| panic!("nothing sent to {p}"));
        serde_json::from_slice(&r.body).expect("json")
    };
    let sms = by_path("/sms/v1/messages");
    assert_eq!(sms["from"], "sistema Ts");
    assert!(sms["text"].as_str().is_some_and(|t| t.contains(&cun)), "{sms}");
    let event = by_path("/pn-dgc/v1/eventi");
    assert_eq!(event["test"]["esito"], "NEGATIVO", "{event}");
    assert_eq!(event["test"]["cun"], cun, "{event}");
    assert_eq!(event["assistito"]["id"], body["codice_fiscale"], "{event}");
}

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

/// `PATCH path` (a record's correction) as `account`.
async fn correct(t: &TestEco, account: &str, path: &str, body: &Value) -> reqwest::Response {
    t.http
        .patch(t.url(System::SistemaTs, path))
        .basic_auth(account, Some(format!("{account}-secret")))
        .json(body)
        .send()
        .await
        .expect("patch")
}

async fn send(t: &TestEco, account: &str, body: &Value) -> Value {
    let res = t.post_as(account, System::SistemaTs, "/ts/v1/test-results", body).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json().await.expect("json")
}

#[tokio::test]
async fn a_result_gets_a_unique_cun_kept_fourteen_days() {
    let t = spawn_ts().await;
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
    let t = spawn_ts().await;
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
    let t = spawn_ts().await;
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
    let t = spawn_ts().await;
    let created = send(&t, "sar-160", &result_for(&t, "160")).await;
    let cun = created["cun"].as_str().expect("cun");
    let res = correct(
        &t,
        "sar-160",
        &format!("/ts/v1/test-results/{cun}"),
        &json!({"esito": "NEGATIVO", "struttura": "ASL-BA-02"}),
    )
    .await;
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
    let res = correct(&t, "sar-160", &format!("/ts/v1/test-results/{cun}"), &json!({"esito": "BOH"})).await;
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.expect("problem");
    assert_eq!(p["errors"][0]["field"], "esito");
    // Another region cannot correct it.
    let res = correct(&t, "sar-030", &format!("/ts/v1/test-results/{cun}"), &json!({"esito": "POSITIVO"})).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn records_are_purged_after_fourteen_days_with_everything_kept_about_them() {
    let t = spawn_ts().await;
    let body = result_for(&t, "160");
    let post = || {
        t.http
            .post(t.url(System::SistemaTs, "/ts/v1/test-results"))
            .basic_auth("sar-160", Some("sar-160-secret"))
            .header("Idempotency-Key", "retention-1")
            .json(&body)
            .send()
    };
    let created: Value = post().await.expect("sent").json().await.expect("json");
    let cun = created["cun"].as_str().expect("cun").to_owned();
    let path = format!("/ts/v1/test-results/{cun}");
    // A correction: the CUN's history holds an event of its own to purge.
    let corrected = correct(&t, "sar-160", &path, &json!({"struttura": "ASL-BA-02"})).await;
    assert_eq!(corrected.status(), 200);
    let state = t.get_json(System::SistemaTs, "/_admin/state").await;
    assert_eq!(state["simulator"]["cun_events"], 1, "{state}");
    t.admin(System::SistemaTs, "/clock", json!({"advance": "13d"})).await;
    assert_eq!(t.get_as("sar-160", System::SistemaTs, &path).await.status(), 200);
    let replayed = post().await.expect("retry");
    assert_eq!(replayed.status(), 201, "within retention the key replays");
    t.admin(System::SistemaTs, "/clock", json!({"advance": "2d"})).await;
    assert_eq!(t.get_as("sar-160", System::SistemaTs, &path).await.status(), 404);
    let state = t.get_json(System::SistemaTs, "/_admin/state").await;
    let held = &state["simulator"];
    for table in ["test_results", "cun_events", "idempotency", "cun_verifications"] {
        assert_eq!(held[table], 0, "{table} after the purge: {state}");
    }
    // The same key after the purge is a new request, refused as too old: never the
    // 201 of a CUN that is gone.
    let late = post().await.expect("late retry");
    assert_eq!(late.status(), 422, "{:?}", late.text().await);
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_cun() {
    let t = spawn_ts().await;
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
    let t = spawn_ts().await;
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
async fn every_malformed_field_is_named() {
    let t = spawn_ts().await;
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
async fn a_back_dated_first_dose_in_the_same_batch_counts_before_the_second() {
    let t = spawn_ts().await;
    let c = t.citizen(|c| c.region().code == "160" && c.age_on(t.ts.ctx.clock().today()) >= 18);
    let today = t.ts.ctx.clock().today();
    let dose = |id: &str, n: u8, days_ago: i64| {
        let day = today.checked_sub(jiff::Span::new().days(days_ago)).expect("date");
        json!({
            "id_regionale": id, "id_assistito": {"tipo": "CF", "valore": c.codice_fiscale().as_str()},
            "regione_residenza": "160", "regione_somministrazione": "160", "asl": "160101", "struttura": "HUB",
            "data_somministrazione": day.to_string(), "ora": "10:00", "aic": "049269018", "lotto": "L1", "dose": n,
            "tipo_dose": "ciclo_primario", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna",
            "via": "IM", "sito": "deltoide_sx", "modalita": "CO", "contatti_dgc": {}, "versione": 1,
        })
    };
    // The second dose first in the batch, the back-dated first one after it.
    let batch = json!({"vaccinazioni": [dose("b", 2, 10), dose("a", 1, 40)]});
    let res = t.post_as("avn", System::SistemaTs, "/ts/v1/avn/vaccinazioni", &batch).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["anomale"], 0, "{v}");
    let order: Vec<&str> =
        v["esiti"].as_array().expect("esiti").iter().filter_map(|e| e["id_regionale"].as_str()).collect();
    assert_eq!(order, ["b", "a"], "answered in the order sent");
}
