//! `ecosim load`: drive lab results at a constant rate through a SAR and check the
//! flow lost and duplicated nothing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;

use crate::load::LoadOptions;

/// Presets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Profile {
    /// The Italian record day (1.2 million results) in two minutes: 10,000/s for 120 s,
    /// 85% negative, 10% minors (any option given overrides its part).
    PeakDay,
}

/// `ecosim load` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Results per second, e.g. `500` or `500/s` (default 500, or the profile's).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// How long to send, e.g. `5m` (default 1m, or the profile's).
    #[arg(long, value_parser = parse_span)]
    duration: Option<Duration>,
    /// Share of negative results, e.g. `70%` (default 70%).
    #[arg(long, value_parser = parse_percent)]
    negatives: Option<u8>,
    /// Share of results for minors (their CUN goes to a parent), e.g. `10%` (default 10%).
    #[arg(long, value_parser = parse_percent)]
    minors: Option<u8>,
    /// A preset.
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// A vendor's SAR in place of the reference one: `sar=URL`. The national
    /// simulators then listen from --base-port (as `ecosim up`), for it to call.
    #[arg(long, value_parser = parse_sar)]
    sut: Option<String>,
    /// With --sut: the first port of the national simulators.
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// Seed of the ecosystem.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// After the last answer, how long the flow may stand still (no new record or
    /// SMS) before the run stops waiting for every SMS; a slow flow is waited for.
    #[arg(long, value_parser = parse_span, default_value = "1m")]
    drain: Duration,
    /// Results waiting for an answer at most; beyond, a due result is not sent (and counted).
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
    /// Connections to the SAR at most; results beyond wait for one (their wait counts).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Write the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

/// `sar=URL` only: the load is lab results, which only a SAR takes.
fn parse_sar(s: &str) -> Result<String, String> {
    match super::run::parse_sut(s)? {
        (kind, url) if kind == "sar" => Ok(url),
        _ => Err("only a SAR takes lab results: write sar=URL".into()),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s").trim();
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s:?} is not a rate: write results per second, e.g. 500 or 500/s")),
    }
}

fn parse_span(s: &str) -> Result<Duration, String> {
    let d = ecosim_core::duration::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_positive() { Ok(d.unsigned_abs()) } else { Err(format!("{s:?}: the duration must be above zero")) }
}

fn parse_percent(s: &str) -> Result<u8, String> {
    match s.trim().trim_end_matches('%').trim().parse::<u8>() {
        Ok(p) if p <= 100 => Ok(p),
        _ => Err(format!("{s:?} is not a share: write 0% to 100%")),
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let base = match args.profile {
        Some(Profile::PeakDay) => LoadOptions::peak_day(),
        None => LoadOptions::default(),
    };
    let options = LoadOptions {
        rate: args.rate.unwrap_or(base.rate),
        duration: args.duration.unwrap_or(base.duration),
        negatives: args.negatives.unwrap_or(base.negatives),
        minors: args.minors.unwrap_or(base.minors),
        sut: args.sut,
        base_port: args.base_port,
        seed: args.seed,
        drain: args.drain,
        max_in_flight: args.max_in_flight,
        connections: args.connections,
        progress: !args.quiet,
        ..base
    };
    if let Some(url) = &options.sut {
        eprintln!("ecosim load: national simulators from port {} for the SAR under test at {url}", options.base_port);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let summary = runtime.block_on(crate::load::run(&options))?;
    summary.print();
    if let Some(file) = &args.json {
        super::run::write_file(file, &serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(if summary.clean() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
