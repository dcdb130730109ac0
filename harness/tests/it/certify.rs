//! `ecosim certify` against systems outside the national ecosystem: the reference SAR
//! started on its own (as a vendor's would be), clean and broken one defect at a
//! time; the bundle's signature and hashes.

use ecosim_core::System;
use ecosim_core::config::{Config, SarDefect};
use ecosim_harness::certify::{self, Certified, Subject};
use ecosim_harness::ecosystem::Ecosystem;
use ecosim_harness::scenario::run::Suts;
use ecosim_reports::{Profile, Verdict};

/// National simulators on port 0 with the clock at the wall-clock now (the clock
/// contract), as `ecosim certify` starts them.
pub(crate) async fn national() -> Ecosystem {
    ecosim_core::telemetry::init_for_tests();
    let mut config = Config::for_tests(42);
    config.clock.start = jiff::Timestamp::now();
    config.timing.avn_forwarding = ecosim_core::config::Forwarding::Immediate;
    Ecosystem::start_without(config, &[System::Sar]).await.expect("national systems start")
}

/// The reference SAR on its own, reaching `eco`'s systems, with `defects`.
async fn reference_sar(eco: &Ecosystem, defects: &[SarDefect]) -> Ecosystem {
    let mut config = eco.config_for_neighbours();
    config.sar.defects = defects.to_vec();
    Ecosystem::start_sar_only(config).await.expect("the SAR starts")
}

/// Certifies the reference SAR with `defects`; `send_bound`: ORD-3.1t's bound in
/// seconds (a short one keeps a failing run short).
async fn certify_sar(defects: &[SarDefect], send_bound: Option<u64>) -> (Certified, Ecosystem) {
    certify_reference(Profile::Sar, defects, send_bound).await
}

/// Certifies the reference SAR/AVR for `profile`, with `defects`.
async fn certify_reference(profile: Profile, defects: &[SarDefect], send_bound: Option<u64>) -> (Certified, Ecosystem) {
    let eco = national().await;
    let sar = reference_sar(&eco, defects).await;
    let url = Some(sar.url(System::Sar));
    let (sar_url, avr_url) = match profile {
        Profile::Sar => (url, None),
        Profile::Avr => (None, url),
        Profile::SarAvr => (url.clone(), url),
    };
    let subject = Subject {
        suts: Suts { sar: sar_url, avr: avr_url, send_bound, region: None },
        profile,
        vendor: Some("ecosim".into()),
        product: Some("reference SAR".into()),
        version: Some(format!("{defects:?}")),
    };
    let files = certify::suite(profile, None).expect("the built-in suite");
    let done = certify::run(&eco, &subject, files, None).await.expect("runs");
    sar.shutdown().await;
    (done, eco)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_sar_passes_every_sar_requirement_and_nothing_else_is_judged() {
    let (done, eco) = certify_sar(&[], None).await;
    let verdicts = certify::verdicts(&done.report);
    let failed: Vec<_> = verdicts.iter().filter(|(_, v)| **v != Verdict::Passed).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", ecosim_reports::markdown(&done.report));
    assert!(done.passed());
    // Every SAR id and the interface-conduct ids, and nothing national.
    for id in [
        "ORD-3.1a",
        "ORD-3.1b",
        "ORD-3.1c",
        "ORD-3.1a5",
        "ORD-3.1t",
        "ORD-6.1a",
        "ORD-6.1b",
        "IFC-RETRY",
        "IFC-IDEMP",
        "IFC-4XX",
        "IFC-MINIMISE",
    ] {
        assert_eq!(verdicts.get(id), Some(&Verdict::Passed), "{id}");
    }
    assert_eq!(verdicts.len(), 11, "{verdicts:?}");

    // The bundle verifies; one changed byte in any file does not.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = certify::generate_key().expect("key");
    let manifest = certify::write_bundle(&eco, &done, dir.path(), &key).expect("bundle");
    assert_eq!(manifest.result, "passed");
    assert!(manifest.requirements.iter().any(|r| r.id == "ORD-4" && r.verdict == Verdict::NotApplicable));
    assert_eq!(manifest.scenarios.len(), done.files.len());
    certify::verify(dir.path(), None).expect("an untouched bundle verifies");
    certify::verify(dir.path(), Some(&manifest.public_key)).expect("pinned to its key");
    let other = hex_of(&certify::generate_key().expect("key"));
    assert!(certify::verify(dir.path(), Some(&other)).is_err(), "another key is refused");
    for name in
        ["report.html", "report.json", "report.md", "junit.xml", "journal.jsonl", "manifest.json", "manifest.sig"]
    {
        let path = dir.path().join(name);
        let original = std::fs::read(&path).expect("file");
        let mut changed = original.clone();
        let at = changed.len() / 2;
        changed[at] ^= 0x01;
        std::fs::write(&path, &changed).expect("write");
        assert!(certify::verify(dir.path(), None).is_err(), "{name} changed, yet the bundle verifies");
        std::fs::write(&path, &original).expect("restore");
    }
    certify::verify(dir.path(), None).expect("restored");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("html");
    assert!(html.contains("Profile <b>sar</b>") && html.contains("ecosim reference SAR"), "the SUT identity");
    eco.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_avr_passes_every_avr_requirement_and_nothing_else_is_judged() {
    let (done, eco) = certify_reference(Profile::Avr, &[], None).await;
    eco.shutdown().await;
    let verdicts = certify::verdicts(&done.report);
    let failed: Vec<_> = verdicts.iter().filter(|(_, v)| **v != Verdict::Passed).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", ecosim_reports::markdown(&done.report));
    // 16 AVR ids and the 4 interface-conduct ids; nothing of the SAR or the nation.
    assert_eq!(verdicts.len(), 20, "{verdicts:?}");
    assert!(!verdicts.contains_key("ORD-3.1a") && !verdicts.contains_key("AVR-1.3b"));
    assert!(done.passed());
}

fn hex_of(key: &ed25519_dalek::SigningKey) -> String {
    key.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every defect of the reference SAR fails the requirement it breaks. The defects
/// run at once, each against national systems of its own (the suite mostly waits).
#[tokio::test(flavor = "multi_thread")]
async fn each_defect_of_the_reference_sar_fails_the_requirement_it_breaks() {
    let mut runs = tokio::task::JoinSet::new();
    let ifc = [SarDefect::NoRetry, SarDefect::IgnoreRetryAfter, SarDefect::Retry4xx];
    let sar = SarDefect::ALL.into_iter().filter(|d| !d.is_avr()).map(|d| (Profile::Sar, d));
    let avr = SarDefect::ALL.into_iter().filter(|d| d.is_avr()).chain(ifc).map(|d| (Profile::Avr, d));
    for (profile, defect) in sar.chain(avr) {
        runs.spawn(async move {
            let (done, eco) = certify_reference(profile, &[defect], Some(5)).await;
            eco.shutdown().await;
            (defect, done)
        });
    }
    let mut wrong = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (defect, done) = joined.expect("a run");
        eprintln!("{defect:?}: {:.1} s", done.finished.duration_since(done.started).as_secs_f64());
        let verdicts = certify::verdicts(&done.report);
        if verdicts.get(defect.breaks()) != Some(&Verdict::Failed) || done.passed() {
            wrong.push(format!("{defect:?} should fail {}, verdicts: {verdicts:?}", defect.breaks()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A SAR written outside this repository's code, in Python from the vendor guide
/// (`harness/tests/vendor-sar/sar.py`), started as its own process.
pub(crate) struct PythonSar {
    child: std::process::Child,
    pub(crate) url: String,
}

impl PythonSar {
    pub(crate) fn start(eco: &Ecosystem, defects: &[&str]) -> Self {
        use std::io::BufRead as _;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vendor-sar/sar.py");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(script)
            .args(["--sistema-ts", &eco.url(System::SistemaTs)])
            .args(["--sms-gateway", &eco.url(System::SmsGateway)])
            .args(["--smtp", &eco.smtp_addr().to_string()])
            .stdout(std::process::Stdio::piped());
        for d in defects {
            cmd.args(["--defect", d]);
        }
        let mut child = cmd.spawn().expect("python3 runs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("the SAR says where it listens");
        let url = line.trim().strip_prefix("listening on ").expect("listening on URL").to_owned();
        Self { child, url }
    }
}

impl Drop for PythonSar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn certify_python(defects: &[&str], send_bound: Option<u64>) -> Certified {
    let eco = national().await;
    let sar = PythonSar::start(&eco, defects);
    let subject = Subject {
        suts: Suts { sar: Some(sar.url.clone()), avr: None, send_bound, region: None },
        profile: Profile::Sar,
        vendor: Some("a vendor".into()),
        product: Some("python SAR".into()),
        version: Some(format!("{defects:?}")),
    };
    let done =
        certify::run(&eco, &subject, certify::suite(Profile::Sar, None).expect("suite"), None).await.expect("runs");
    drop(sar);
    eco.shutdown().await;
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sar_written_in_python_from_the_guide_is_certified_and_its_broken_variants_are_not() {
    let mut runs = tokio::task::JoinSet::new();
    for (defect, breaks) in [
        (None, None),
        (Some("no-retry"), Some("IFC-RETRY")),
        (Some("new-key"), Some("IFC-IDEMP")),
        (Some("cf-in-sms"), Some("IFC-MINIMISE")),
        (Some("contacts-to-ts"), Some("ORD-3.1a5")),
        (Some("crossed-sms"), Some("ORD-6.1a")),
    ] {
        runs.spawn(async move {
            let defects: Vec<&str> = defect.into_iter().collect();
            (defect, breaks, certify_python(&defects, Some(5)).await)
        });
    }
    let mut wrong = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (defect, breaks, done) = joined.expect("a run");
        let verdicts = certify::verdicts(&done.report);
        match breaks {
            None if !done.passed() => wrong
                .push(format!("the clean Python SAR failed: {verdicts:?}\n{}", ecosim_reports::markdown(&done.report))),
            Some(id) if verdicts.get(id) != Some(&Verdict::Failed) => {
                wrong.push(format!("{defect:?} should fail {id}: {verdicts:?}"))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A SAR and an AVR at different URLs: each call goes to its own system (the AVR
/// here is broken on AVR-7, the SAR is not).
#[tokio::test(flavor = "multi_thread")]
async fn a_sar_and_an_avr_at_different_urls_are_certified_together() {
    let eco = national().await;
    let sar = reference_sar(&eco, &[]).await;
    let avr = reference_sar(&eco, &[SarDefect::Avr7]).await;
    let subject = Subject {
        suts: Suts {
            sar: Some(sar.url(System::Sar)),
            avr: Some(avr.url(System::Sar)),
            send_bound: Some(5),
            region: None,
        },
        profile: Profile::SarAvr,
        vendor: None,
        product: None,
        version: None,
    };
    let files = certify::suite(Profile::SarAvr, None).expect("suite");
    let done = certify::run(&eco, &subject, files, None).await.expect("runs");
    let verdicts = certify::verdicts(&done.report);
    assert_eq!(verdicts.get("AVR-7"), Some(&Verdict::Failed), "{verdicts:?}");
    assert_eq!(verdicts.get("ORD-6.1a"), Some(&Verdict::Passed), "{verdicts:?}");
    assert_eq!(verdicts.get("AVR-5a"), Some(&Verdict::Passed), "{verdicts:?}");
    assert_eq!(verdicts.len(), 27, "every SAR and AVR id, nothing national: {verdicts:?}");
    let journal = eco.context().journal().since(0).exchanges;
    assert!(journal.iter().any(|e| e.to == "sar" && e.path.starts_with("/avr/")));
    sar.shutdown().await;
    avr.shutdown().await;
    eco.shutdown().await;
}
