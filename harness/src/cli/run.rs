//! `ecosim run`: scenario files or folders, a summary, reports, exit 0 only if all passed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ecosim_reports::Outcome;

use crate::scenario::discover;
use crate::scenario::run::{Progress, RunOptions, Suts, run_files_against_sut, run_files_with_progress};

/// `ecosim run` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Scenarios run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seed of every ecosystem.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Put a vendor's system in place of the reference one: sar=URL and/or avr=URL
    /// (repeatable). The national simulators then listen on fixed ports (--base-port)
    /// for it, the clock starts at the wall-clock now, and scenarios run one at a
    /// time on that shared ecosystem, each with citizens of its own; a scenario that
    /// moves the clock is skipped (the clock contract).
    #[arg(long, value_parser = parse_sut)]
    sut: Vec<(String, String)>,
    /// With --sut: the first port of the national simulators (as `ecosim up`).
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// Write a report: junit=FILE, json=FILE, md=FILE or html=FILE (repeatable).
    #[arg(long = "report", value_parser = parse_report)]
    reports: Vec<(String, PathBuf)>,
}

/// A one-line progress bar on stderr, only on a terminal and never under CI.
pub(crate) fn progress_bar() -> Option<Progress> {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    Some(Box::new(|done, total, report| {
        let width = 30;
        let filled = width * done / total.max(1);
        let mark = match report.outcome {
            Outcome::Passed => "ok  ",
            Outcome::Failed => "FAIL",
            Outcome::Skipped => "skip",
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {done}/{total} {mark} {:<40}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            report.id
        );
        if done == total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }))
}

/// `sar=URL` or `avr=URL`.
pub(crate) fn parse_sut(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((kind @ ("sar" | "avr"), url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok((kind.to_owned(), url.trim_end_matches('/').to_owned()))
        }
        Some((kind @ ("sar" | "avr"), _)) => {
            Err(format!("the {}'s URL must start with http:// or https://", kind.to_uppercase()))
        }
        _ => Err("write it as sar=URL or avr=URL (the SAR and the AVR are the systems vendors replace)".into()),
    }
}

/// The systems under test from `--sut` pairs; a kind given twice is refused.
pub(crate) fn suts_of(pairs: &[(String, String)]) -> anyhow::Result<Suts> {
    let mut suts = Suts::default();
    for (kind, url) in pairs {
        let slot = if kind == "sar" { &mut suts.sar } else { &mut suts.avr };
        anyhow::ensure!(slot.is_none(), "--sut {kind}= given twice");
        *slot = Some(url.clone());
    }
    Ok(suts)
}

/// The configuration for national simulators serving systems under test: fixed ports
/// from `base_port`, and the clock at the wall-clock now (the clock contract).
pub(crate) fn sut_config(seed: u64, base_port: u16) -> ecosim_core::config::Config {
    // A registry large enough that every region has the people a suite asks for.
    let mut config =
        ecosim_core::config::Config { base_port, population: 10_000, ..ecosim_core::config::Config::for_tests(seed) };
    let now = jiff::Timestamp::now();
    config.clock.start = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    // The clock never reaches midnight: AVN forwards doses to Sistema TS at once.
    config.timing.avn_forwarding = ecosim_core::config::Forwarding::Immediate;
    config
}

/// Writes `text` to `file`, creating its folder.
pub(crate) fn write_file(file: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))
}

fn parse_report(s: &str) -> Result<(String, PathBuf), String> {
    let (kind, file) = s.split_once('=').ok_or("write it as junit=FILE, json=FILE, md=FILE or html=FILE")?;
    match kind {
        "junit" | "json" | "md" | "html" => Ok((kind.to_owned(), PathBuf::from(file))),
        other => Err(format!("unknown report {other:?}: junit, json, md and html are available")),
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { args.paths };
    let files = discover(&paths)?;
    anyhow::ensure!(!files.is_empty(), "no scenario files (.yaml) under {paths:?}");
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let started = std::time::Instant::now();
    let suts = suts_of(&args.sut)?;
    let report = if suts.any() {
        let config = sut_config(args.seed, args.base_port);
        println!("national simulators on base port {}; under test: {}", args.base_port, {
            let m = suts.map();
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        });
        runtime.block_on(run_files_against_sut(&files, config, &suts, progress_bar()))?
    } else {
        runtime.block_on(run_files_with_progress(&files, &RunOptions { seed: args.seed, jobs }, progress_bar()))?
    };
    for s in &report.scenarios {
        let mark = match s.outcome {
            Outcome::Passed => "PASS",
            Outcome::Failed => "FAIL",
            Outcome::Skipped => "SKIP",
        };
        println!("{mark}  {:<44} {:>7.0} ms  {}", s.id, s.duration_ms, s.requirements.join(" "));
        if s.outcome == Outcome::Skipped
            && let Some(why) = s.steps.iter().find_map(|st| st.message.as_deref())
        {
            println!("      {why}");
        }
        for step in s.steps.iter().filter(|st| st.outcome == Outcome::Failed) {
            println!(
                "      step {} failed: {}",
                step.name,
                step.message.as_deref().unwrap_or("").replace('\n', "\n      ")
            );
        }
    }
    let (passed, failed) = report.counts();
    for (kind, file) in &args.reports {
        let text = match kind.as_str() {
            "junit" => ecosim_reports::junit(&report),
            "md" => ecosim_reports::markdown(&report),
            "html" => ecosim_reports::html(&report),
            _ => ecosim_reports::json(&report),
        };
        write_file(file, &text)?;
    }
    let skipped = report.scenarios.len() - passed - failed;
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    println!("({} scenarios in {:.2} s, seed {})", report.scenarios.len(), started.elapsed().as_secs_f64(), args.seed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
