//! Scenario files are tests too: the shipped suite passes, a broken scenario fails
//! with a clear message, and parse errors point at the line.

use std::path::{Path, PathBuf};

use ecosim_harness::scenario::run::{RunOptions, run_files};
use ecosim_harness::scenario::{discover, load};
use ecosim_reports::Outcome;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_passes_and_the_junit_report_lists_them() {
    let files = discover(&[repo("scenarios")]).expect("discover");
    assert!(files.len() >= 10, "{files:?}");
    let report = run_files(&files, &RunOptions { seed: 42, jobs: 2 }).await.expect("all load");
    for s in &report.scenarios {
        let failure = s.steps.iter().find(|st| st.outcome == Outcome::Failed);
        assert_eq!(s.outcome, Outcome::Passed, "{}: {:?}", s.id, failure.and_then(|f| f.message.clone()));
        assert!(!s.requirements.is_empty(), "{} cites no requirement", s.id);
    }
    assert_eq!(ecosim_reports::unknown_requirements(&report), vec![], "scenarios cite ids the catalogue lacks");
    let xml = ecosim_reports::junit(&report);
    assert_eq!(xml.matches("<testcase ").count(), files.len());
    assert_eq!(xml.matches("<testsuite ").count(), xml.matches("</testsuite>").count());
    for suite in ["flows", "rules", "faults"] {
        assert!(xml.contains(&format!("<testsuite name=\"{suite}\"")), "{xml}");
    }
}

#[tokio::test]
async fn a_failing_scenario_says_what_was_expected_and_what_happened() {
    let report = run_files(&[repo("harness/tests/fixtures/failing.yaml")], &RunOptions { seed: 42, jobs: 1 })
        .await
        .expect("loads");
    let s = &report.scenarios[0];
    assert_eq!(s.outcome, Outcome::Failed);
    let outcomes: Vec<Outcome> = s.steps.iter().map(|st| st.outcome).collect();
    assert_eq!(outcomes, [Outcome::Passed, Outcome::Failed, Outcome::Skipped]);
    let message = s.steps[1].message.clone().unwrap_or_default();
    assert!(message.starts_with("expected status 204, got 401"), "{message}");
    assert!(message.contains("last exchanges:") && message.contains("/his/v1/cun/verify"), "{message}");
}

#[test]
fn a_misspelt_step_is_reported_with_file_line_and_the_closest_name() {
    let err = load(&repo("harness/tests/fixtures/misspelt.yaml")).expect_err("invalid").to_string();
    let first = err.lines().next().unwrap_or("").replace(env!("CARGO_MANIFEST_DIR"), "<harness>");
    insta::assert_snapshot!(first, @"<harness>/../harness/tests/fixtures/misspelt.yaml: error: line 5 column 5: unknown field `sms.expekt`, expected one of lab.report, ts.submit, ts.get, ts.correct, sms.expect, mail.expect, journal.expect, journal.absent, sms.absent, mail.absent, clock.advance, fault, app.new_otp, app.check_otp, app.check_cun, app.upload, callcenter.unlock, asl.unlock, avr.vaccinate, http, app.get_dgc, dgc.verify, expect, verifies, say");
    assert!(err.ends_with("hint: did you mean `sms.expect`?"), "{err}");
}

#[test]
fn ecosim_run_exits_1_when_a_scenario_fails_and_prints_the_plain_summary() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ecosim"))
        .args(["run", "--jobs", "1"])
        .arg(repo("harness/tests/fixtures/failing.yaml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  deliberately-failing"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "0 passed, 1 failed"), "{stdout}");
}

#[test]
fn the_shipped_json_schema_is_the_one_the_types_generate() {
    let shipped = std::fs::read_to_string(repo("scenarios/schema.json")).expect("scenarios/schema.json");
    assert_eq!(
        shipped,
        ecosim_harness::scenario::schema(),
        "regenerate with: cargo run -- schema > scenarios/schema.json"
    );
    let v: serde_json::Value = serde_json::from_str(&shipped).expect("json");
    // A step is one of the actions, each with its own key, `expect` and `verifies`.
    let actions: Vec<&str> = v["$defs"]["Step"]["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .filter_map(|s| s["required"][0].as_str())
        .collect();
    assert_eq!(actions, ecosim_harness::scenario::model::STEP_NAMES, "{v}");
}

/// The JSON report with real-time figures taken out.
fn redacted(report: &ecosim_reports::RunReport) -> serde_json::Value {
    let mut v = serde_json::to_value(report).expect("json");
    for s in v["scenarios"].as_array_mut().expect("scenarios") {
        s["duration_ms"] = serde_json::json!("[ms]");
        for st in s["steps"].as_array_mut().expect("steps") {
            st["duration_ms"] = serde_json::json!("[ms]");
        }
        for e in s["exchanges"].as_array_mut().expect("exchanges") {
            e["wall_ms"] = serde_json::json!("[wall]");
            e["duration_ms"] = serde_json::json!("[ms]");
        }
    }
    v
}

#[tokio::test]
async fn the_same_seed_gives_byte_identical_reports_but_for_real_times() {
    let files = [repo("scenarios/flows/cun-positive-sms.yaml"), repo("scenarios/flows/immuni-call-centre.yaml")];
    let opts = RunOptions { seed: 7, jobs: 1 };
    let a = run_files(&files, &opts).await.expect("loads");
    let b = run_files(&files, &opts).await.expect("loads");
    assert_eq!(redacted(&a), redacted(&b));
    let c = run_files(&files, &RunOptions { seed: 8, jobs: 1 }).await.expect("loads");
    assert_ne!(redacted(&a), redacted(&c), "another seed picks other people and codes");
    // The codes in the messages are the seeded ones.
    let sms = &a.scenarios[0].exchanges.iter().find(|e| e.path == "/sms/v1/messages").expect("an SMS").request_body;
    insta::assert_snapshot!(sms, @r#"{"from":"sistema Ts","text":"Il codice del tuo test Covid-19 del 01/10/21 è CUN-6U2FZU53JA. In caso di esito positivo, se ha installato l'app Immuni può contattare il numero 800912491","to":"+393936553038"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendors_sar_in_place_of_the_reference_one_runs_the_flow_scenarios() {
    use ecosim_core::System;
    use ecosim_core::config::Config;
    // The "vendor's" SAR: a reference SAR in a process-space of its own, with its
    // own clock and database, reached only over HTTP.
    let vendor_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let vendor_url = format!("http://{}", vendor_listener.local_addr().expect("addr"));
    // National simulators first (port 0 here; fixed ports for a real vendor).
    let national = Config { population: 2_000, ..Config::for_tests(42) };
    let files = [repo("scenarios/flows/cun-positive-sms.yaml"), repo("scenarios/flows/cun-negative-minor.yaml")];
    // The national systems come up first; the vendor's SAR is configured with their URLs.
    let probe = ecosim_harness::ecosystem::Ecosystem::start_without(
        Config {
            urls: ecosim_core::config::Urls { sar: Some(vendor_url.clone()), ..Default::default() },
            ..national.clone()
        },
        &[System::Sar],
    )
    .await
    .expect("national systems");
    let mut vendor_config = Config::for_tests(1);
    for system in [System::SistemaTs, System::SmsGateway] {
        vendor_config.set_url(system, probe.url(system));
    }
    vendor_config.urls.smtp = Some(probe.smtp_addr().to_string());
    let vendor_ctx = ecosim_core::Context::new(vendor_config);
    let vendor = ecosim_sar::Sar::new(&vendor_ctx).expect("vendor SAR");
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    ecosim_sar::spawn_workers(&vendor, stop.clone());
    tokio::spawn(ecosim_core::server::serve(vendor_listener, ecosim_sar::router(vendor), async move {
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
    }));
    // Run the scenarios on the national systems already up, SAR = the vendor's.
    let mut taken = std::collections::HashSet::new();
    let mut outcomes = Vec::new();
    for f in &files {
        let scenario = load(f).expect("loads");
        let report = ecosim_harness::scenario::run::run_on_shared(&probe, &scenario, f, 42, &mut taken, None).await;
        outcomes.push((report.id.clone(), report.outcome, report.steps.iter().find_map(|s| s.message.clone())));
    }
    for (id, outcome, message) in &outcomes {
        assert_eq!(*outcome, Outcome::Passed, "{id}: {message:?}");
    }
    // The lab's report went to the vendor's SAR, not to a reference one.
    let journal = probe.context().journal().since(0);
    assert!(
        journal.exchanges.iter().any(|e| e.to == "sistema-ts" && e.from.starts_with("sar-")),
        "the vendor SAR reached Sistema TS"
    );
    assert!(journal.exchanges.iter().all(|e| e.to != "sar"), "no reference SAR in this ecosystem");
    let _ = stop_tx.send(true);
    probe.shutdown().await;
}

#[tokio::test]
async fn the_markdown_report_is_stable_for_a_seed() {
    let files =
        [repo("scenarios/rules/ord-2.6-negative-never-unlocks.yaml"), repo("scenarios/rules/ord-8.6-supervisor.yaml")];
    let report = run_files(&files, &RunOptions { seed: 42, jobs: 1 }).await.expect("loads");
    let md = ecosim_reports::markdown(&report);
    let head: String = md.lines().take(7).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!(head, @r"
    # ecosim run

    2 passed, 0 failed (seed 42).

    | scenario | suite | result | requirements |
    |---|---|---|---|
    | ord-2.6-negative-never-unlocks | rules | passed | ORD-2.6 |
    ");
    assert!(md.contains("| ORD-8.6 | Sistema TS | Call-centre operators act only under a supervising health operator (role check). | ord-8.6-call-centre-needs-a-supervisor | passed |"), "{md}");
    assert!(md.contains("| AVR-5a |") && md.contains("_not covered_"));
}

#[tokio::test]
async fn a_mutant_is_killed_by_the_scenario_that_verifies_its_rule_and_survives_one_that_does_not() {
    use ecosim_harness::mutants::{Options, run};
    let opts = Options {
        files: vec![repo("scenarios/rules/ord-3.2-retention.yaml"), repo("scenarios/rules/ord-3.3a-correction.yaml")],
        only: vec!["ORD-3.2".into(), "ORD-3.3b".into(), "ORD-6.1a".into()],
        jobs: 4,
        seed: 42,
    };
    let reports = run(&opts, |_| {}).await.expect("scenarios load");
    let by_id = |id: &str| reports.iter().find(|r| r.requirement == id).expect("reported").clone();
    // Purged on day 1 instead of 14: the day-13 read fails.
    let purge = by_id("ORD-3.2");
    assert!(purge.killed && purge.killed_by == ["ord-3.2-fourteen-day-retention"], "{purge:?}");
    assert_eq!(purge.switch, "mutant");
    // No scenario here cites ORD-3.3b: it survives, and the report says none ran.
    let isolation = by_id("ORD-3.3b");
    assert!(!isolation.killed && isolation.scenarios.is_empty(), "{isolation:?}");
    // A vendor-side id is broken in the reference SAR (a defect), not nationally.
    let minor = by_id("ORD-6.1a");
    assert!(minor.switch.contains("minor-own-phone"), "{minor:?}");
    assert!(!minor.killed, "neither scenario here texts a minor: {minor:?}");
}
