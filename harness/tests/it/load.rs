//! `ecosim load` against SARs: the reference one, a vendor's written in Python
//! (outside the crate), and a broken variant whose duplicates the check must see.

use std::time::Duration;

use ecosim_core::System;
use ecosim_harness::load::{LoadOptions, drive};
use serde_json::json;

use crate::certify::{PythonSar, national};

fn small(rate: f64, seconds: u64) -> LoadOptions {
    LoadOptions {
        rate,
        duration: Duration::from_secs(seconds),
        drain: Duration::from_secs(60),
        samples: 10,
        progress: false,
        ..LoadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_sar_under_open_loop_load_loses_and_duplicates_nothing() {
    let eco = national().await;
    let sar = PythonSar::start(&eco, &[]);
    let summary = drive(&eco, &sar.url, &small(50.0, 2)).await.expect("a run");
    assert_eq!((summary.due, summary.acknowledged), (100, 100), "{summary:?}");
    assert_eq!((summary.ts_records, summary.cun_sms, summary.lost, summary.duplicated), (100, 100, 0, 0));
    assert_eq!(summary.misdirected, 0, "{summary:?}");
    assert!(!summary.sar_in_process, "a SAR of its own: {summary:?}");
    assert!(summary.clean(), "{summary:?}");
    assert_eq!(summary.latency_ms.count, 100);
    assert!(summary.report_to_sms_ms.count > 0, "the sampled results' SMS were timed: {summary:?}");
    drop(sar);
    eco.shutdown().await;
}

/// The Python SAR with a fresh key on every retry, while Sistema TS records results
/// but its answers are lost on the way back: each retry makes a second record and
/// a second SMS, and the load check says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_sar_that_retries_with_a_new_key_shows_duplicates() {
    let eco = national().await;
    let sar = PythonSar::start(&eco, &["new-key"]);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/_admin/faults", eco.url(System::SistemaTs)))
        .json(&json!({"match": {"path": "/ts/v1/test-results"}, "action": {"drop_reply": true}, "times": 5}))
        .send()
        .await
        .expect("the admin API answers");
    assert!(res.status().is_success(), "the fault is accepted: {}", res.status());
    let summary = drive(&eco, &sar.url, &small(20.0, 1)).await.expect("a run");
    assert_eq!(summary.acknowledged, 20, "{summary:?}");
    assert_eq!(summary.duplicated, 5, "five dropped answers, five second records: {summary:?}");
    assert!(!summary.clean());
    drop(sar);
    eco.shutdown().await;
}

/// The Python SAR texting each CUN to the number of the result before it (a mix-up
/// between citizens): as many records and SMS as results, so totals look right; the
/// check of each result finds the CUNs on the wrong phones.
#[tokio::test(flavor = "multi_thread")]
async fn a_sar_that_texts_each_cun_to_the_wrong_phone_is_not_clean_though_the_totals_match() {
    let eco = national().await;
    let sar = PythonSar::start(&eco, &["crossed-sms"]);
    let options = LoadOptions { minors: 0, ..small(20.0, 1) };
    let summary = drive(&eco, &sar.url, &options).await.expect("a run");
    assert_eq!(summary.acknowledged, 20, "{summary:?}");
    assert_eq!((summary.ts_records, summary.cun_sms), (20, 20), "the totals match: {summary:?}");
    // The first CUN texted went to its own phone; every other to the one before's
    // (the run's 20 citizens, drawn by seed, have 20 different numbers).
    assert_eq!(summary.misdirected, 19, "{summary:?}");
    assert_eq!((summary.lost, summary.duplicated), (0, 0), "{summary:?}");
    assert!(!summary.clean());
    drop(sar);
    eco.shutdown().await;
}

/// PN-DGC refusing every event (a fault rule): the CUN flow is clean (certificates
/// are not judged), and the report says the certificates stopped and why.
#[tokio::test(flavor = "multi_thread")]
async fn when_pn_dgc_refuses_the_events_the_report_says_why_the_certificates_stopped() {
    let eco = national().await;
    let sar = PythonSar::start(&eco, &[]);
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/faults", eco.url(System::PnDgc)))
        .json(&json!({"match": {"path": "/pn-dgc/v1/eventi"}, "action": {"status": 503}}))
        .send()
        .await
        .expect("the admin API answers");
    assert!(res.status().is_success(), "the fault is accepted: {}", res.status());
    let options = LoadOptions { negatives: 100, drain: Duration::from_secs(2), ..small(20.0, 1) };
    let summary = drive(&eco, &sar.url, &options).await.expect("a run");
    assert!(summary.clean(), "the CUN flow is what is judged: {summary:?}");
    assert_eq!((summary.negatives_acknowledged, summary.test_certificates), (20, 0), "{summary:?}");
    assert_eq!(summary.certificates_seconds, None, "{summary:?}");
    let why = summary.certificates_refused.as_deref().unwrap_or_default();
    assert!(why.starts_with("503"), "{summary:?}");
    drop(sar);
    eco.shutdown().await;
}
