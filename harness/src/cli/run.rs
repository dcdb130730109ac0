//! `ecosim run`: scenario files or folders, a summary, reports, exit 0 only if all passed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ecosim_reports::Outcome;

use crate::scenario::discover;
use crate::scenario::run::{Progress, RunOptions, run_files_against_sut, run_files_with_progress};

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
    /// Put a vendor's system in place of the reference one: sar=URL. The national
    /// simulators then listen on fixed ports (--base-port) for it, and scenarios run
    /// one at a time on that shared ecosystem, each with citizens of its own.
    #[arg(long, value_parser = parse_sut)]
    sut: Option<String>,
    /// With --sut: the first port of the national simulators (as `ecosim up`).
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// Write a report: junit=FILE, json=FILE, md=FILE or html=FILE (repeatable).
    #[arg(long = "report", value_parser = parse_report)]
    reports: Vec<(String, PathBuf)>,
}

/// A one-line progress bar on stderr, only on a terminal and never under CI.
fn progress_bar() -> Option<Progress> {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return None;
    }
    Some(Box::new(|done, total, report| {
        let width = 30;
        let filled = width * done / total.max(1);
        let mark = if report.outcome == Outcome::Passed { "ok " } else { "FAIL" };
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

fn parse_sut(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some(("sar", url)) if url.starts_with("http://") || url.starts_with("https://") => Ok(url.to_owned()),
        Some(("sar", _)) => Err("the SAR's URL must start with http:// or https://".into()),
        _ => Err("write it as sar=URL (the SAR/AVR is the system vendors replace)".into()),
    }
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
    let report = match &args.sut {
        None => {
            runtime.block_on(run_files_with_progress(&files, &RunOptions { seed: args.seed, jobs }, progress_bar()))?
        }
        Some(url) => {
            let config = ecosim_core::config::Config {
                base_port: args.base_port,
                ..ecosim_core::config::Config::for_tests(args.seed)
            };
            println!("national simulators on base port {}; SAR under test at {url}", args.base_port);
            runtime.block_on(run_files_against_sut(&files, config, url))?
        }
    };
    for s in &report.scenarios {
        let mark = if s.outcome == Outcome::Passed { "PASS" } else { "FAIL" };
        println!("{mark}  {:<44} {:>7.0} ms  {}", s.id, s.duration_ms, s.requirements.join(" "));
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
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    println!("{passed} passed, {failed} failed");
    println!("({} scenarios in {:.2} s, seed {})", report.scenarios.len(), started.elapsed().as_secs_f64(), args.seed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
