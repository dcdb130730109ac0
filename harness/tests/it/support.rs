//! `spawn_ecosystem()` and helpers: a fresh in-process ecosystem on port 0 per test.

use std::time::Duration;

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_domain::population::Citizen;
use ecosim_harness::ecosystem::Ecosystem;
use serde_json::{Value, json};

pub(crate) struct TestEco {
    pub(crate) eco: Ecosystem,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn spawn_ecosystem() -> TestEco {
    spawn_with(Config::for_tests(42)).await
}

pub(crate) async fn spawn_with(config: Config) -> TestEco {
    ecosim_core::telemetry::init_for_tests();
    let eco = Ecosystem::start(config).await.expect("ecosystem starts");
    TestEco { eco, http: reqwest::Client::new() }
}

impl TestEco {
    pub(crate) fn url(&self, system: System, path: &str) -> String {
        format!("{}{path}", self.eco.url(system))
    }

    /// The first citizen matching `pred`.
    pub(crate) fn citizen(&self, pred: impl Fn(&Citizen) -> bool) -> Citizen {
        self.eco.context().population().iter().find(|c| pred(c)).cloned().expect("a matching citizen")
    }

    pub(crate) fn today(&self) -> String {
        self.eco.context().clock().today().to_string()
    }

    /// A lab report for `c` from region `region`'s lab.
    pub(crate) fn report(&self, c: &Citizen, esito: &str) -> Value {
        json!({
            "codice_fiscale": c.codice_fiscale().as_str(),
            "esito": esito,
            "tipo_test": "MOLECOLARE",
            "data_esecuzione": self.today(),
            "struttura": "LAB-001",
            "contatti": {
                "cellulare": c.mobile().map(|m| m.to_string()),
                "email": c.email().map(|e| e.to_string()),
                "cellulare_genitore": c.parent_mobile().map(|m| m.to_string()),
            },
        })
    }

    pub(crate) async fn post_as(&self, account: &str, system: System, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(system, path))
            .basic_auth(account, Some(format!("{account}-secret")))
            .json(body)
            .send()
            .await
            .expect("reachable")
    }

    pub(crate) async fn get_as(&self, account: &str, system: System, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(system, path))
            .basic_auth(account, Some(format!("{account}-secret")))
            .send()
            .await
            .expect("reachable")
    }

    pub(crate) async fn get_json(&self, system: System, path: &str) -> Value {
        self.http.get(self.url(system, path)).send().await.expect("reachable").json().await.expect("json")
    }

    pub(crate) async fn admin(&self, system: System, path: &str, body: Value) -> Value {
        let res = self.http.post(self.url(system, &format!("/_admin{path}"))).json(&body).send().await.expect("admin");
        assert!(res.status().is_success(), "admin {path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    /// Reports a result to the SAR as `lab`; returns the SAR's id.
    pub(crate) async fn lab_reports(&self, lab: &str, body: &Value) -> String {
        let res = self.post_as(lab, System::Sar, "/sar/v1/esiti", body).await;
        assert_eq!(res.status(), 202, "{:?}", res.text().await);
        let v: Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Waits until the SAR reports `stato` for `id`; returns the whole state.
    pub(crate) async fn sar_state(&self, lab: &str, id: &str, stato: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..500 {
            last = self.get_as(lab, System::Sar, &format!("/sar/v1/esiti/{id}")).await.json().await.expect("json");
            if last["stato"] == stato {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("result {id} never reached {stato}: {last}");
    }

    pub(crate) async fn sms_inbox(&self, msisdn: &str) -> Vec<Value> {
        let v = self.get_json(System::SmsGateway, &format!("/sms/v1/inbox/{msisdn}")).await;
        v["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The SMS from `sistema Ts` (CUNs) on a phone; AUTHCODEs come from `Min Salute`.
    pub(crate) async fn cun_sms(&self, msisdn: &str) -> Vec<Value> {
        self.sms_inbox(msisdn).await.into_iter().filter(|m| m["from"] == "sistema Ts").collect()
    }

    pub(crate) async fn mail_inbox(&self, address: &str) -> Vec<Value> {
        let v = self.get_json(System::SmsGateway, &format!("/mail/v1/inbox/{address}")).await;
        v["messages"].as_array().cloned().unwrap_or_default()
    }
}

/// The CUN inside a message text.
pub(crate) fn cun_in(text: &str) -> String {
    let at = text.find("CUN-").expect("a CUN in the text");
    text[at..at + 14].to_owned()
}
