//! Booting an ecosystem in process, as users' own `cargo test` does.

use ecosim_core::System;
use ecosim_harness::ecosystem::Ecosystem;

#[tokio::test]
async fn an_ecosystem_starts_on_port_0_and_answers_health() {
    let eco = Ecosystem::builder().seed(7).population(100).start().await.expect("starts");
    let url = eco.url(System::ControlPlane);
    assert!(!url.ends_with(":0"), "{url}");
    let health: serde_json::Value =
        reqwest::get(format!("{url}/_admin/health")).await.expect("reachable").json().await.expect("json");
    assert_eq!(health["system"], "control-plane");
    let summary: serde_json::Value =
        reqwest::get(format!("{url}/")).await.expect("reachable").json().await.expect("json");
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["population"], 100);
    assert_eq!(eco.context().population().len(), 100);
    eco.shutdown().await;
    assert!(reqwest::get(format!("{url}/_admin/health")).await.is_err(), "still answering after shutdown");
}

#[tokio::test]
async fn two_ecosystems_run_side_by_side_without_sharing_state() {
    let a = Ecosystem::builder().seed(1).population(50).start().await.expect("a");
    let b = Ecosystem::builder().seed(1).population(50).start().await.expect("b");
    assert_ne!(a.url(System::ControlPlane), b.url(System::ControlPlane));
    a.context().clock().advance(jiff::SignedDuration::from_hours(24)).expect("forward");
    assert_ne!(a.context().clock().now(), b.context().clock().now());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_handles_reach_the_systems_as_their_accounts() {
    let eco = Ecosystem::builder().seed(3).population(200).start().await.expect("starts");
    let citizen = eco.context().population().iter().find(|c| c.region().code == "160").cloned().expect("one");
    let body = serde_json::json!({
        "codice_fiscale": citizen.codice_fiscale().as_str(), "esito": "POSITIVO", "tipo_test": "MOLECOLARE",
        "data_esecuzione": eco.context().clock().today().to_string(), "struttura": "LAB-1",
    });
    let res = eco
        .client(System::SistemaTs, "sar-160")
        .request(reqwest::Method::POST, "/ts/v1/test-results")
        .json(&body)
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.expect("json");
    let cun = ecosim_domain::codes::Cun::parse(v["cun"].as_str().expect("cun")).expect("valid");
    let mut app = eco.app(1);
    assert_eq!(app.check_cun(&cun, &citizen.card().last8(), None, false).await.status, 204);
    eco.shutdown().await;
}
