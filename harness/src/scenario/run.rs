//! Running scenarios: each in its own fresh in-process ecosystem on port 0, so
//! scenarios run in parallel without touching each other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecosim_core::System;
use ecosim_core::codes::{Cun, Otp};
use ecosim_core::config::Config;
use ecosim_core::duration::parse_duration;
use ecosim_core::population::Citizen;
use ecosim_reports::{Outcome, RunReport, ScenarioReport, StepReport};
use serde_json::{Value, json};

use super::model::{CitizenSpec, Expect, JournalMatch, Scenario, Step};
use super::{LoadError, load};
use crate::app::VirtualApp;
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

/// The actions a step names (a valid step has exactly one).
pub fn actions_of(step: &Step) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut has = |present: bool, name: &'static str| {
        if present {
            out.push(name);
        }
    };
    has(step.lab_report.is_some(), "lab.report");
    has(step.ts_submit.is_some(), "ts.submit");
    has(step.ts_get.is_some(), "ts.get");
    has(step.ts_correct.is_some(), "ts.correct");
    has(step.sms_expect.is_some(), "sms.expect");
    has(step.mail_expect.is_some(), "mail.expect");
    has(step.journal_expect.is_some(), "journal.expect");
    has(step.journal_absent.is_some(), "journal.absent");
    has(step.sms_absent.is_some(), "sms.absent");
    has(step.mail_absent.is_some(), "mail.absent");
    has(step.clock_advance.is_some(), "clock.advance");
    has(step.fault.is_some(), "fault");
    has(step.app_new_otp.is_some(), "app.new_otp");
    has(step.app_check_otp.is_some(), "app.check_otp");
    has(step.app_check_cun.is_some(), "app.check_cun");
    has(step.app_upload.is_some(), "app.upload");
    has(step.callcenter_unlock.is_some(), "callcenter.unlock");
    has(step.asl_unlock.is_some(), "asl.unlock");
    has(step.avr_vaccinate.is_some(), "avr.vaccinate");
    has(step.http.is_some(), "http");
    has(step.app_get_dgc.is_some(), "app.get_dgc");
    has(step.dgc_verify.is_some(), "dgc.verify");
    out
}

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
        eco.context().faults().clear(None);
        if let Some(p) = progress.as_mut() {
            p(scenarios.len() + 1, loaded.len(), &report);
        }
        scenarios.push(report);
    }
    RunReport { seed, scenarios, certification: None }
}

/// Loads scenario files, refusing the run if any is broken.
pub fn load_files(files: &[PathBuf]) -> Result<Vec<(PathBuf, Scenario)>, LoadError> {
    load_all(files)
}

/// Runs one scenario in a fresh ecosystem.
pub async fn run_scenario(scenario: &Scenario, file: &Path, seed: u64) -> ScenarioReport {
    let mut config = Config::for_tests(seed);
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
    taken: &mut std::collections::HashSet<ecosim_core::codes::CodiceFiscale>,
    suts: Option<&Suts>,
) -> ScenarioReport {
    let started = Instant::now();
    let first_seq = eco.context().journal().last_seq();
    let mut report = new_report(scenario, file);
    let mut runner = Runner::new(eco, seed, suts.cloned().unwrap_or_default());
    let setup = runner.pick_citizens(&scenario.given.citizens, taken);
    if let Err(message) = setup {
        report.outcome = Outcome::Failed;
        report.steps.push(StepReport { message: Some(message), ..StepReport::new("given", Outcome::Failed) });
    }
    // After a failed check that changes nothing and captures nothing, later steps
    // still run: each requirement is judged by its own steps, not by a neighbour's.
    let mut blocked = report.outcome == Outcome::Failed;
    for (i, step) in scenario.steps.iter().enumerate() {
        let mut entry = StepReport {
            verifies: step.verifies.clone(),
            line: scenario.lines.get(i).copied(),
            ..StepReport::new(runner.describe(step), Outcome::Skipped)
        };
        if blocked {
            entry.message = Some("not reached: an earlier step failed".into());
            report.steps.push(entry);
            continue;
        }
        let t0 = Instant::now();
        let result = runner.step(step).await;
        entry.duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => entry.outcome = Outcome::Passed,
            Err(message) => {
                report.outcome = Outcome::Failed;
                entry.outcome = Outcome::Failed;
                blocked = !is_pure_check(step);
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

/// A step that only looks (no request that changes state, no variable captured): a
/// failure of it does not stop the scenario.
fn is_pure_check(step: &Step) -> bool {
    step.journal_expect.is_some()
        || step.journal_absent.is_some()
        || step.sms_absent.is_some()
        || step.mail_absent.is_some()
        || step.sms_expect.as_ref().or(step.mail_expect.as_ref()).is_some_and(|e| !e.text.contains("(?P<"))
}

/// `"18-64"`, `"65-"`, `"-11"` as an inclusive range of years.
fn parse_age_band(band: &str) -> Option<(i16, i16)> {
    let (lo, hi) = band.split_once('-')?;
    let lo = if lo.trim().is_empty() { 0 } else { lo.trim().parse().ok()? };
    let hi = if hi.trim().is_empty() { i16::MAX } else { hi.trim().parse().ok()? };
    (lo <= hi).then_some((lo, hi))
}

/// A test result for `c` as a lab sends it to the SAR (`to_sar`: the parent's mobile
/// goes separately) or as a region sends it to Sistema TS (the number to text).
fn result_body(c: &Citizen, r: &super::model::LabReport, today: String, to_sar: bool) -> Value {
    let mut body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "esito": r.esito,
        "tipo_test": r.tipo_test.clone().unwrap_or_else(|| "MOLECOLARE".into()),
        "data_esecuzione": r.data_esecuzione.clone().unwrap_or(today), "struttura": "LAB-SCENARIO",
        "contatti": {"email": c.email().map(|e| e.to_string())},
    });
    if to_sar {
        body["contatti"]["cellulare"] = json!(c.mobile().map(|m| m.to_string()));
        body["contatti"]["cellulare_genitore"] = json!(c.parent_mobile().map(|m| m.to_string()));
    } else {
        body["contatti"]["cellulare"] = json!(c.mobile().or(c.parent_mobile()).map(|m| m.to_string()));
        body["invio_cun_da_ts"] = json!(r.invio_cun_da_ts.unwrap_or(false));
    }
    body
}

struct Runner<'e> {
    eco: &'e Ecosystem,
    suts: Suts,
    first_seq: u64,
    http: reqwest::Client,
    app: VirtualApp,
    vars: HashMap<String, String>,
    people: HashMap<String, Citizen>,
}

type StepResult = Result<(), String>;

impl<'e> Runner<'e> {
    fn new(eco: &'e Ecosystem, seed: u64, suts: Suts) -> Self {
        let bound = suts.send_bound_secs();
        let region = suts.region.clone().unwrap_or_else(|| DEFAULT_REGION.to_owned());
        Self {
            eco,
            suts,
            first_seq: eco.context().journal().last_seq(),
            http: reqwest::Client::new(),
            app: VirtualApp::new(&eco.url(System::Immuni), seed),
            vars: HashMap::from([
                ("today".to_owned(), eco.context().clock().today().to_string()),
                // A region other than the one certified, for another region's systems.
                ("other_region".to_owned(), if region == "150" { "160" } else { "150" }.to_owned()),
                ("region".to_owned(), region),
                ("send_bound".to_owned(), format!("{bound}s")),
                ("delivery_bound".to_owned(), format!("{}s", bound + DELIVERY_MARGIN_SECS)),
            ]),
            people: HashMap::new(),
        }
    }

    fn pick_citizens(
        &mut self,
        specs: &std::collections::BTreeMap<String, CitizenSpec>,
        taken: &mut std::collections::HashSet<ecosim_core::codes::CodiceFiscale>,
    ) -> Result<(), String> {
        let ctx = self.eco.context();
        let today = ctx.clock().today();
        for (name, spec) in specs {
            let region = spec.region.as_deref().map(|r| self.render(r)).transpose()?;
            let age_band = match &spec.age {
                None => None,
                Some(band) => Some(
                    parse_age_band(band)
                        .ok_or_else(|| format!("{name}: age {band:?} is not a band like 18-64, 65- or -11"))?,
                ),
            };
            let found = ctx.population().iter().find(|c| {
                !taken.contains(c.codice_fiscale())
                    && region.as_deref().is_none_or(|r| match r.strip_prefix('!') {
                        Some(not) => c.region().code != not,
                        None => c.region().code == r,
                    })
                    && spec.minor.is_none_or(|m| c.is_minor_on(today) == m)
                    && spec.mobile.is_none_or(|m| c.mobile().is_some() == m)
                    && spec.email.is_none_or(|m| c.email().is_some() == m)
                    && age_band.is_none_or(|(lo, hi)| (lo..=hi).contains(&c.age_on(today)))
            });
            let Some(c) = found else {
                let mut wanted = Vec::new();
                if let Some(r) = &region {
                    wanted.push(format!("region {r}"));
                }
                for (field, value) in [("minor", spec.minor), ("mobile", spec.mobile), ("email", spec.email)] {
                    if let Some(v) = value {
                        wanted.push(format!("{field}: {v}"));
                    }
                }
                if let Some(a) = &spec.age {
                    wanted.push(format!("age {a}"));
                }
                return Err(format!(
                    "no citizen left in the registry ({} people, {} already taken) for {name} ({})",
                    ctx.population().len(),
                    taken.len(),
                    wanted.join(", ")
                ));
            };
            taken.insert(*c.codice_fiscale());
            self.vars.insert(format!("{name}.cf"), c.codice_fiscale().to_string());
            self.vars.insert(format!("{name}.region"), c.region().code.to_owned());
            self.vars.insert(format!("{name}.card8"), c.card().number.last8().as_str().to_owned());
            self.vars.insert(format!("{name}.card_expiry"), c.card().expiry.to_string());
            self.people.insert(name.clone(), c.clone());
        }
        Ok(())
    }

    fn citizen(&self, name: &str) -> Result<&Citizen, String> {
        self.people.get(name).ok_or_else(|| format!("no citizen {name:?} in given.citizens"))
    }

    fn render(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| format!("unclosed {{{{ in {text:?}"))?;
            let name = after[..end].trim();
            let (hash, name) = match name.strip_prefix("sha256:") {
                Some(inner) => (true, inner.trim()),
                None => (false, name),
            };
            let value = match self.vars.get(name) {
                Some(v) => v.clone(),
                None => self
                    .relative_date(name)
                    .ok_or_else(|| format!("variable {name} is not set (capture it in an earlier step)"))??,
            };
            if hash {
                out.push_str(&ecosim_core::codes::sha256_hex(&value));
            } else {
                out.push_str(&value);
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `today-20` / `today+3`: that many days from the clock's today, `YYYY-MM-DD`
    /// (so scenarios date past events without moving the clock); `None` for other names.
    fn relative_date(&self, name: &str) -> Option<Result<String, String>> {
        let rest = name.strip_prefix("today")?;
        let (sign, n) = match rest.split_at_checked(1)? {
            ("-", n) => (-1, n),
            ("+", n) => (1, n),
            _ => return None,
        };
        let days: i64 = match n.trim().parse() {
            Ok(d) => d,
            Err(_) => return Some(Err(format!("{{{{{name}}}}}: write today-N or today+N with N days"))),
        };
        let today = self.eco.context().clock().today();
        Some(
            today
                .checked_add(jiff::Span::new().days(sign * days))
                .map(|d| d.to_string())
                .map_err(|e| format!("{name}: {e}")),
        )
    }

    /// A duration of the scenario (`10s`, `{{delivery_bound}}`), as real time.
    fn real_time(&self, text: Option<&str>, default: &str) -> Result<Duration, String> {
        let text = self.render(text.unwrap_or(default))?;
        let d = parse_duration(&text).map_err(|e| e.to_string())?;
        Duration::try_from(d).map_err(|_| format!("{text}: a real-time wait cannot be negative"))
    }

    /// The step's action and whom it concerns (`lab.report teo`), for reports.
    fn describe(&self, step: &Step) -> String {
        let action = actions_of(step).first().copied().unwrap_or("?");
        let who = step
            .lab_report
            .as_ref()
            .or(step.ts_submit.as_ref())
            .map(|r| r.citizen.as_str())
            .or(step.avr_vaccinate.as_ref().map(|v| v.citizen.as_str()))
            .or(step.sms_expect.as_ref().or(step.mail_expect.as_ref()).map(|e| e.to.as_str()))
            .or(step.sms_absent.as_ref().or(step.mail_absent.as_ref()).map(|e| e.to.as_str()))
            .or(step.journal_expect.as_ref().map(|j| j.matching.to.as_str()))
            .or(step.journal_absent.as_ref().map(|j| j.matching.to.as_str()));
        match who {
            Some(w) => format!("{action} {w}"),
            None => action.to_owned(),
        }
    }

    /// The citizens' names a text mentions (by codice fiscale, mobile, parent's mobile
    /// or e-mail), as `teo`, `teo.parent`.
    fn who_is_in(&self, text: &str) -> Vec<String> {
        let digits = |m: String| m.trim_start_matches("+39").to_owned();
        let mut out = Vec::new();
        for (name, c) in &self.people {
            let mine = [
                Some(c.codice_fiscale().to_string()),
                c.mobile().map(|m| digits(m.to_string())),
                c.email().map(|e| e.to_string()),
            ];
            if mine.into_iter().flatten().any(|k| text.contains(&k)) {
                out.push(name.clone());
            }
            if c.parent_mobile().is_some_and(|m| text.contains(&digits(m.to_string()))) {
                out.push(format!("{name}.parent"));
            }
        }
        out.sort();
        out
    }

    /// The scenario's latest exchanges: against a system under test, those to and
    /// from it; each with the citizens it concerns.
    fn last_exchanges(&self, n: usize) -> String {
        let page = self.eco.context().journal().since(self.first_seq);
        let is_sut = |e: &ecosim_core::journal::Exchange| {
            e.to == "sar" || e.from.starts_with("sar-") || e.from.starts_with("avr-") || e.from.starts_with("cun@sar-")
        };
        let mut chosen: Vec<&ecosim_core::journal::Exchange> =
            page.exchanges.iter().filter(|e| !self.suts.any() || is_sut(e)).collect();
        // Journalled when answered; shown in the order they were asked.
        chosen.sort_by_key(|e| e.wall_time);
        if chosen.is_empty() {
            return "  (none since the scenario began)".into();
        }
        let skip = chosen.len().saturating_sub(n);
        chosen[skip..]
            .iter()
            .map(|e| {
                let bodies = format!("{} {}", e.request_body.text(), e.response_body.text());
                let who = self.who_is_in(&format!("{} {bodies}", e.path));
                let who = if who.is_empty() { String::new() } else { format!(" [{}]", who.join(", ")) };
                let status = if e.status == 0 { "dropped".to_owned() } else { e.status.to_string() };
                format!(
                    "  {} {} -> {} {} {} {status}{who}: {}",
                    e.wall_time.strftime("%H:%M:%S%.3f"),
                    e.from,
                    e.to,
                    e.method,
                    e.path,
                    e.response_body.text().chars().take(200).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn send(
        &self,
        system: System,
        method: reqwest::Method,
        path: &str,
        account: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let sut = if system == System::Sar { self.suts.url_for(path).map(str::to_owned) } else { None };
        let base = sut.clone().unwrap_or_else(|| self.eco.url(system));
        let mut req = self.http.request(method.clone(), format!("{base}{path}"));
        if let Some(a) = account {
            req = req.basic_auth(a, Some(self.password_of(a)));
        }
        if path.contains("/inbox/") {
            // The runner watching a phone is not part of the flow: keep it out of the journal.
            req = req.header(ecosim_core::boundary::OBSERVER_HEADER, "1");
        }
        let request_text = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (time, wall_time, started) = (self.eco.context().clock().now(), jiff::Timestamp::now(), Instant::now());
        let res = req.send().await;
        let (status, text) = match res {
            Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
            Err(e) if sut.is_none() => return Err(format!("{system} did not answer: {e}")),
            Err(e) => (0, format!("the system under test did not answer: {e}")),
        };
        if sut.is_some() {
            // A vendor's system journals nothing here: record the call the runner made
            // to it, so reports draw lab -> SUT and failures show it.
            self.eco.context().journal().record(ecosim_core::journal::NewExchange {
                time: Some(time),
                wall_time: Some(wall_time),
                from: account.unwrap_or("anonymous").to_owned(),
                to: "sar".into(),
                method: method.to_string(),
                path: path.to_owned(),
                status,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                request_body: request_text.into_bytes().into(),
                response_body: text.clone().into_bytes().into(),
                fault: None,
                idempotency_key: None,
            });
            if status == 0 {
                return Err(text);
            }
        }
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// The password of `account` in this ecosystem's accounts (`<name>-secret` by default).
    fn password_of(&self, account: &str) -> String {
        self.eco
            .context()
            .accounts()
            .get(account)
            .map(|a| a.password.clone())
            .unwrap_or_else(|| format!("{account}-secret"))
    }

    fn check(expect: Option<&Expect>, default_status: u16, status: u16, body: &Value) -> StepResult {
        let any = expect.map(|e| e.status_any.as_slice()).unwrap_or_default();
        if !any.is_empty() {
            if !any.contains(&status) {
                return Err(format!("expected a status among {any:?}, got {status}: {body}"));
            }
        } else {
            let want = expect.and_then(|e| e.status).unwrap_or(default_status);
            if status != want {
                return Err(format!("expected status {want}, got {status}: {body}"));
            }
        }
        if let Some(e) = expect {
            if let Some(code) = e.error_code
                && body["error_code"].as_u64() != Some(code)
            {
                return Err(format!("expected error_code {code}, got {}", body["error_code"]));
            }
            if let Some(r) = &e.requirement
                && body["requirement"].as_str() != Some(r)
            {
                return Err(format!("expected requirement {r}, got {}", body["requirement"]));
            }
            if let Some(f) = &e.field
                && body["errors"][0]["field"].as_str() != Some(f)
            {
                return Err(format!("expected field {f}, got {}", body["errors"][0]["field"]));
            }
            for (pointer, want) in &e.json {
                let got = body.pointer(pointer).unwrap_or(&Value::Null);
                if got != want {
                    return Err(format!("expected {pointer} = {want}, got {got}: {body}"));
                }
            }
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        let expect = step.expect.as_ref();
        let today = self.eco.context().clock().today().to_string();
        if let Some(r) = &step.lab_report {
            let c = self.citizen(&r.citizen)?.clone();
            let account = match &r.account {
                Some(a) => self.render(a)?,
                None => format!("lab-{}", c.region().code),
            };
            let body = result_body(&c, r, today, true);
            let (status, v) =
                self.send(System::Sar, reqwest::Method::POST, "/sar/v1/esiti", Some(&account), Some(body)).await?;
            if let Some(id) = v["id"].as_str() {
                self.vars.insert(format!("{}.esito", r.citizen), id.to_owned());
            }
            return Self::check(expect, 202, status, &v);
        }
        if let Some(r) = &step.ts_submit {
            let c = self.citizen(&r.citizen)?.clone();
            let account = r.account.clone().unwrap_or_else(|| format!("sar-{}", c.region().code));
            let body = result_body(&c, r, today, false);
            let (status, v) = self
                .send(System::SistemaTs, reqwest::Method::POST, "/ts/v1/test-results", Some(&account), Some(body))
                .await?;
            if let Some(cun) = v["cun"].as_str() {
                self.vars.insert("cun".into(), cun.to_owned());
            }
            return Self::check(expect, 201, status, &v);
        }
        if let Some(g) = &step.ts_get {
            let cun = self.render(&g.cun)?;
            let (status, v) = self
                .send(
                    System::SistemaTs,
                    reqwest::Method::GET,
                    &format!("/ts/v1/test-results/{cun}"),
                    Some(&self.render(&g.account)?),
                    None,
                )
                .await?;
            return Self::check(expect, 200, status, &v);
        }
        if let Some(c) = &step.ts_correct {
            let cun = self.render(&c.cun)?;
            let path = format!("/ts/v1/test-results/{cun}");
            let (status, v) = self
                .send(
                    System::SistemaTs,
                    reqwest::Method::PATCH,
                    &path,
                    Some(&self.render(&c.account)?),
                    Some(c.changes.clone()),
                )
                .await?;
            return Self::check(expect, 200, status, &v);
        }
        if let Some(e) = &step.sms_expect {
            return self.inbox_expect(e, true).await;
        }
        if let Some(e) = &step.mail_expect {
            return self.inbox_expect(e, false).await;
        }
        if let Some(j) = &step.journal_expect {
            return self.journal_expect(j).await;
        }
        if let Some(j) = &step.journal_absent {
            tokio::time::sleep(self.real_time(j.window.as_deref(), "3s")?).await;
            let found = self.matching(&j.matching)?;
            if let Some(e) = found.first() {
                return Err(format!(
                    "expected no exchange {}, found {}: {} -> {} {} {} {}: {}",
                    self.describe_match(&j.matching),
                    found.len(),
                    e.from,
                    e.to,
                    e.method,
                    e.path,
                    e.status,
                    e.request_body.text().chars().take(300).collect::<String>()
                ));
            }
            return Ok(());
        }
        if let Some(a) = &step.sms_absent {
            return self.inbox_absent(a, true).await;
        }
        if let Some(a) = &step.mail_absent {
            return self.inbox_absent(a, false).await;
        }
        if let Some(d) = &step.clock_advance {
            parse_duration(d).map_err(|e| e.to_string())?;
            let (status, v) = self
                .send(System::ControlPlane, reqwest::Method::POST, "/_admin/clock", None, Some(json!({"advance": d})))
                .await?;
            return Self::check(None, 200, status, &v);
        }
        if let Some(f) = &step.fault {
            let system = System::from_name(&f.system).ok_or_else(|| format!("unknown system {:?}", f.system))?;
            let mut rule = json!({"match": f.matcher, "action": f.action});
            if f.matcher.is_null() {
                rule["match"] = json!({});
            }
            if let Some(t) = f.times {
                rule["times"] = json!(t);
            }
            let rule: Value =
                serde_json::from_str(&self.render(&rule.to_string())?).map_err(|e| format!("fault: {e}"))?;
            let (status, v) = self.send(system, reqwest::Method::POST, "/_admin/faults", None, Some(rule)).await?;
            return Self::check(None, 201, status, &v);
        }
        if let Some(n) = &step.app_new_otp {
            let otp = self.app.new_otp();
            self.vars.insert(n.save.clone().unwrap_or_else(|| "otp".into()), otp.to_string());
            return Ok(());
        }
        if let Some(o) = &step.app_check_otp {
            let otp = Otp::parse(&self.render(&o.otp)?).map_err(|e| e.to_string())?;
            let a = self.app.check_otp(&otp, o.dummy).await;
            return Self::check(expect, 204, a.status, &a.body);
        }
        if let Some(c) = &step.app_check_cun {
            let citizen = self.citizen(&c.citizen)?.clone();
            let cun = Cun::parse(&self.render(&c.cun)?).map_err(|e| e.to_string())?;
            let symptoms = match &c.symptoms_started_on {
                Some(d) => {
                    Some(self.render(d)?.parse().map_err(|_| format!("symptoms_started_on {d:?} is not a date"))?)
                }
                None => None,
            };
            let a = self.app.check_cun(&cun, &citizen.card().last8(), symptoms, false).await;
            return Self::check(expect, 204, a.status, &a.body);
        }
        if let Some(u) = &step.app_upload {
            let token = match (&u.otp, &u.cun) {
                (Some(o), None) => Otp::parse(&self.render(o)?).map_err(|e| e.to_string())?.sha256(),
                (None, Some(c)) => VirtualApp::cun_token(&Cun::parse(&self.render(c)?).map_err(|e| e.to_string())?),
                _ => return Err("app.upload needs exactly one of otp and cun".into()),
            };
            let now = self.eco.context().clock().now();
            let teks = self.app.teks(now);
            let a = self.app.upload(&token, teks, u.province.as_deref().unwrap_or("RM"), now, false).await;
            return Self::check(expect, 204, a.status, &a.body);
        }
        if let Some(u) = &step.callcenter_unlock {
            let c = self.citizen(&u.citizen)?.clone();
            let mut body = json!({
                "cun": self.render(&u.cun)?, "otp": self.render(&u.otp)?,
                "ultime_8_cifre_ts": match &u.ultime_8_cifre_ts { Some(d) => self.render(d)?, None => c.card().last8().to_string() },
                "supervisore": u.supervisore.clone().unwrap_or_else(|| "supervisore-1".into()),
            });
            if let Some(d) = &u.data_inizio_sintomi {
                body["data_inizio_sintomi"] = json!(self.render(d)?);
            }
            let (status, v) = self
                .send(
                    System::SistemaTs,
                    reqwest::Method::POST,
                    "/ts/v1/sblocchi/call-center",
                    Some("callcenter-1"),
                    Some(body),
                )
                .await?;
            return Self::check(expect, 204, status, &v);
        }
        if let Some(u) = &step.asl_unlock {
            let c = self.citizen(&u.citizen)?.clone();
            let account = u.account.clone().unwrap_or_else(|| format!("asl-{}", c.region().code));
            let body = json!({"codice_fiscale": c.codice_fiscale().as_str(), "otp": self.render(&u.otp)?, "data_inizio_sintomi": self.render(&u.data_inizio_sintomi)?});
            let (status, v) = self
                .send(System::SistemaTs, reqwest::Method::POST, "/ts/v1/sblocchi/asl", Some(&account), Some(body))
                .await?;
            return Self::check(expect, 204, status, &v);
        }
        if let Some(v) = &step.avr_vaccinate {
            return self.avr_vaccinate(v, expect).await;
        }
        if let Some(h) = &step.http {
            return self.http(h, expect).await;
        }
        if let Some(g) = &step.app_get_dgc {
            let c = self.citizen(&g.citizen)?.clone();
            let code = self.render(&g.code)?;
            let hash = match g.token_type.as_str() {
                "cun" => VirtualApp::cun_token(&Cun::parse(&code).map_err(|e| e.to_string())?),
                "nucg" | "cuev" => {
                    let bare = code.rsplit('-').next().unwrap_or(&code);
                    ecosim_core::codes::sha256_hex(&format!("{}-{bare}", g.token_type.to_uppercase()))
                }
                _ => ecosim_core::codes::sha256_hex(&code),
            };
            let expiry = match &g.card_expiry {
                Some(d) => self.render(d)?.parse().map_err(|_| format!("card_expiry {d:?} is not a date"))?,
                None => c.card().expiry,
            };
            // `expect.within`: the certificate may still be on its way.
            let deadline = Instant::now() + self.real_time(expect.and_then(|e| e.within.as_deref()), "0s")?;
            loop {
                let a = self.app.get_dgc(&g.token_type, &hash, &c.card().last8(), expiry, false).await;
                match Self::check(expect, 200, a.status, &a.body) {
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        }
        if let Some(v) = &step.dgc_verify {
            let expect = self.rendered(expect)?;
            let verifier = crate::verifier::Verifier::fetch(&self.eco.url(System::PnDgc))
                .await
                .map_err(|e| format!("no signer from PN-DGC: {e}"))?;
            let hc1 = self.render(&v.hc1)?;
            let status = verifier.status(&hc1, self.eco.context().clock().now());
            if status.as_str() != v.status {
                return Err(format!("expected {}, the verifier says {}", v.status, status.as_str()));
            }
            let dcc = verifier.decode(&hc1).map(|d| d.dcc).unwrap_or(Value::Null);
            if let Some(e) = &expect {
                for (pointer, want) in &e.json {
                    let got = dcc.pointer(pointer).unwrap_or(&Value::Null);
                    if got != want {
                        return Err(format!("expected {pointer} = {want} in the DCC, got {got}: {dcc}"));
                    }
                }
            }
            return Ok(());
        }
        Err("a step with no action".into())
    }

    /// `expect` with `{{variables}}` in its JSON values filled in.
    fn rendered(&self, expect: Option<&Expect>) -> Result<Option<Expect>, String> {
        let Some(e) = expect else { return Ok(None) };
        let mut e = e.clone();
        for value in e.json.values_mut() {
            *value = serde_json::from_str(&self.render(&value.to_string())?).map_err(|err| err.to_string())?;
        }
        Ok(Some(e))
    }

    async fn avr_vaccinate(&mut self, v: &super::model::AvrVaccinate, expect: Option<&Expect>) -> StepResult {
        let expect = self.rendered(expect)?;
        let expect = expect.as_ref();
        let c = self.citizen(&v.citizen)?.clone();
        let account = match &v.account {
            Some(a) => self.render(a)?,
            None => format!("vaccinatore-{}", c.region().code),
        };
        let day = self
            .eco
            .context()
            .clock()
            .today()
            .checked_sub(jiff::Span::new().days(v.days_ago.unwrap_or(0)))
            .map_err(|e| format!("days_ago: {e}"))?;
        let mut body = json!({
            "codice_fiscale": c.codice_fiscale().as_str(), "data_somministrazione": day.to_string(),
            "aic": self.render(&v.aic)?,
        });
        if let Some(country) = &v.estero {
            body["estero"] = json!({"paese": country});
        } else {
            let mobile = match &v.cellulare {
                Some(m) => Some(self.render(m)?),
                None => c.mobile().map(|m| m.to_string()),
            };
            if let Some(o) = body.as_object_mut() {
                o.extend([
                    ("ora".into(), json!("10:00")),
                    ("lotto".into(), json!("SCENARIO")),
                    ("categoria_rischio".into(), json!(v.categoria_rischio.as_deref().unwrap_or("altro"))),
                    ("condizione_sanitaria".into(), json!(v.condizione_sanitaria.as_deref().unwrap_or("nessuna"))),
                    ("via".into(), json!("IM")),
                    ("sito".into(), json!("deltoide_sx")),
                    ("struttura".into(), json!("HUB-SCENARIO")),
                    ("contatti_dgc".into(), json!({"cellulare": mobile, "email": c.email().map(|e| e.to_string())})),
                    ("conferma_contatti".into(), json!(v.conferma_contatti.unwrap_or(true))),
                ]);
            }
        }
        for (key, value) in [
            ("tipo_dose", v.tipo_dose.as_ref().map(|t| json!(t))),
            ("numero_dose_forzato", v.numero_dose_forzato.map(|n| json!(n))),
            ("forza", v.forza.map(|f| json!(f))),
        ] {
            if let Some(value) = value {
                body[key] = value;
            }
        }
        let (status, answer) =
            self.send(System::Sar, reqwest::Method::POST, "/avr/v1/vaccinazioni", Some(&account), Some(body)).await?;
        if let Some(id) = answer["id"].as_str() {
            self.vars.insert(format!("{}.dose", v.citizen), id.to_owned());
        }
        Self::check(expect, 201, status, &answer)
    }

    async fn http(&mut self, h: &super::model::HttpCall, expect: Option<&Expect>) -> StepResult {
        let expect = self.rendered(expect)?;
        let expect = expect.as_ref();
        let system = System::from_name(&h.system).ok_or_else(|| format!("no system {:?}", h.system))?;
        let method = reqwest::Method::from_bytes(h.method.as_deref().unwrap_or("GET").to_ascii_uppercase().as_bytes())
            .map_err(|e| format!("method: {e}"))?;
        let path = self.render(&h.path)?;
        let account = h.account.as_deref().map(|a| self.render(a)).transpose()?;
        let body = h.body.as_ref().map(|b| self.render(&b.to_string())).transpose()?;
        let body = body.map(|b| serde_json::from_str::<Value>(&b)).transpose().map_err(|e| format!("body: {e}"))?;
        let within =
            expect.and_then(|e| e.within.as_deref()).map(parse_duration).transpose().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + within.and_then(|w| Duration::try_from(w).ok()).unwrap_or_default();
        loop {
            let (status, answer) = self.send(system, method.clone(), &path, account.as_deref(), body.clone()).await?;
            match Self::check(expect, h.status.unwrap_or(200), status, &answer) {
                Ok(()) => {
                    for (name, pointer) in &h.save {
                        let value = answer.pointer(pointer).ok_or_else(|| format!("no {pointer} in {answer}"))?;
                        let text = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
                        self.vars.insert(name.clone(), text);
                    }
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The journal's exchanges since the scenario began that `m` matches.
    fn matching(&self, m: &JournalMatch) -> Result<Vec<ecosim_core::journal::Exchange>, String> {
        let from = m.from.as_deref().map(|f| self.render(f)).transpose()?;
        let path = m.path.as_deref().map(|p| self.render(p)).transpose()?;
        let render_map = |map: &std::collections::BTreeMap<String, Value>| -> Result<Vec<(String, Value)>, String> {
            map.iter()
                .map(|(k, v)| {
                    let v = serde_json::from_str(&self.render(&v.to_string())?).map_err(|e| e.to_string())?;
                    Ok((k.clone(), v))
                })
                .collect()
        };
        let (request, response) = (render_map(&m.request)?, render_map(&m.response)?);
        let request_text = match &m.request_text {
            Some(r) => Some(regex::Regex::new(&self.render(r)?).map_err(|e| format!("request_text: {e}"))?),
            None => None,
        };
        let json_has = |body: &str, want: &[(String, Value)]| {
            if want.is_empty() {
                return true;
            }
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            want.iter().all(|(p, w)| v.pointer(p).unwrap_or(&Value::Null) == w)
        };
        let page = self.eco.context().journal().since(self.first_seq);
        Ok(page
            .exchanges
            .into_iter()
            .filter(|e| match from.as_deref() {
                None => true,
                Some(kind @ ("sar" | "avr")) => e.from == kind || e.from.starts_with(&format!("{kind}-")),
                Some(f) => e.from == f,
            })
            .filter(|e| e.to == m.to)
            .filter(|e| m.method.as_deref().is_none_or(|x| e.method.eq_ignore_ascii_case(x)))
            .filter(|e| path.as_deref().is_none_or(|p| e.path.contains(p)))
            .filter(|e| m.status.is_none_or(|s| e.status == s))
            .filter(|e| request_text.as_ref().is_none_or(|r| r.is_match(&e.request_body.text())))
            .filter(|e| json_has(&e.request_body.text(), &request))
            .filter(|e| json_has(&e.response_body.text(), &response))
            .collect())
    }

    fn describe_match(&self, m: &JournalMatch) -> String {
        let r = |t: &str| self.render(t).unwrap_or_else(|_| t.to_owned());
        let mut out = format!(
            "{} -> {} {} {} {}",
            m.from.as_deref().map(r).unwrap_or_else(|| "*".into()),
            m.to,
            m.method.as_deref().unwrap_or("*"),
            m.path.as_deref().map(r).unwrap_or_else(|| "*".into()),
            m.status.map(|s| s.to_string()).unwrap_or_else(|| "*".into())
        );
        for (p, v) in m.request.iter() {
            out.push_str(&format!(" request{p}={}", r(&v.to_string())));
        }
        if let Some(t) = &m.request_text {
            out.push_str(&format!(" request~/{}/", r(t)));
        }
        for (p, v) in m.response.iter() {
            out.push_str(&format!(" response{p}={}", r(&v.to_string())));
        }
        out
    }

    async fn journal_expect(&self, j: &super::model::JournalExpect) -> StepResult {
        // An exchange is journalled when its answer is sent, which can be a moment
        // after its effects are visible elsewhere: look again for a while.
        let deadline = Instant::now() + self.real_time(j.within.as_deref(), "5s")?;
        let what = self.describe_match(&j.matching);
        let found = loop {
            let found = self.matching(&j.matching)?;
            let ok = match j.count {
                Some(n) => found.len() == n,
                None => !found.is_empty(),
            };
            if ok {
                break found;
            }
            if Instant::now() >= deadline || j.count.is_some_and(|n| found.len() > n) {
                return Err(format!(
                    "expected {} exchange(s) {what} within {}, found {}",
                    j.count.map(|n| n.to_string()).unwrap_or_else(|| "some".into()),
                    self.render(j.within.as_deref().unwrap_or("5s"))?,
                    found.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        if let Some(n) = j.count {
            tokio::time::sleep(self.real_time(j.settle.as_deref(), "2s")?).await;
            let later = self.matching(&j.matching)?.len();
            if later > n {
                return Err(format!(
                    "expected exactly {n} exchange(s) {what}; {later} by the end of the {} settle window",
                    j.settle.as_deref().unwrap_or("2s")
                ));
            }
        }
        let found = if j.count.is_some() { self.matching(&j.matching)? } else { found };
        if let Some(gap) = &j.min_gap {
            let gap = self.real_time(Some(gap), "0s")?;
            for pair in found.windows(2) {
                let between = pair[1].wall_time.duration_since(pair[0].wall_time);
                if between.as_secs_f64() < gap.as_secs_f64() {
                    return Err(format!(
                        "expected at least {} of real time between attempts {what}; exchange {} came {:.3} s after exchange {}",
                        j.min_gap.as_deref().unwrap_or(""),
                        pair[1].seq,
                        between.as_secs_f64(),
                        pair[0].seq
                    ));
                }
            }
        }
        for pointer in &j.same_value {
            let values: Vec<Value> = found
                .iter()
                .map(|e| {
                    let body: Value = serde_json::from_str(&e.request_body.text()).unwrap_or(Value::Null);
                    body.pointer(pointer).cloned().unwrap_or(Value::Null)
                })
                .collect();
            if values.first().is_some_and(Value::is_null) || values.windows(2).any(|w| w[0] != w[1]) {
                return Err(format!(
                    "expected every attempt {what} to carry the same {pointer}; they carried {}",
                    Value::Array(values.clone())
                ));
            }
        }
        if j.same_key {
            let keys: Vec<Option<&str>> = found.iter().map(|e| e.idempotency_key.as_deref()).collect();
            let first = keys.first().copied().flatten();
            if first.is_none() || keys.iter().any(|k| *k != first) {
                let shown: Vec<&str> = keys.iter().map(|k| k.unwrap_or("(none)")).collect();
                return Err(format!(
                    "expected every attempt {what} to carry the same Idempotency-Key; they carried {}",
                    shown.join(", ")
                ));
            }
        }
        Ok(())
    }

    async fn inbox(&self, to: &str, sms: bool) -> Result<Vec<Value>, String> {
        let path = if sms { format!("/sms/v1/inbox/{to}") } else { format!("/mail/v1/inbox/{to}") };
        let (_, inbox) = self.send(System::SmsGateway, reqwest::Method::GET, &path, None, None).await?;
        Ok(inbox["messages"].as_array().cloned().unwrap_or_default())
    }

    async fn inbox_absent(&self, a: &super::model::InboxAbsent, sms: bool) -> StepResult {
        let to = self.recipient(&a.to, sms)?;
        let regex = regex::Regex::new(&self.render(a.text.as_deref().unwrap_or(""))?)
            .map_err(|err| format!("text is not a valid regex: {err}"))?;
        let deadline = Instant::now() + self.real_time(a.window.as_deref(), "3s")?;
        let field = if sms { "text" } else { "body" };
        loop {
            let messages = self.inbox(&to, sms).await?;
            let bad = messages.iter().find(|m| {
                m[field].as_str().is_some_and(|t| regex.is_match(t))
                    && a.from.as_deref().is_none_or(|f| m["from"].as_str() == Some(f))
            });
            if let Some(m) = bad {
                return Err(format!(
                    "expected no {} to {} ({to}) matching /{}/, got from {}: {:?}",
                    if sms { "SMS" } else { "e-mail" },
                    a.to,
                    regex.as_str(),
                    m["from"],
                    m[field].as_str().unwrap_or("")
                ));
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn recipient(&self, to: &str, sms: bool) -> Result<String, String> {
        let to = self.render(to)?;
        if let Some(name) = to.strip_suffix(".parent") {
            return self
                .citizen(name)?
                .parent_mobile()
                .map(|m| m.to_string())
                .ok_or_else(|| format!("{name} has no parent mobile"));
        }
        if let Some(c) = self.people.get(&to) {
            let found = if sms {
                c.mobile().or(c.parent_mobile()).map(|m| m.to_string())
            } else {
                c.email().map(|e| e.to_string())
            };
            return found.ok_or_else(|| format!("{to} has no {}", if sms { "mobile" } else { "e-mail" }));
        }
        Ok(to)
    }

    async fn inbox_expect(&mut self, e: &super::model::InboxExpect, sms: bool) -> StepResult {
        let to = self.recipient(&e.to, sms)?;
        let regex =
            regex::Regex::new(&self.render(&e.text)?).map_err(|err| format!("text is not a valid regex: {err}"))?;
        let deadline = Instant::now() + self.real_time(e.within.as_deref(), "10s")?;
        let field = if sms { "text" } else { "body" };
        let matches = |m: &&Value| {
            m[field].as_str().is_some_and(|t| regex.is_match(t))
                && e.from.as_deref().is_none_or(|f| m["from"].as_str() == Some(f))
        };
        loop {
            let messages = self.inbox(&to, sms).await?;
            let matching: Vec<&Value> = messages.iter().filter(matches).collect();
            let enough = match e.count {
                Some(n) => matching.len() == n,
                None => !matching.is_empty(),
            };
            if enough {
                if let Some(n) = e.count {
                    // Exactly n: a duplicate arriving a moment later must fail too.
                    tokio::time::sleep(self.real_time(e.settle.as_deref(), "2s")?).await;
                    let later = self.inbox(&to, sms).await?;
                    let later: Vec<&Value> = later.iter().filter(matches).collect();
                    if later.len() > n {
                        let texts: Vec<&str> = later.iter().filter_map(|m| m[field].as_str()).collect();
                        return Err(format!(
                            "expected exactly {n} {} to {to} matching /{}/; {} by the end of the {} settle window: {}",
                            if sms { "SMS" } else { "e-mail" },
                            regex.as_str(),
                            later.len(),
                            e.settle.as_deref().unwrap_or("2s"),
                            texts.join(" | ")
                        ));
                    }
                }
                if let Some(text) = matching.last().and_then(|m| m[field].as_str())
                    && let Some(caps) = regex.captures(text)
                {
                    for name in regex.capture_names().flatten() {
                        if let Some(v) = caps.name(name) {
                            self.vars.insert(name.to_owned(), v.as_str().to_owned());
                        }
                    }
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let texts: Vec<&str> = messages.iter().filter_map(|m| m[field].as_str()).collect();
                return Err(format!(
                    "expected {} {} to {} ({to}) matching /{}/ within {}; got {} matching of {}",
                    e.count.map(|n| n.to_string()).unwrap_or_else(|| "a".into()),
                    if sms { "SMS" } else { "e-mail" },
                    e.to,
                    regex.as_str(),
                    self.render(e.within.as_deref().unwrap_or("10s"))?,
                    matching.len(),
                    if texts.is_empty() { "none".to_owned() } else { texts.join(" | ") }
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
