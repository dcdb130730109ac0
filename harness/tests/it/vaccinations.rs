//! Flow 3 over real HTTP: the reference AVR, AVN and Sistema TS's vaccinations.

use std::time::Duration;

use ecosim_core::System;
use ecosim_core::config::{Config, Forwarding};
use ecosim_domain::population::Citizen;
use jiff::ToSpan;
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_ecosystem, spawn_with};

impl TestEco {
    /// A date `days` before today.
    fn days_ago(&self, days: i64) -> String {
        let today = self.eco.context().clock().today();
        today.checked_sub(days.days()).expect("date").to_string()
    }

    /// An adult (30-59) resident of `region` with a mobile number.
    fn adult_of(&self, region: &str) -> Citizen {
        let today = self.eco.context().clock().today();
        self.citizen(|c| c.region().code == region && (30..60).contains(&c.age_on(today)) && c.mobile().is_some())
    }

    fn dose(&self, c: &Citizen, aic: &str, days_ago: i64) -> Value {
        json!({
            "codice_fiscale": c.codice_fiscale().as_str(),
            "data_somministrazione": self.days_ago(days_ago),
            "ora": "10:30", "aic": aic, "lotto": "FC5089",
            "categoria_rischio": "altro", "condizione_sanitaria": "nessuna",
            "via": "IM", "sito": "deltoide_sx", "struttura": "HUB-01",
            "contatti_dgc": {"cellulare": c.mobile().map(|m| m.to_string())},
            "conferma_contatti": true,
        })
    }

    async fn vaccinate(&self, region: &str, body: &Value) -> (u16, Value) {
        let res = self.post_as(&format!("vaccinatore-{region}"), System::Sar, "/avr/v1/vaccinazioni", body).await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("json"))
    }

    async fn vaccinated(&self, region: &str, body: &Value) -> Value {
        let (status, v) = self.vaccinate(region, body).await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// The doses the AVR of `region` holds for `c` (`GET /avr/v1/assistiti/{cf}/vaccinazioni`).
    async fn doses_held(&self, region: &str, c: &Citizen) -> Vec<Value> {
        let path = format!("/avr/v1/assistiti/{}/vaccinazioni", c.codice_fiscale());
        let v: Value =
            self.get_as(&format!("vaccinatore-{region}"), System::Sar, &path).await.json().await.expect("json");
        v["vaccinazioni"].as_array().cloned().unwrap_or_else(|| panic!("a list of doses: {v}"))
    }

    /// Waits until `probe` gives `Some`.
    async fn eventually<T, F, Fut>(&self, what: &str, probe: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..500 {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    async fn delivered_to_avn(&self, region: &str, id: &str) {
        self.eventually("dose delivered to AVN", || async {
            let v: Value = self
                .get_as(&format!("vaccinatore-{region}"), System::Sar, &format!("/avr/v1/vaccinazioni/{id}"))
                .await
                .json()
                .await
                .ok()?;
            (v["avn"] == "consegnata").then_some(())
        })
        .await;
    }
}

fn immediate() -> Config {
    let mut c = Config::for_tests(42);
    c.timing.avn_forwarding = Forwarding::Immediate;
    c
}

fn assert_rule(status: u16, v: &Value, rule: &str, field: &str) {
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["regola"], rule, "{v}");
    assert_eq!(v["requirement"], rule, "{v}");
    assert_eq!(v["errors"][0]["field"], field, "{v}");
    assert!(v["messaggio"].as_str().is_some_and(|m| !m.is_empty()), "Italian message: {v}");
    assert!(v["detail"].as_str().is_some_and(|m| !m.is_empty()), "English message: {v}");
}

#[tokio::test]
async fn avr_6a_first_second_and_booster_doses_and_avr_6c_categories() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let first = t.vaccinated("160", &t.dose(&c, "049269018", 60)).await;
    assert_eq!((first["numero_dose"].as_u64(), first["tipo_dose"].as_str()), (Some(1), Some("ciclo_primario")));
    let second = t.vaccinated("160", &t.dose(&c, "049269018", 39)).await;
    assert_eq!(second["numero_dose"], 2, "{second}");
    let mut booster = t.dose(&c, "049283017", 0);
    let (status, refused) = t.vaccinate("160", &booster).await;
    assert_rule(status, &refused, "AVR-6c", "categoria_rischio");
    booster["categoria_rischio"] = json!("operatore_sanitario");
    let third = t.vaccinated("160", &booster).await;
    assert_eq!((third["numero_dose"].as_u64(), third["tipo_dose"].as_str()), (Some(3), Some("booster")));
    // The AVR's view of the person has the three doses.
    let numbers: Vec<_> = t.doses_held("160", &c).await.iter().map(|d| d["dose"].as_u64()).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn avr_6a_a_second_dose_on_the_same_day_is_a_duplicate_and_refused() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let first = t.vaccinated("160", &t.dose(&c, "049269018", 30)).await;
    assert_eq!(first["numero_dose"], 1, "{first}");
    // The same dose typed in again, and another vaccine on that day: both refused.
    for aic in ["049269018", "049283017"] {
        let (status, v) = t.vaccinate("160", &t.dose(&c, aic, 30)).await;
        assert_eq!(status, 409, "{v}");
        assert_eq!(v["requirement"], "AVR-6a", "{v}");
        assert_eq!(v["errors"][0]["field"], "data_somministrazione", "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| d.contains("one dose a day")), "{v}");
    }
    // The next day is a dose 2 (with an interval warning), and the AVR holds two doses.
    let next = t.vaccinated("160", &t.dose(&c, "049269018", 29)).await;
    assert_eq!(next["numero_dose"], 2, "{next}");
    assert_eq!(t.doses_held("160", &c).await.len(), 2);
}

#[tokio::test]
async fn avr_6a_operators_registering_the_same_person_at_once_get_one_dose_and_conflicts() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let body = t.dose(&c, "049269018", 0);
    // Each registration reads the person's doses from Sistema TS and AVN before it
    // writes: all eight read none for the day; the check in the transaction decides.
    let answers = futures_util::future::join_all((0..8).map(|_| t.vaccinate("160", &body))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409], "{answers:?}");
    for (_, v) in answers.iter().filter(|(s, _)| *s == 409) {
        assert_eq!(v["requirement"], "AVR-6a", "{v}");
        assert_eq!(v["errors"][0]["field"], "data_somministrazione", "{v}");
    }
    assert_eq!(t.doses_held("160", &c).await.len(), 1);
}

#[tokio::test]
async fn avr_6b_additional_dose_needs_a_vulnerable_person_with_a_condition() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    t.vaccinated("160", &t.dose(&c, "049269018", 90)).await;
    t.vaccinated("160", &t.dose(&c, "049269018", 60)).await;
    let mut extra = t.dose(&c, "049269018", 0);
    extra["tipo_dose"] = json!("addizionale");
    extra["categoria_rischio"] = json!("soggetto_vulnerabile");
    let (status, v) = t.vaccinate("160", &extra).await;
    assert_rule(status, &v, "AVR-6b", "condizione_sanitaria");
    extra["condizione_sanitaria"] = json!("trapianto");
    let ok = t.vaccinated("160", &extra).await;
    assert_eq!((ok["numero_dose"].as_u64(), ok["tipo_dose"].as_str()), (Some(3), Some("addizionale")));
}

#[tokio::test]
async fn avr_5a_a_dose_without_the_confirmation_flag_is_refused() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let mut body = t.dose(&c, "049269018", 0);
    body.as_object_mut().expect("object").remove("conferma_contatti");
    let (status, v) = t.vaccinate("160", &body).await;
    assert_rule(status, &v, "AVR-5a", "conferma_contatti");
    body["conferma_contatti"] = json!(false);
    assert_eq!(t.vaccinate("160", &body).await.0, 422);
    // Confirming that there are no contacts is enough.
    body["conferma_contatti"] = json!(true);
    body["contatti_dgc"] = json!({});
    t.vaccinated("160", &body).await;
}

#[tokio::test]
async fn avr_5b_a_mobile_with_a_space_is_refused() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let mut body = t.dose(&c, "049269018", 0);
    body["contatti_dgc"] = json!({"cellulare": "333 1234567"});
    let (status, v) = t.vaccinate("160", &body).await;
    assert_rule(status, &v, "AVR-5b", "contatti_dgc.cellulare");
    body["contatti_dgc"] = json!({"cellulare": "+393331234567"});
    t.vaccinated("160", &body).await;
}

#[tokio::test]
async fn avr_7_a_child_of_7_with_the_adult_formulation_is_flagged_then_forced() {
    let t = spawn_ecosystem().await;
    let today = t.eco.context().clock().today();
    let child = t.citizen(|c| c.age_on(today) == 7);
    let region = child.region().code;
    let mut body = t.dose(&child, "049269018", 0);
    let (status, v) = t.vaccinate(region, &body).await;
    assert_rule(status, &v, "AVR-7", "aic");
    body["forza"] = json!(true);
    let forced = t.vaccinated(region, &body).await;
    assert_eq!(forced["avvisi"][0]["regola"], "AVR-7", "{forced}");
    // The paediatric formulation needs no forcing.
    let other = t.citizen(|c| c.age_on(today) == 8);
    let ok = t.vaccinated(other.region().code, &t.dose(&other, "COMIRNATY-10", 0)).await;
    assert_eq!(ok["avvisi"], json!([]), "{ok}");
}

#[tokio::test]
async fn avr_6d_sputnik_abroad_then_mrna_on_day_27_28_180_and_181() {
    let t = spawn_ecosystem().await;
    let today = t.eco.context().clock().today();
    let people: Vec<Citizen> = t
        .eco
        .context()
        .population()
        .iter()
        .filter(|c| c.region().code == "070" && c.age_on(today) >= 30)
        .cloned()
        .collect();
    let cases =
        [(27, None), (28, Some((3, "booster"))), (180, Some((3, "booster"))), (181, Some((1, "ciclo_primario")))];
    for ((day, expected), c) in cases.into_iter().zip(people) {
        for back in [day + 21, day] {
            let declared = json!({"codice_fiscale": c.codice_fiscale().as_str(), "aic": "SPUTNIK-V",
                                  "data_somministrazione": t.days_ago(back), "estero": {"paese": "SM"}});
            let v = t.vaccinated("070", &declared).await;
            assert_eq!(v["inviata_ad_avn"], false, "{v}");
        }
        let (status, v) = t.vaccinate("070", &t.dose(&c, "049269018", 0)).await;
        match expected {
            None => assert_rule(status, &v, "AVR-6d", "data_somministrazione"),
            Some((n, kind)) => {
                assert_eq!(status, 201, "{v}");
                assert_eq!((v["numero_dose"].as_u64(), v["tipo_dose"].as_str()), (Some(n), Some(kind)), "day {day}");
            }
        }
    }
}

#[tokio::test]
async fn a_puglia_dose_for_a_lombardia_resident_reaches_avn_the_mobility_feed_and_ts_after_midnight() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("030");
    let cf = c.codice_fiscale().to_string();
    let v = t.vaccinated("160", &t.dose(&c, "049269018", 30)).await;
    assert!(v["avvisi"].as_array().expect("list").iter().any(|a| a["regola"] == "AVR-2.2"), "imported: {v}");
    let id = v["id"].as_str().expect("id").to_owned();
    t.delivered_to_avn("160", &id).await;
    let held: Value = t
        .get_as("avr-160", System::Avn, &format!("/avn/v1/somministrazioni/160/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(held["inoltro_ts"], "in_attesa", "daily forwarding waits for midnight: {held}");
    let feed: Value =
        t.get_as("avr-030", System::Avn, "/avn/v1/regioni/030/mobilita").await.json().await.expect("json");
    let ids: Vec<_> =
        feed["somministrazioni"].as_array().expect("list").iter().map(|d| d["id_regionale"].clone()).collect();
    assert_eq!(ids, [json!(id)]);
    assert_eq!(t.get_as("avr-160", System::Avn, "/avn/v1/regioni/030/mobilita").await.status(), 403);
    let national = || async {
        let v: Value = t
            .get_as("sar-030", System::SistemaTs, &format!("/ts/v1/assistiti/{cf}/vaccinazioni"))
            .await
            .json()
            .await
            .ok()?;
        Some(v)
    };
    assert_eq!(national().await, Some(json!([])), "not before midnight");
    t.admin(System::SistemaTs, "/clock", json!({"advance": "1d"})).await;
    let list = t
        .eventually("the dose on Sistema TS", || async {
            national().await.filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        })
        .await;
    assert_eq!(list[0]["regione"], "160");
    assert_eq!(list[0]["dose"], 1);
    assert_eq!(list[0]["aic"], "049269018");
    // Lombardia's AVR now sees it through the mobility feed.
    let own: Value = t
        .get_as("vaccinatore-030", System::Sar, &format!("/avr/v1/assistiti/{cf}/vaccinazioni"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(own["vaccinazioni"][0]["fonte"], "mobilita", "{own}");
    // And numbers the next dose from it.
    let second = t.vaccinated("030", &t.dose(&c, "049269018", 0)).await;
    assert_eq!(second["numero_dose"], 2, "{second}");
}

#[tokio::test]
async fn avn_down_for_a_while_loses_and_duplicates_nothing() {
    let t = spawn_with(immediate()).await;
    t.admin(
        System::Avn,
        "/faults",
        json!({"match": {"method": "POST", "path": "/avn/v1/somministrazioni"}, "action": {"status": 503}, "times": 4}),
    )
    .await;
    let mut ids = Vec::new();
    for region in ["160", "050", "120"] {
        let c = t.adult_of(region);
        ids.push((
            region,
            t.vaccinated(region, &t.dose(&c, "049283017", 0)).await["id"].as_str().expect("id").to_owned(),
        ));
    }
    for (region, id) in &ids {
        t.delivered_to_avn(region, id).await;
    }
    let state = t.get_json(System::Avn, "/_admin/state").await;
    assert_eq!(state["simulator"]["somministrazioni"], 3, "{state}");
    // Immediate forwarding: each reaches Sistema TS once.
    t.eventually("all forwarded", || async {
        let s = t.get_json(System::Avn, "/_admin/state").await;
        (s["simulator"]["da_inoltrare"] == 0).then_some(())
    })
    .await;
    let ts = t.get_json(System::SistemaTs, "/_admin/state").await;
    assert_eq!(ts["simulator"]["vaccinazioni"], 3, "{ts}");
}

#[tokio::test]
async fn avr_ts_check_a_wrong_dose_number_is_an_anomaly_until_corrected() {
    let t = spawn_with(immediate()).await;
    let c = t.adult_of("160");
    let mut body = t.dose(&c, "049269018", 0);
    body["numero_dose_forzato"] = json!(2);
    let v = t.vaccinated("160", &body).await;
    assert_eq!((v["numero_dose"].as_u64(), v["forzato"].as_bool()), (Some(2), Some(true)), "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let open = || async {
        let v: Value = t.get_as("sar-160", System::SistemaTs, "/ts/v1/anomalie?aperte=true").await.json().await.ok()?;
        Some(v.as_array()?.len())
    };
    let anomalies = t.eventually("an anomaly", || async { open().await.filter(|n| *n > 0) }).await;
    assert_eq!(anomalies, 1);
    let list: Value = t.get_as("sar-160", System::SistemaTs, "/ts/v1/anomalie").await.json().await.expect("json");
    assert_eq!(list[0]["tipo"], "numero_dose", "{list}");
    assert_eq!(list[0]["id_regionale"], json!(id));
    // Another region sees none of it.
    let other: Value = t.get_as("sar-030", System::SistemaTs, "/ts/v1/anomalie").await.json().await.expect("json");
    assert_eq!(other, json!([]));
    // The operator forces the right number: AVN gets version 2, Sistema TS closes the anomaly.
    let res = t
        .http
        .put(t.url(System::Sar, &format!("/avr/v1/vaccinazioni/{id}/numero-dose")))
        .basic_auth("vaccinatore-160", Some("vaccinatore-160-secret"))
        .json(&json!({"numero_dose": 1}))
        .send()
        .await
        .expect("put");
    let forced: Value = res.json().await.expect("json");
    assert_eq!((forced["versione"].as_u64(), forced["gia_forzato"].as_bool()), (Some(2), Some(true)), "{forced}");
    t.eventually("anomaly closed", || async { open().await.filter(|n| *n == 0) }).await;
}

#[tokio::test]
async fn avr_2_1_doses_move_to_the_new_codice_fiscale() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let old = c.codice_fiscale().to_string();
    t.vaccinated("160", &t.dose(&c, "049269018", 30)).await;
    let res =
        t.post_as("asl-160", System::SistemaTs, "/ts/v1/anagrafe/variazioni-cf", &json!({"codice_fiscale": old})).await;
    assert_eq!(res.status(), 201);
    let change: Value = res.json().await.expect("json");
    let new = change["codice_fiscale"].as_str().expect("new").to_owned();
    assert_ne!(new, old);
    let registry: Value =
        t.get_as("sar-160", System::SistemaTs, &format!("/ts/v1/assistiti/{old}")).await.json().await.expect("json");
    assert_eq!(registry["codice_fiscale"], json!(new), "an obsolete code answers with the current one");
    let mut body = t.dose(&c, "049269018", 0);
    body["codice_fiscale"] = json!(new);
    let second = t.vaccinated("160", &body).await;
    assert_eq!(second["numero_dose"], 2, "{second}");
    assert!(second["avvisi"].as_array().expect("list").iter().any(|a| a["regola"] == "AVR-2.1"), "{second}");
    let v: Value = t
        .get_as("vaccinatore-160", System::Sar, &format!("/avr/v1/assistiti/{new}/vaccinazioni"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["vaccinazioni"].as_array().expect("list").len(), 2, "{v}");
}

#[tokio::test]
async fn avr_2_3_a_person_outside_the_ssn_is_vaccinated_with_the_sistema_ts_identifier() {
    let t = spawn_ecosystem().await;
    let res = t
        .post_as(
            "asl-160",
            System::SistemaTs,
            "/ts/v1/assistiti/stranieri",
            &json!({"cognome": "Smith", "nome": "Anna", "sesso": "F", "data_nascita": "1980-02-03"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.expect("json")["identificativo"].as_str().expect("id").to_owned();
    assert!(id.starts_with("TS") && id.len() == 16, "{id}");
    let mut body = t.dose(&t.adult_of("160"), "049269018", 0);
    body.as_object_mut().expect("object").remove("codice_fiscale");
    body["id_assistito"] = json!({"tipo": "TS", "valore": id});
    let v = t.vaccinated("160", &body).await;
    assert_eq!(v["assistito"], json!(id));
    body["id_assistito"] = json!({"tipo": "TS", "valore": "TS99999999999999"});
    let (status, refused) = t.vaccinate("160", &body).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["requirement"], "AVR-2.3");
}

#[tokio::test]
async fn avr_3_infection_dates_and_an_infection_after_vaccination() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let path = format!("/avr/v1/assistiti/{}/infezioni", c.codice_fiscale());
    let post = |body: Value| {
        let path = path.clone();
        let t = &t;
        async move {
            let res = t.post_as("vaccinatore-160", System::Sar, &path, &body).await;
            (res.status().as_u16(), res.json::<Value>().await.expect("json"))
        }
    };
    let (s, v) = post(json!({"data_prelievo": t.days_ago(100), "data_esito": t.days_ago(101)})).await;
    assert_rule(s, &v, "AVR-3", "data_prelievo");
    let (s, v) = post(
        json!({"data_prelievo": t.days_ago(100), "data_esito": t.days_ago(99), "data_guarigione": t.days_ago(99)}),
    )
    .await;
    assert_rule(s, &v, "AVR-3", "data_guarigione");
    let (s, _) = post(
        json!({"data_prelievo": t.days_ago(100), "data_esito": t.days_ago(99), "data_guarigione": t.days_ago(80)}),
    )
    .await;
    assert_eq!(s, 201);
    // One dose after the infection completes the cycle: the next is a booster.
    let first = t.vaccinated("160", &t.dose(&c, "049269018", 60)).await;
    assert_eq!(first["numero_dose"], 1);
    let mut next = t.dose(&c, "049269018", 0);
    next["categoria_rischio"] = json!("eta_over_60");
    let second = t.vaccinated("160", &next).await;
    assert_eq!(second["tipo_dose"], "booster", "{second}");
    // An infection after the first dose is not registered.
    let (s, v) = post(json!({"data_prelievo": t.days_ago(10), "data_esito": t.days_ago(9)})).await;
    assert_rule(s, &v, "AVR-3", "data_prelievo");
}

#[tokio::test]
async fn avn_validates_checks_the_region_and_is_idempotent() {
    let t = spawn_ecosystem().await;
    let mut dose = json!({
        "id_regionale": "d-1", "id_assistito": {"tipo": "CF", "valore": "RSSMRA45D25F205N"},
        "regione_residenza": "030", "regione_somministrazione": "160", "asl": "160101", "struttura": "HUB",
        "data_somministrazione": t.today(), "ora": "10:30", "aic": "049269018", "lotto": "FC5089", "dose": 1,
        "tipo_dose": "ciclo_primario", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna",
        "via": "IM", "sito": "deltoide_sx", "modalita": "CO"
    });
    let post = |body: Value, account: &'static str| {
        let t = &t;
        async move { t.post_as(account, System::Avn, "/avn/v1/somministrazioni", &body).await }
    };
    assert_eq!(post(dose.clone(), "avr-160").await.status(), 201);
    assert_eq!(post(dose.clone(), "avr-160").await.status(), 200, "the same dose again");
    assert_eq!(post(dose.clone(), "avr-030").await.status(), 403, "another region's dose");
    dose["lotto"] = json!("OTHER");
    assert_eq!(post(dose.clone(), "avr-160").await.status(), 409, "same version, other data");
    dose["versione"] = json!(2);
    assert_eq!(post(dose.clone(), "avr-160").await.status(), 200, "a correction");
    let mut bad = dose.clone();
    bad["ora"] = json!("9.30");
    bad["aic"] = json!("000");
    bad["contatti_dgc"] = json!({"cellulare": "333 12"});
    let res = post(bad, "avr-160").await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.expect("json");
    let fields: Vec<_> = v["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("ora"), json!("aic"), json!("contatti_dgc.cellulare")]);
    let state = t.get_json(System::Avn, "/_admin/state").await;
    assert_eq!(state["simulator"]["somministrazioni"], 1, "one dose, whatever was sent: {state}");
}

#[tokio::test]
async fn sistema_ts_names_the_bad_field_of_a_dose_in_an_avn_batch() {
    let t = spawn_ecosystem().await;
    let dose = json!({
        "id_regionale": "d-1", "id_assistito": {"tipo": "CF", "valore": "RSSMRA45D25F205N"},
        "regione_residenza": "030", "regione_somministrazione": "160", "asl": "160101", "struttura": "HUB",
        "data_somministrazione": t.today(), "ora": "10:30", "aic": "049269018", "lotto": "L", "dose": 1,
        "tipo_dose": "ciclo_primario", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna",
        "via": "IM", "sito": "deltoide_sx", "modalita": "CO"
    });
    let field_of = |body: Value| {
        let t = &t;
        async move {
            let res = t.post_as("avn", System::SistemaTs, "/ts/v1/avn/vaccinazioni", &body).await;
            assert_eq!(res.status(), 400);
            res.json::<Value>().await.expect("json")["errors"][0]["field"].clone()
        }
    };
    let mut bad_rule = dose.clone();
    bad_rule["ora"] = json!("25:00");
    assert_eq!(field_of(json!({"vaccinazioni": [dose.clone(), bad_rule]})).await, "vaccinazioni[1].ora");
    let mut bad_type = dose.clone();
    bad_type["dose"] = json!("one");
    assert_eq!(field_of(json!({"vaccinazioni": [bad_type]})).await, "vaccinazioni[0].dose");
    assert_eq!(
        t.post_as("sar-160", System::SistemaTs, "/ts/v1/avn/vaccinazioni", &json!({"vaccinazioni": []})).await.status(),
        403
    );
}

#[tokio::test]
async fn the_avr_names_every_malformed_field_at_once() {
    let t = spawn_ecosystem().await;
    let c = t.adult_of("160");
    let mut body = t.dose(&c, "049269018", 0);
    body["codice_fiscale"] = json!("X");
    body["data_somministrazione"] = json!("2021-13-01");
    body["ora"] = json!("9.30");
    let (status, v) = t.vaccinate("160", &body).await;
    assert_eq!(status, 400, "{v}");
    let fields: Vec<_> = v["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("codice_fiscale"), json!("data_somministrazione"), json!("ora")]);
    body.as_object_mut().expect("object").remove("codice_fiscale");
    body["id_assistito"] = json!({"tipo": "TS", "valore": "TS12"});
    let (status, v) = t.vaccinate("160", &body).await;
    assert_eq!((status, v["errors"][0]["field"].clone()), (400, json!("id_assistito.valore")), "{v}");
}
