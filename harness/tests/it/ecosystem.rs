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
