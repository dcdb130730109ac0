//! `ecosim mutants`: every requirement broken in turn; which scenario catches it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::mutants::{MutantReport, Options};
use crate::scenario::discover;

/// `ecosim mutants` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Scenario files or folders (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Only these requirement ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Scenario runs at once (default: 8; they mostly wait).
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Seed of every ecosystem.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the reports as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("scenarios")] } else { args.paths };
    let files = discover(&paths)?;
    for id in &args.only {
        if ecosim_reports::requirement(id).is_none() {
            anyhow::bail!("--only {id}: no such requirement in REQUIREMENTS.md");
        }
    }
    let opts = Options { files, only: args.only, jobs: args.jobs, seed: args.seed };
    let started = Instant::now();
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let reports = runtime.block_on(crate::mutants::run(&opts, |r| {
        if !json {
            line(r);
        }
    }))?;
    let killed = reports.iter().filter(|r| r.killed).count();
    let secs = started.elapsed().as_secs_f64();
    if json {
        let out = serde_json::json!({
            "killed": killed, "total": reports.len(), "seconds": (secs * 10.0).round() / 10.0, "mutants": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{killed} of {} requirements killed by their scenarios ({secs:.1} s)", reports.len());
        let survivors: Vec<&str> = reports.iter().filter(|r| !r.killed).map(|r| r.requirement.as_str()).collect();
        if !survivors.is_empty() {
            println!("survived (no scenario notices the rule broken): {}", survivors.join(", "));
        }
    }
    Ok(if killed == reports.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn line(r: &MutantReport) {
    let verdict = if r.killed { "KILLED  " } else { "SURVIVED" };
    let by = if r.killed {
        format!("by {}", r.killed_by.join(", "))
    } else if r.scenarios.is_empty() {
        "no scenario cites it".to_owned()
    } else {
        format!("{} scenario(s) ran: {}", r.scenarios.len(), r.scenarios.join(", "))
    };
    println!("{verdict} {:<13} {by}", r.requirement);
}
