//! The command line, run as a user runs it.

use std::process::{Command, Output};

fn ecosim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecosim")).args(args).output().expect("ecosim runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn codes_check_accepts_valid_codes_with_exit_0() {
    for (code, kind) in [
        ("RSSMRA45D25F205N", "codice fiscale"),
        ("RSSMRA45D25F2LRT", "base form RSSMRA45D25F205N"),
        ("CUN-6HQ5EW73HE", "CUN"),
        ("KJ23IWY5UJ", "OTP/CUN"),
        ("WK2DEHZD9PC1", "AUTHCODE"),
        ("HNZHEDP843", "NUCG/CUEV"),
        ("99123456789012345", "NRFE"),
        ("80380001601234567890", "health card"),
        ("+393331234567", "mobile"),
    ] {
        let o = ecosim(&["codes", "check", code]);
        assert_eq!(o.status.code(), Some(0), "{code}: {}", stdout(&o));
        assert!(stdout(&o).contains(kind), "{code}: {}", stdout(&o));
    }
}

#[test]
fn codes_check_rejects_invalid_codes_with_exit_1_and_the_reason() {
    let o = ecosim(&["codes", "check", "RSSMRA45D25F205X"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("check character is 'X', expected 'N'"), "{}", stdout(&o));
    let o = ecosim(&["codes", "check", "KJ23IWY5U0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("position 10"), "{}", stdout(&o));
    // Impossible dates and unknown birthplaces (CODES.md).
    for (code, why) in [
        ("RSSMRA80B30F205A", "day 30 does not exist in month 2"),
        ("RSSMRA80D31F205G", "day 31 does not exist in month 4"),
        ("RSSMRA80A01Z999Y", "Z999 is neither a comune nor a foreign state"),
    ] {
        let o = ecosim(&["codes", "check", code]);
        assert_eq!(o.status.code(), Some(1), "{code}");
        assert!(String::from_utf8_lossy(&o.stdout).contains(why), "{code}: {}", String::from_utf8_lossy(&o.stdout));
    }
    // Two-digit years are read against the virtual clock, not the wall clock.
    let o = ecosim(&["codes", "check", "RSSMRA22A01F205L"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("born 1922-01-01 in Milano"), "{o:?}");
    let o = ecosim(&["codes", "check", "RSSMRA22A01F205L", "--today", "2030-01-01"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("born 2022-01-01"), "{o:?}");
    let o = ecosim(&["codes", "check", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not a code ecosim knows"));
}

#[test]
fn codes_gen_makes_valid_codes_deterministically() {
    for kind in ["cf", "otp", "cun", "authcode", "nucg", "cuev", "nrfe", "card"] {
        let a = ecosim(&["codes", "gen", kind, "--count", "5", "--seed", "9"]);
        assert!(a.status.success(), "{kind}");
        let b = ecosim(&["codes", "gen", kind, "--count", "5", "--seed", "9"]);
        assert_eq!(stdout(&a), stdout(&b), "{kind} is not deterministic");
        let lines: Vec<String> = stdout(&a).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 5);
        for line in lines {
            let check = ecosim(&["codes", "check", &line]);
            assert_eq!(check.status.code(), Some(0), "{kind} generated {line}, which does not check");
        }
    }
    let other = ecosim(&["codes", "gen", "cun", "--count", "5", "--seed", "10"]);
    assert_ne!(stdout(&other), stdout(&ecosim(&["codes", "gen", "cun", "--count", "5", "--seed", "9"])));
}

#[test]
fn population_prints_json_lines_with_the_documented_fields() {
    let o = ecosim(&["population", "--seed", "1", "--size", "50"]);
    assert!(o.status.success());
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 50);
    for field in [
        "codice_fiscale",
        "cognome",
        "nome",
        "sesso",
        "data_nascita",
        "comune_nascita",
        "regione",
        "asl",
        "tessera_sanitaria",
        "scadenza_ts",
        "cellulare",
        "email",
        "cellulare_genitore",
    ] {
        assert!(lines[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(stdout(&o), stdout(&ecosim(&["population", "--seed", "1", "--size", "50"])));
}

#[test]
fn population_prints_csv_with_a_header_and_one_row_a_citizen() {
    let o = ecosim(&["population", "--seed", "1", "--size", "20", "--format", "csv"]);
    assert!(o.status.success());
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "codice_fiscale,cognome,nome,sesso,data_nascita,comune_nascita,regione,asl,tessera_sanitaria,scadenza_ts,cellulare,email,cellulare_genitore"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 20);
    // The same people as the JSON output, in the same order.
    let json = stdout(&ecosim(&["population", "--seed", "1", "--size", "20"]));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().expect("line")).expect("json");
    assert!(rows[0].starts_with(first["codice_fiscale"].as_str().expect("cf")));
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    let o = ecosim(&["codes", "gen", "passport"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("possible values"));
    let o = ecosim(&["up", "--config", "/nonexistent/ecosim.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/ecosim.toml"));
}

#[test]
fn help_is_there_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["up", "--help"],
        vec!["codes", "--help"],
        vec!["population", "--help"],
        vec!["bench", "--help"],
    ] {
        let o = ecosim(&args);
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage"), "{args:?}");
    }
}

/// `ecosim up` with `args`, once its banner is out: the process, the banner and the
/// control plane's URL.
fn up(args: &[&std::ffi::OsStr]) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecosim"))
        .arg("up")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut url = None;
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.trim_start().starts_with("control-plane") {
            url = line.split_whitespace().nth(1).map(str::to_owned);
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no control-plane line in:\n{banner}"));
    (child, banner, url)
}

#[test]
fn up_prints_its_endpoints_serves_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--base-port", "0", "--population", "200", "--seed", "5", "--data-dir"];
    let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    args.push(dir.path().as_os_str());
    let (mut child, banner, url) = up(&args);
    assert!(banner.contains("sar-R, avr-R, lab-R, vaccinatore-R, asl-R"), "{banner}");
    assert!(banner.contains("seed 5, 200 citizens"), "{banner}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let health: serde_json::Value = rt
        .block_on(async { reqwest::get(format!("{url}/_admin/health")).await?.json().await })
        .expect("health answers");
    assert_eq!(health["status"], "ok");
    assert!(banner.contains(&format!("dashboard (open in a browser): {url}/")), "{banner}");
    let page = rt
        .block_on(async { reqwest::Client::new().get(&url).header("accept", "text/html").send().await?.text().await })
        .expect("the dashboard");
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "ecosim up exited with {status}");
}

#[test]
fn up_leaves_a_system_the_configuration_places_elsewhere_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("ecosim.toml");
    // A vendor's SAR in place of the reference one (nothing needs to listen there).
    std::fs::write(&config, "[urls]\nsar = \"http://127.0.0.1:9/\"\n").expect("config");
    let args: Vec<&std::ffi::OsStr> =
        ["--base-port", "0", "--population", "200", "--config"].iter().map(std::ffi::OsStr::new).collect();
    let (mut child, banner, url) = up(&[args.as_slice(), &[config.as_os_str()]].concat());
    let sar_lines: Vec<&str> = banner.lines().filter(|l| l.trim_start().starts_with("sar ")).collect();
    assert_eq!(sar_lines.len(), 1, "{banner}");
    assert!(sar_lines[0].contains("http://127.0.0.1:9 ") && sar_lines[0].contains("not started here"), "{banner}");
    assert!(banner.lines().any(|l| l.trim_start().starts_with("sistema-ts")), "{banner}");
    // The systems `up` runs, and the dashboard's consoles, reach the SAR there.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let summary: serde_json::Value =
        rt.block_on(async { reqwest::get(&url).await?.json().await }).expect("the control plane's summary");
    let sar = summary["systems"].as_array().and_then(|s| s.iter().find(|s| s["system"] == "sar")).cloned();
    assert_eq!(sar.map(|s| s["url"].clone()), Some(serde_json::json!("http://127.0.0.1:9")), "{summary}");
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    assert!(child.wait().expect("exits").success());
}

#[test]
fn up_refuses_urls_it_cannot_honour_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (toml, wanted) in [
        ("[urls]\ncontrol_plane = \"http://127.0.0.1:9\"\n", "[urls] control_plane"),
        ("[urls]\nsar = \"10.0.0.5:9000\"\n", "[urls] sar = \"10.0.0.5:9000\""),
        ("[urls]\nsmtp = \"127.0.0.1:25\"\n", "[urls] smtp"),
    ] {
        let config = dir.path().join("ecosim.toml");
        std::fs::write(&config, toml).expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecosim"))
            .args(["up", "--base-port", "0", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // An `up` that accepted the file would run until stopped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let o = child.wait_with_output().expect("exits");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{toml}: {stderr}");
        assert!(stderr.contains(wanted), "{toml}: {stderr}");
    }
}

#[test]
fn run_writes_reports_into_folders_it_creates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("a/b/junit.xml");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/rules/ord-3.3b-region-isolation.yaml");
    let o = ecosim(&["run", scenario, "--report", &format!("junit={}", junit.display())]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    let xml = std::fs::read_to_string(&junit).expect("report written");
    assert!(xml.contains("<testcase "), "{xml}");
}

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn run_with_a_system_under_test_skips_a_scenario_that_moves_the_clock_and_says_why() {
    // Nothing listens on port 9: the scenario is refused before anything calls it.
    let o = ecosim(&[
        "run",
        "--sut",
        "sar=http://127.0.0.1:9",
        "--base-port",
        "0",
        &repo("scenarios/rules/ord-3.2-retention.yaml"),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("SKIP  ord-3.2"), "{out}");
    assert!(out.contains("moves the virtual clock; a system under test keeps real time"), "{out}");
    assert!(out.lines().any(|l| l == "0 passed, 0 failed, 1 skipped"), "{out}");
}

#[test]
fn certify_refuses_unclear_arguments_with_exit_2() {
    let o = ecosim(&["certify", "--sut", "sar=ftp://x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must start with http:// or https://"));
    let o = ecosim(&["certify", "--sut", "sar=http://127.0.0.1:9", "--profile", "avr+dgc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown profile"));
    let o = ecosim(&["certify", "--sut", "sar=http://127.0.0.1:9", "--region", "999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown region \"999\""));
}

#[test]
fn verify_exits_1_on_a_folder_that_is_not_a_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = ecosim(&["verify", &dir.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("does not verify: manifest.json"), "{}", stdout(&o));
}

#[test]
fn load_drives_the_reference_sar_and_writes_a_clean_json_summary() {
    let dir = tempfile::tempdir().expect("a folder");
    let file = dir.path().join("load.json");
    let o = ecosim(&[
        "load",
        "--rate",
        "200/s",
        "--duration",
        "2s",
        "--negatives",
        "50%",
        "--minors",
        "20%",
        "--quiet",
        "--json",
        file.to_str().expect("a path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("lost 0, duplicated 0, misdirected 0"), "{}", stdout(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("the summary")).expect("JSON");
    assert_eq!(summary["due"], 400);
    assert_eq!(summary["acknowledged"], 400);
    assert_eq!(summary["cun_sms"], 400);
    assert_eq!((&summary["lost"], &summary["duplicated"], &summary["misdirected"]), (&0.into(), &0.into(), &0.into()));
    assert_eq!(summary["sar_in_process"], true);
    assert!(summary["at_last_answer"]["cun_sms"].as_u64().is_some_and(|n| n <= 400), "{summary}");
    // Linux, where this runs: the process's and the machine's CPU from /proc.
    assert!(summary["cpu"]["ecosim_cores"].as_f64().is_some_and(|c| c > 0.0), "{summary}");
    assert!(summary["cpu"]["machine_busy_percent"].as_f64().is_some_and(|p| p > 0.0 && p <= 100.0), "{summary}");
    assert!(summary["latency_ms"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{summary}");
    // Half of them negative: each a test certificate at PN-DGC (not judged, waited for).
    assert_eq!((&summary["negatives_acknowledged"], &summary["test_certificates"]), (&200.into(), &200.into()));
    assert!(summary["certificates_seconds"].as_f64().is_some_and(|s| s > 0.0), "{summary}");
    assert!(stdout(&o).contains("200 test certificates for 200 negative results"), "{}", stdout(&o));
}

#[test]
fn load_refuses_a_bad_rate_or_share_naming_it() {
    for (args, says) in [
        (["load", "--rate", "fast"], "--rate"),
        (["load", "--negatives", "120%"], "--negatives"),
        (["load", "--duration", "0s"], "--duration"),
        (["load", "--sut", "avr=http://127.0.0.1:9"], "only a SAR"),
    ] {
        let o = ecosim(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn bench_http_reports_a_ratio_against_bare_axum() {
    let o = ecosim(&["bench", "http", "--seconds", "1", "--rounds", "1", "--only", "health", "--connections", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let row = out.lines().find(|l| l.contains("GET /_admin/health")).expect("a row for health");
    let ratio: f64 = row.split_whitespace().nth(5).and_then(|r| r.parse().ok()).expect("a ratio column");
    assert!(ratio > 0.0, "{out}");
}

#[test]
fn bench_cun_counts_the_cun_sms_and_waits_for_the_negatives_certificates() {
    let o = ecosim(&["bench", "cun", "--journeys", "200", "--negatives", "50"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("200 journeys in"), "{out}");
    assert!(out.contains("50% negative results"), "{out}");
    assert!(out.contains("and the negatives' 100 test certificates issued by"), "{out}");
}
