//! Requirement mutants: proof that every requirement is really tested.
//!
//! For each requirement id of REQUIREMENTS.md there is a switch that breaks exactly
//! that rule in the system that owns it: a national simulator ([`Config::mutant`]) or
//! the reference SAR/AVR (a [`SarDefect`]). [`run`] turns each switch on in turn, runs
//! the scenarios that cite the id, each in a fresh ecosystem, and reports whether the
//! id's verdict became *failed* (the mutant is **killed**, by the steps that verify
//! the id) or stayed passed (it **survived**: the scenarios would not notice that
//! rule broken). `ecosim mutants` is the command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ecosim_core::config::{Config, SarDefect};
use ecosim_reports::{RunReport, Verdict};
use serde::Serialize;

use crate::scenario::LoadError;
use crate::scenario::model::Scenario;
use crate::scenario::run::{load_files, run_scenario_with};

/// How a requirement is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// A defect of the reference SAR/AVR.
    Sar(SarDefect),
    /// A national simulator's rule ([`Config::mutant`]).
    National,
}

impl Switch {
    /// The switch for `id`: the SAR/AVR defect that breaks it, else the national one.
    pub fn for_requirement(id: &str) -> Self {
        SarDefect::ALL.iter().find(|d| d.breaks() == id).map_or(Switch::National, |d| Switch::Sar(*d))
    }

    /// `config` with the switch for `id` on.
    pub fn apply(self, id: &str, config: &mut Config) {
        match self {
            Switch::Sar(d) => config.sar.defects = vec![d],
            Switch::National => config.mutant = Some(id.to_owned()),
        }
    }

    fn label(self) -> String {
        match self {
            Switch::Sar(d) => format!("sar.defects = [{}]", serde_json::to_string(&d).unwrap_or_default()),
            Switch::National => "mutant".into(),
        }
    }
}

/// One mutant's fate.
#[derive(Debug, Clone, Serialize)]
pub struct MutantReport {
    /// The requirement broken.
    pub requirement: String,
    /// How it was broken.
    pub switch: String,
    /// The scenarios citing it (run with the mutant on).
    pub scenarios: Vec<String>,
    /// Those whose steps then judged the requirement failed.
    pub killed_by: Vec<String>,
    /// Whether any did.
    pub killed: bool,
    /// Real time from the start of the run until its scenarios were done, in milliseconds.
    pub duration_ms: f64,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenario files (already discovered).
    pub files: Vec<PathBuf>,
    /// Only these ids (empty: every id of the catalogue).
    pub only: Vec<String>,
    /// Scenarios run at once.
    pub jobs: usize,
    /// Seed of every ecosystem.
    pub seed: u64,
}

/// Runs every requirement's mutant against the scenarios citing it (all pairs
/// `jobs` at a time); reports in the catalogue's order. `progress` is told of each
/// mutant's report as soon as all its scenarios are done.
pub async fn run(
    opts: &Options,
    mut progress: impl FnMut(&MutantReport) + Send,
) -> Result<Vec<MutantReport>, LoadError> {
    let loaded = Arc::new(load_files(&opts.files)?);
    let ids: Vec<&'static str> = ecosim_reports::catalogue()
        .iter()
        .map(|r| r.id)
        .filter(|id| opts.only.is_empty() || opts.only.iter().any(|o| o == id))
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut pending: Vec<usize> = Vec::with_capacity(ids.len());
    for (n, id) in ids.iter().copied().enumerate() {
        let switch = Switch::for_requirement(id);
        let citing: Vec<usize> = loaded.iter().enumerate().filter(|(_, (_, s))| cites(s, id)).map(|(i, _)| i).collect();
        pending.push(citing.len());
        for i in citing {
            let (gate, loaded) = (gate.clone(), loaded.clone());
            let mut config = Config::for_tests(opts.seed);
            switch.apply(id, &mut config);
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let (file, scenario) = &loaded[i];
                (n, run_scenario_with(scenario, file, config).await)
            });
        }
    }
    let mut results: Vec<Vec<ecosim_reports::ScenarioReport>> = vec![Vec::new(); ids.len()];
    let mut reports: Vec<Option<MutantReport>> = vec![None; ids.len()];
    let mut finish = |n: usize, results: &mut Vec<Vec<ecosim_reports::ScenarioReport>>| {
        let report = judge(ids[n], std::mem::take(&mut results[n]), opts.seed, started);
        progress(&report);
        reports[n] = Some(report);
    };
    for (n, count) in pending.iter().enumerate() {
        if *count == 0 {
            finish(n, &mut results);
        }
    }
    while let Some(done) = tasks.join_next().await {
        let Ok((n, report)) = done else { continue };
        results[n].push(report);
        if results[n].len() == pending[n] {
            finish(n, &mut results);
        }
    }
    Ok(reports.into_iter().flatten().collect())
}

/// A mutant's fate from the runs of its scenarios: killed by those whose steps judged
/// the requirement failed.
fn judge(id: &str, mut scenarios: Vec<ecosim_reports::ScenarioReport>, seed: u64, started: Instant) -> MutantReport {
    scenarios.sort_by(|a, b| a.id.cmp(&b.id));
    let killed_by: Vec<String> = scenarios
        .iter()
        .filter(|s| {
            let run = RunReport { seed, scenarios: vec![(*s).clone()], certification: None };
            ecosim_reports::coverage(&run).iter().any(|row| row.requirement.id == id && row.verdict == Verdict::Failed)
        })
        .map(|s| s.id.clone())
        .collect();
    MutantReport {
        requirement: id.to_owned(),
        switch: Switch::for_requirement(id).label(),
        scenarios: scenarios.iter().map(|s| s.id.clone()).collect(),
        killed: !killed_by.is_empty(),
        killed_by,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// Whether `scenario` cites `id` (in its requirements or a step's `verifies`).
fn cites(scenario: &Scenario, id: &str) -> bool {
    scenario.requirements.iter().any(|r| r == id) || scenario.steps.iter().any(|s| s.verifies.iter().any(|v| v == id))
}
