//! Running scenarios: each in its own fresh in-process ecosystem on port 0, so
//! scenarios run in parallel without touching each other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_reports::{Outcome, RunReport, ScenarioReport, StepReport};

use super::actions;
use super::model::Scenario;
use super::runner::Runner;
use super::{LoadError, load};
use crate::ecosystem::Ecosystem;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Seed of every ecosystem.
    pub seed: u64,
    /// Scenarios at once.
    pub jobs: usize,
}

/// Told of each scenario as it finishes (for a progress display): done, total, the report.
pub type Progress = Box<dyn FnMut(usize, usize, &ScenarioReport) + Send>;

/// The vendor systems under test, by base URL, in place of the reference SAR/AVR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suts {
    /// The SAR (`/sar/v1/...`).
    pub sar: Option<String>,
    /// The AVR (`/avr/v1/...`); the SAR's URL when not given.
    pub avr: Option<String>,
    /// How long (real time, seconds) a result may take to reach Sistema TS (ORD-3.1t);
    /// `None`: [`DEFAULT_SEND_BOUND_SECS`]. Scenarios read it as `{{send_bound}}`, and
    /// `{{delivery_bound}}` is it plus [`DELIVERY_MARGIN_SECS`] (the CUN to the citizen).
    pub send_bound: Option<u64>,
    /// The region the systems under test serve (`{{region}}` in scenarios); `None`:
    /// [`DEFAULT_REGION`].
    pub region: Option<String>,
}

/// The region scenarios certify by default: Puglia, `160`.
pub const DEFAULT_REGION: &str = "160";

/// ORD-3.1t's default bound: 60 s of real time.
pub const DEFAULT_SEND_BOUND_SECS: u64 = 60;

/// What a CUN may take on top of the send bound to reach the citizen.
pub const DELIVERY_MARGIN_SECS: u64 = 10;

impl Suts {
    /// The send bound in seconds.
    pub fn send_bound_secs(&self) -> u64 {
        self.send_bound.unwrap_or(DEFAULT_SEND_BOUND_SECS)
    }

    /// The base URL for a call to the SAR/AVR at `path`, if a vendor system serves it.
    pub fn url_for(&self, path: &str) -> Option<&str> {
        let url = if path.starts_with("/avr/") { self.avr.as_ref().or(self.sar.as_ref()) } else { self.sar.as_ref() };
        url.map(|u| u.trim_end_matches('/'))
    }

    /// Whether any system is under test.
    pub fn any(&self) -> bool {
        self.sar.is_some() || self.avr.is_some()
    }

    /// `sar` / `avr` -> URL.
    pub fn map(&self) -> std::collections::BTreeMap<String, String> {
        [("sar", &self.sar), ("avr", &self.avr)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
            .collect()
    }
}

/// Why a scenario that moves the clock is not run against a system under test.
pub const CLOCK_CONTRACT: &str = "this scenario moves the virtual clock; a system under test keeps real time, so it \
     is not run against one (the clock contract, docs/certification.md)";

/// Loads every file first (a broken file fails the run before anything starts),
/// then runs them, `jobs` at a time.
pub async fn run_files(files: &[PathBuf], opts: &RunOptions) -> Result<RunReport, LoadError> {
    run_files_with_progress(files, opts, None).await
}

/// As [`run_files`], telling `progress` of each scenario as it finishes.
pub async fn run_files_with_progress(
    files: &[PathBuf],
    opts: &RunOptions,
    mut progress: Option<Progress>,
) -> Result<RunReport, LoadError> {
    let loaded = load_all(files)?;
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let total = loaded.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (file, scenario)) in loaded.into_iter().enumerate() {
        let gate = gate.clone();
        let seed = opts.seed;
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (index, run_scenario(&scenario, &file, seed).await)
        });
    }
    let mut done: Vec<(usize, ScenarioReport)> = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, report)) => {
                if let Some(p) = progress.as_mut() {
                    p(done.len() + 1, total, &report);
                }
                done.push((index, report));
            }
            Err(e) => tracing::error!(error = %e, "a scenario task panicked"),
        }
    }
    // Reports list scenarios in file order, whatever order they finished in.
    done.sort_by_key(|(i, _)| *i);
    Ok(RunReport { seed: opts.seed, scenarios: done.into_iter().map(|(_, r)| r).collect(), certification: None })
}

/// Every file parsed, before anything runs: a broken file fails the run up front.
fn load_all(files: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, LoadError> {
    files.iter().map(|f| Ok((f.clone(), load(f)?))).collect()
}

/// An empty, passing report for `scenario` from `file`.
fn new_report(scenario: &Scenario, file: &Path) -> ScenarioReport {
    ScenarioReport {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        suite: suite_of(file),
        file: file.display().to_string(),
        requirements: scenario.requirements.clone(),
        outcome: Outcome::Passed,
        steps: Vec::new(),
        exchanges: Vec::new(),
        duration_ms: 0.0,
    }
}

fn suite_of(file: &Path) -> String {
    file.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("scenarios").to_owned()
}

/// Runs scenarios one at a time against one shared ecosystem whose SAR/AVR are the
/// vendor's systems (`ecosim run --sut sar=URL`). The national systems listen on
/// `config`'s ports, which the vendor's systems point at; each scenario gets citizens
/// no earlier scenario used; fault rules are cleared between scenarios. A scenario
/// that moves the clock is skipped ([`CLOCK_CONTRACT`]).
pub async fn run_files_against_sut(
    files: &[PathBuf],
    config: Config,
    suts: &Suts,
    progress: Option<Progress>,
) -> anyhow::Result<RunReport> {
    let loaded = load_all(files)?;
    let mut config = config;
    config.urls.sar = suts.sar.clone().or(suts.avr.clone());
    let eco = Ecosystem::start_without(config, &[System::Sar]).await?;
    let report = run_loaded_on(&eco, &loaded, suts, progress).await;
    eco.shutdown().await;
    Ok(report)
}

/// Runs loaded scenarios one at a time on `eco`, whose SAR/AVR are `suts`.
pub async fn run_loaded_on(
    eco: &Ecosystem,
    loaded: &[(PathBuf, Scenario)],
    suts: &Suts,
    mut progress: Option<Progress>,
) -> RunReport {
    let seed = eco.context().config().seed;
    let mut taken = std::collections::HashSet::new();
    let mut scenarios = Vec::new();
    for (file, scenario) in loaded {
        let refused = if scenario.moves_the_clock() {
            Some(CLOCK_CONTRACT.to_owned())
        } else {
            scenario.cannot_run_on(eco.context().config())
        };
        let report = if let Some(why) = refused {
            let mut report = new_report(scenario, file);
            report.outcome = Outcome::Skipped;
            report.steps.push(StepReport { message: Some(why), ..StepReport::new("given", Outcome::Skipped) });
            report
        } else {
            run_on_shared(eco, scenario, file, seed, &mut taken, Some(suts)).await
        };
        if let Err(e) = clear_faults(eco).await {
            // A rule left over would break the next scenario: say so in its report.
            tracing::error!(error = %e, "cannot clear the fault rules");
        }
        if let Some(p) = progress.as_mut() {
            p(scenarios.len() + 1, loaded.len(), &report);
        }
        scenarios.push(report);
    }
    RunReport { seed, scenarios, certification: None }
}

/// Clears every fault rule through the control plane's admin API.
async fn clear_faults(eco: &Ecosystem) -> reqwest::Result<()> {
    let url = format!("{}/_admin/faults", eco.url(System::ControlPlane));
    let mut req = reqwest::Client::new().delete(url);
    if let Some(token) = &eco.context().config().admin.token {
        req = req.bearer_auth(token);
    }
    req.send().await?.error_for_status().map(|_| ())
}

/// Loads scenario files, refusing the run if any is broken.
pub fn load_files(files: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, LoadError> {
    load_all(files)
}

/// Runs one scenario in a fresh ecosystem.
pub async fn run_scenario(scenario: &Scenario, file: &Path, seed: u64) -> ScenarioReport {
    run_scenario_with(scenario, file, Config::for_tests(seed)).await
}

/// Runs one scenario in a fresh ecosystem made from `config` (e.g. with a mutant on).
pub async fn run_scenario_with(scenario: &Scenario, file: &Path, mut config: Config) -> ScenarioReport {
    let seed = config.seed;
    if let Some(f) = scenario.given.avn_forwarding {
        config.timing.avn_forwarding = f.into();
    }
    let eco = match Ecosystem::start(config).await {
        Ok(e) => e,
        Err(e) => {
            let mut report = new_report(scenario, file);
            report.outcome = Outcome::Failed;
            report
                .steps
                .push(StepReport { message: Some(format!("{e:#}")), ..StepReport::new("start", Outcome::Failed) });
            return report;
        }
    };
    let report = run_on_shared(&eco, scenario, file, seed, &mut std::collections::HashSet::new(), None).await;
    eco.shutdown().await;
    report
}

/// Runs one scenario on an ecosystem already running (fresh, or shared with other
/// scenarios and possibly external systems), choosing citizens not in `taken`.
pub async fn run_on_shared(
    eco: &Ecosystem,
    scenario: &Scenario,
    file: &Path,
    seed: u64,
    taken: &mut std::collections::HashSet<ecosim_domain::codes::CodiceFiscale>,
    suts: Option<&Suts>,
) -> ScenarioReport {
    let started = Instant::now();
    let first_seq = eco.context().journal().last_seq();
    let mut report = new_report(scenario, file);
    let handle = eco.handle();
    let mut runner = Runner::new(&handle, seed, suts.cloned().unwrap_or_default());
    let setup = runner.pick_citizens(&scenario.given.citizens, taken);
    if let Err(e) = setup {
        report.outcome = Outcome::Failed;
        report.steps.push(StepReport { message: Some(e.to_string()), ..StepReport::new("given", Outcome::Failed) });
    }
    // After a failed check that changes nothing and captures nothing, later steps
    // still run: each requirement is judged by its own steps, not by a neighbour's.
    let mut blocked = report.outcome == Outcome::Failed;
    for (i, step) in scenario.steps.iter().enumerate() {
        let mut entry = StepReport {
            verifies: step.verifies.clone(),
            line: scenario.lines.get(i).copied(),
            ..StepReport::new(actions::describe(step), Outcome::Skipped)
        };
        if blocked {
            entry.message = Some("not reached: an earlier step failed".into());
            report.steps.push(entry);
            continue;
        }
        let t0 = Instant::now();
        let result = actions::run(&mut runner, step).await;
        entry.duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => entry.outcome = Outcome::Passed,
            Err(message) => {
                report.outcome = Outcome::Failed;
                entry.outcome = Outcome::Failed;
                blocked = !step.action.is_pure_check();
                let at =
                    entry.line.map(|l| format!("{}:{l}", file.display())).unwrap_or_else(|| file.display().to_string());
                entry.message = Some(format!("{message}\n  at {at}\nlast exchanges:\n{}", runner.last_exchanges(5)));
            }
        }
        report.steps.push(entry);
    }
    report.exchanges = eco
        .context()
        .journal()
        .since(first_seq)
        .exchanges
        .into_iter()
        .map(|e| ecosim_reports::ExchangeReport {
            seq: e.seq,
            time: e.time.to_string(),
            from: e.from,
            to: e.to,
            method: e.method,
            path: e.path,
            status: e.status,
            wall_ms: e.wall_time.as_millisecond() as f64,
            duration_ms: e.duration_ms,
            request_body: e.request_body.text(),
            response_body: e.response_body.text(),
        })
        .collect();
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
}
