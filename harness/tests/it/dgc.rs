//! Flow 4 over real HTTP: doses and tests become EU DCCs at PN-DGC, the AUTHCODE
//! reaches the citizen, Immuni and PN-DGC hand the certificate out, a verifier
//! accepts it.

use std::time::Duration;

use ecosim_core::System;
use ecosim_core::config::{Config, Forwarding};
use ecosim_domain::codes::{Authcode, CardLast8, Cun, sha256_hex};
use ecosim_domain::population::Citizen;
use ecosim_harness::verifier::{Status, Verifier};
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_with};

fn immediate() -> Config {
    let mut c = Config::for_tests(42);
    c.timing.avn_forwarding = Forwarding::Immediate;
    c
}

impl TestEco {
    fn adult(&self, region: &str) -> Citizen {
        let today = self.eco.context().clock().today();
        self.citizen(|c| c.region().code == region && (30..60).contains(&c.age_on(today)) && c.mobile().is_some())
    }

    async fn advance(&self, by: &str) {
        self.admin(System::SistemaTs, "/clock", json!({"advance": by})).await;
    }

    async fn vaccinate_today(&self, c: &Citizen, aic: &str) -> String {
        let body = json!({
            "codice_fiscale": c.codice_fiscale().as_str(), "data_somministrazione": self.today(), "ora": "10:00",
            "aic": aic, "lotto": "L1", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna", "via": "IM",
            "sito": "deltoide_sx", "struttura": "HUB", "conferma_contatti": true,
            "contatti_dgc": {"cellulare": c.mobile().map(|m| m.to_string()), "email": c.email().map(|e| e.to_string())},
        });
        let region = c.region().code;
        let res = self.post_as(&format!("vaccinatore-{region}"), System::Sar, "/avr/v1/vaccinazioni", &body).await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
    }

    /// Waits until PN-DGC holds `n` events (the dose went AVR -> AVN -> Sistema TS -> PN-DGC).
    async fn pn_dgc_has_events(&self, n: u64) {
        for _ in 0..500 {
            let s = self.get_json(System::PnDgc, "/_admin/state").await;
            if s["simulator"]["eventi"].as_u64() == Some(n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("PN-DGC never got {n} events: {}", self.get_json(System::PnDgc, "/_admin/state").await);
    }

    /// The AUTHCODE SMS on `c`'s phone, waiting for the `n`-th.
    async fn authcodes(&self, c: &Citizen, n: usize) -> Vec<Authcode> {
        let to = c.mobile().expect("mobile").to_string();
        for _ in 0..500 {
            let sms: Vec<Value> = self.sms_inbox(&to).await.into_iter().filter(|m| m["from"] == "Min Salute").collect();
            if sms.len() >= n {
                return sms
                    .iter()
                    .map(|m| {
                        let text = m["text"].as_str().expect("text");
                        assert_eq!(m["segments"], 1, "{text}");
                        let at = text.find("AUTHCODE ").expect("an AUTHCODE") + 9;
                        Authcode::parse(&text[at..at + 12]).expect("a valid AUTHCODE")
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no {n} AUTHCODE SMS for {to}");
    }

    async fn pn_dgc_get(&self, c: &Citizen, param: &str, hash: &str, expiry: &str) -> reqwest::Response {
        let card = c.card();
        self.http
            .get(self.url(System::PnDgc, "/v1/dgc"))
            .query(&[
                ("mode", "ONLY_QRCODE"),
                ("healthInsuranceCardNumber", card.number.last8().as_str()),
                ("healthInsuranceCardDate", expiry),
                (param, hash),
            ])
            .send()
            .await
            .expect("reachable")
    }

    async fn hc1_of(&self, c: &Citizen, param: &str, hash: &str) -> String {
        let res = self.pn_dgc_get(c, param, hash, &c.card().expiry.to_string()).await;
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.expect("json");
        v["data"]["hc1"].as_str().expect("hc1").to_owned()
    }

    async fn verifier(&self) -> Verifier {
        Verifier::fetch(&self.eco.url(System::PnDgc)).await.expect("signer published")
    }
}

#[tokio::test]
async fn two_comirnaty_doses_21_days_apart_give_a_2_of_2_certificate_retrievable_everywhere() {
    let t = spawn_with(immediate()).await;
    let c = t.adult("160");
    t.vaccinate_today(&c, "049269018").await;
    t.pn_dgc_has_events(1).await;
    t.advance("21d").await;
    let after_first = t.authcodes(&c, 1).await;
    t.vaccinate_today(&c, "049269018").await;
    t.pn_dgc_has_events(2).await;
    t.advance("1d").await;
    let codes = t.authcodes(&c, 2).await;
    let code = codes.last().expect("second").clone();
    assert_ne!(code, after_first[0], "each certificate has its own AUTHCODE");

    // Immuni get-dgc, with the card's last 8 digits and expiry.
    let mut app = t.eco.app(5);
    let last8 = CardLast8::parse(c.card().number.last8().as_str()).expect("digits");
    let found = app.get_dgc("authcode", &code.sha256(), &last8, c.card().expiry, false).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert!(found.body["qrcode"].as_str().is_some_and(|q| q.starts_with("iVBORw0KGgo")), "a PNG");
    let wrong = app.get_dgc("authcode", &code.sha256(), &last8, c.card().expiry.tomorrow().expect("date"), false).await;
    assert_eq!((wrong.status, wrong.error_code()), (404, Some(1102)));

    // PN-DGC directly: HC1 verified, dn/sd 2/2; a wrong card expiry is 404.
    let hc1 = t.hc1_of(&c, "authCodeSHA256", &code.sha256()).await;
    let verifier = t.verifier().await;
    let verified = verifier.decode(&hc1).expect("signature verifies");
    let v = &verified.dcc["v"][0];
    assert_eq!((v["dn"].as_i64(), v["sd"].as_i64()), (Some(2), Some(2)), "{}", verified.dcc);
    assert_eq!(v["mp"], "EU/1/20/1528");
    assert_eq!(verified.dcc["nam"]["fn"], c.surname().to_uppercase());
    assert_eq!(verified.iss.as_deref(), Some("IT"));
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::Valid);
    let wrong = t.pn_dgc_get(&c, "authCodeSHA256", &code.sha256(), "2099-01-01").await;
    assert_eq!(wrong.status(), 404);

    // The IO app's retrieval needs the codice fiscale's hash to match.
    let io = |cf: String| {
        let t = &t;
        let code = code.clone();
        async move {
            t.http
                .post(t.url(System::PnDgc, "/v1/certificate/citizen/io"))
                .json(&json!({"authCodeSHA256": code.sha256(), "cfSHA256": sha256_hex(&cf)}))
                .send()
                .await
                .expect("reachable")
        }
    };
    let ok = io(c.codice_fiscale().to_string()).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["data"]["uvci"], v["ci"]);
    assert_eq!(io("RSSMRA45D25F205N".into()).await.status(), 404);

    // The e-mail carries the same AUTHCODE.
    let mails = t.mail_inbox(&c.email().map(|e| e.to_string()).unwrap_or_default()).await;
    if c.email().is_some() {
        assert!(mails.iter().any(|m| m["body"].as_str().is_some_and(|b| b.contains(code.as_str()))), "{mails:?}");
    }
}

#[tokio::test]
async fn a_first_dose_certificate_comes_on_day_12_and_is_valid_from_day_15() {
    let t = spawn_with(immediate()).await;
    let c = t.adult("090");
    t.vaccinate_today(&c, "049283017").await;
    t.pn_dgc_has_events(1).await;
    t.advance("11d").await;
    let state = t.get_json(System::PnDgc, "/_admin/state").await;
    assert_eq!(state["simulator"]["certificati"], 0, "nothing on day 11: {state}");
    t.advance("1d").await;
    let code = t.authcodes(&c, 1).await.remove(0);
    let hc1 = t.hc1_of(&c, "authCodeSHA256", &code.sha256()).await;
    let verifier = t.verifier().await;
    let v = &verifier.decode(&hc1).expect("verifies").dcc["v"][0];
    assert_eq!((v["dn"].as_i64(), v["sd"].as_i64()), (Some(1), Some(2)));
    t.advance("2d").await;
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::NotValidYet, "day 14");
    t.advance("1d").await;
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::Valid, "day 15");
}

#[tokio::test]
async fn a_negative_test_gives_a_test_certificate_retrievable_with_its_cun() {
    let t = spawn_with(immediate()).await;
    let c = t.adult("120");
    let id = t.lab_reports("lab-120", &t.report(&c, "NEGATIVO")).await;
    let state = t.sar_state("lab-120", &id, "notificato").await;
    let cun = Cun::parse(state["cun"].as_str().expect("cun")).expect("valid");
    let mut app = t.eco.app(9);
    let last8 = CardLast8::parse(c.card().number.last8().as_str()).expect("digits");
    // The SAR keeps the contacts (ORD-3.1a5): no AUTHCODE, retrieval by CUN.
    let mut found = app.get_dgc("cun", &cun.sha256(), &last8, c.card().expiry, false).await;
    for _ in 0..200 {
        if found.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        found = app.get_dgc("cun", &cun.sha256(), &last8, c.card().expiry, false).await;
    }
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert!(t.sms_inbox(&c.mobile().expect("mobile").to_string()).await.iter().all(|m| m["from"] != "Min Salute"));
    let hc1 = t.hc1_of(&c, "sourceDocumentIDSHA256", &cun.sha256()).await;
    let verifier = t.verifier().await;
    let dcc = verifier.decode(&hc1).expect("verifies").dcc;
    assert_eq!(dcc["t"][0]["tr"], "260415000", "not detected");
    assert_eq!(dcc["t"][0]["tt"], "LP6464-4", "molecular");
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::Valid);
    t.advance("4d").await;
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::Expired, "72 hours");
}

#[tokio::test]
async fn an_issued_hc1_decodes_with_an_independent_implementation_to_the_same_dcc() {
    use coset::TaggedCborSerializable;
    use std::io::Read;
    let t = spawn_with(immediate()).await;
    let c = t.adult("160");
    t.vaccinate_today(&c, "049269018").await;
    t.pn_dgc_has_events(1).await;
    t.advance("12d").await;
    let code = t.authcodes(&c, 1).await.remove(0);
    let hc1 = t.hc1_of(&c, "authCodeSHA256", &code.sha256()).await;
    // Independently: Base45 by hand, zlib (flate2), COSE (coset), CBOR (ciborium).
    let text = hc1.strip_prefix("HC1:").expect("prefix");
    const B45: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let digits: Vec<u32> = text.chars().map(|ch| B45.find(ch).expect("base45") as u32).collect();
    let mut zipped = Vec::new();
    for group in digits.chunks(3) {
        match group {
            [a, b, c] => {
                let n = a + b * 45 + c * 2025;
                zipped.extend([(n >> 8) as u8, (n & 0xff) as u8]);
            }
            [a, b] => zipped.push((a + b * 45) as u8),
            _ => panic!("bad length"),
        }
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&zipped[..]).read_to_end(&mut raw).expect("zlib");
    let sign1 = coset::CoseSign1::from_tagged_slice(&raw).expect("COSE_Sign1");
    let claims: ciborium::Value = ciborium::from_reader(&sign1.payload.expect("payload")[..]).expect("CBOR");
    let hcert = claims
        .as_map()
        .expect("map")
        .iter()
        .find(|(k, _)| k.as_integer() == Some((-260).into()))
        .expect("hcert")
        .1
        .clone();
    let dcc = ecosim_harness::verifier::json_of(&hcert.as_map().expect("map")[0].1);
    assert_eq!(dcc, t.verifier().await.decode(&hc1).expect("verifies").dcc);
    let mut redacted = dcc.clone();
    redacted["v"][0]["dt"] = json!("[date]");
    redacted["v"][0]["ci"] = json!("[uvci]");
    redacted["dob"] = json!("[dob]");
    redacted["nam"] = json!("[name]");
    insta::assert_snapshot!(serde_json::to_string_pretty(&redacted).expect("json"), @r#"
    {
      "dob": "[dob]",
      "nam": "[name]",
      "v": [
        {
          "ci": "[uvci]",
          "co": "IT",
          "dn": 1,
          "dt": "[date]",
          "is": "Ministero della Salute",
          "ma": "ORG-100030215",
          "mp": "EU/1/20/1528",
          "sd": 2,
          "tg": "840539006",
          "vp": "1119349007"
        }
      ],
      "ver": "1.3.0"
    }
    "#);
}

#[tokio::test]
async fn a_recovery_after_vaccination_is_a_cbis_certificate_retrievable_with_its_nucg() {
    let t = spawn_with(immediate()).await;
    let c = t.adult("150");
    t.vaccinate_today(&c, "049269018").await;
    t.pn_dgc_has_events(1).await;
    t.advance("30d").await;
    t.authcodes(&c, 1).await;
    let day = |back: i64| {
        let today = t.eco.context().clock().today();
        today.checked_sub(jiff::Span::new().days(back)).expect("date").to_string()
    };
    let res = t
        .post_as(
            "asl-150",
            System::SistemaTs,
            "/ts/v1/guarigioni",
            &json!({"codice_fiscale": c.codice_fiscale().as_str(), "data_primo_positivo": day(20),
                    "data_guarigione": day(5), "contatti_dgc": {"cellulare": c.mobile().map(|m| m.to_string())}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let nucg =
        ecosim_domain::codes::Nucg::parse(res.json::<Value>().await.expect("json")["nucg"].as_str().expect("nucg"))
            .expect("a valid NUCG");
    t.pn_dgc_has_events(2).await;
    t.advance("1d").await;
    t.authcodes(&c, 2).await;
    let mut app = t.eco.app(11);
    let last8 = CardLast8::parse(c.card().number.last8().as_str()).expect("digits");
    let found = app.get_dgc("nucg", &nucg.sha256(), &last8, c.card().expiry, false).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body["fglTipoDgc"], "cbis", "a recovery after vaccination");
    let hc1 = t.hc1_of(&c, "sourceDocumentIDSHA256", &nucg.sha256()).await;
    let verifier = t.verifier().await;
    assert_eq!(verifier.decode(&hc1).expect("verifies").dcc["r"][0]["fr"], json!(day(21)));
    assert_eq!(verifier.status(&hc1, t.eco.context().clock().now()), Status::Valid);
    // Bad input is named.
    let res = t
        .post_as(
            "asl-150",
            System::SistemaTs,
            "/ts/v1/guarigioni",
            &json!({"codice_fiscale": "X", "data_guarigione": "2021-13-01"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.expect("json");
    let fields: Vec<_> = v["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("codice_fiscale"), json!("data_primo_positivo"), json!("data_guarigione")]);
}

#[tokio::test]
async fn pn_dgc_names_bad_fields_and_takes_each_event_once() {
    let t = spawn_with(immediate()).await;
    let res = t
        .http
        .get(t.url(System::PnDgc, "/v1/dgc"))
        .query(&[
            ("healthInsuranceCardNumber", "1234"),
            ("healthInsuranceCardDate", "31/05/2026"),
            ("authCodeSHA256", "xyz"),
        ])
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.expect("json");
    let fields: Vec<_> = v["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("healthInsuranceCardNumber"), json!("healthInsuranceCardDate"), json!("authCodeSHA256")]);

    let c = t.adult("160");
    let event = json!({
        "id": "test:manual-1",
        "assistito": {"id": c.codice_fiscale().as_str(), "tipo": "CF", "cognome": c.surname(), "nome": c.name(),
                      "data_nascita": c.birth_date(), "ultime_8_cifre_ts": c.card().number.last8().as_str(),
                      "scadenza_ts": c.card().expiry},
        "test": {"cun": "CUN-6HQ5EW73HE", "tipo_test": "ANTIGENICO", "esito": "NEGATIVO",
                 "data_esecuzione": t.today(), "struttura": "LAB"},
    });
    let post = |body: Value, account: &'static str| {
        let t = &t;
        async move { t.post_as(account, System::PnDgc, "/pn-dgc/v1/eventi", &body).await }
    };
    assert_eq!(post(event.clone(), "sar-160").await.status(), 403, "only Sistema TS's service account");
    let first = post(event.clone(), "sistema-ts").await;
    assert_eq!(first.status(), 202);
    assert_eq!(first.json::<Value>().await.expect("json")["stato"], "in_attesa");
    assert_eq!(post(event.clone(), "sistema-ts").await.status(), 200, "the same event again");
    let mut other = event.clone();
    other["test"]["struttura"] = json!("ANOTHER");
    assert_eq!(post(other, "sistema-ts").await.status(), 409);
    let mut bad = event.clone();
    bad["id"] = json!("test:manual-2");
    bad["test"]["cun"] = json!("CUN-XXXX");
    bad["assistito"]["ultime_8_cifre_ts"] = json!("12");
    let res = post(bad, "sistema-ts").await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.expect("json");
    let fields: Vec<_> = v["errors"].as_array().expect("errors").iter().map(|e| e["field"].clone()).collect();
    assert_eq!(fields, [json!("assistito.ultime_8_cifre_ts"), json!("test.cun")]);
    let state = t.get_json(System::PnDgc, "/_admin/state").await;
    assert_eq!(state["simulator"]["certificati"], 1, "one certificate: {state}");
    // A rapid test: the certificate says so (48 hours).
    let hc1 = t.hc1_of(&c, "sourceDocumentIDSHA256", &sha256_hex("CUN-6HQ5EW73HE")).await;
    assert_eq!(t.verifier().await.decode(&hc1).expect("verifies").dcc["t"][0]["tt"], "LP217198-3");
}

#[tokio::test]
async fn a_restart_with_a_data_dir_keeps_a_waiting_certificate_and_issues_it_on_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config { data_dir: Some(dir.path().to_owned()), ..immediate() };
    let t = spawn_with(config.clone()).await;
    let c = t.adult("050");
    t.vaccinate_today(&c, "049269018").await;
    t.pn_dgc_has_events(1).await;
    let state = t.get_json(System::PnDgc, "/_admin/state").await;
    assert_eq!(state["simulator"]["in_attesa"], 1, "waiting for day 12: {state}");
    t.eco.shutdown().await;

    // Same data directory: the event is still waiting, the clock resumes, day 12 issues it.
    let t = spawn_with(config).await;
    let state = t.get_json(System::PnDgc, "/_admin/state").await;
    assert_eq!(state["simulator"]["in_attesa"], 1, "{state}");
    t.advance("12d").await;
    let code = t.authcodes(&c, 1).await.remove(0);
    let hc1 = t.hc1_of(&c, "authCodeSHA256", &code.sha256()).await;
    // The signer comes from the seed: the certificate verifies after the restart too.
    assert!(t.verifier().await.decode(&hc1).is_ok());
    // AVN kept the dose, the AVR its record.
    let held = t.get_json(System::Avn, "/_admin/state").await;
    assert_eq!(held["simulator"]["somministrazioni"], 1, "{held}");
    t.eco.shutdown().await;
}
