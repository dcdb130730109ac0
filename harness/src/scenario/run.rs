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

use super::model::{CitizenSpec, Expect, Scenario, Step};
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
    Ok(RunReport { seed: opts.seed, scenarios: done.into_iter().map(|(_, r)| r).collect() })
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

/// Runs scenarios one at a time against one shared ecosystem whose SAR is the
/// vendor's system at `sar_url` (`ecosim run --sut sar=URL`). The national systems
/// listen on `config`'s ports, which the vendor's SAR points at; each scenario gets
/// citizens no earlier scenario used; fault rules are cleared between scenarios.
pub async fn run_files_against_sut(files: &[PathBuf], config: Config, sar_url: &str) -> anyhow::Result<RunReport> {
    let loaded = load_all(files)?;
    let seed = config.seed;
    let mut config = config;
    config.urls.sar = Some(sar_url.trim_end_matches('/').to_owned());
    let eco = Ecosystem::start_without(config, &[System::Sar]).await?;
    let mut taken = std::collections::HashSet::new();
    let mut scenarios = Vec::new();
    for (file, scenario) in &loaded {
        scenarios.push(run_on_shared(&eco, scenario, file, seed, &mut taken).await);
        eco.context().faults().clear(None);
    }
    eco.shutdown().await;
    Ok(RunReport { seed, scenarios })
}

/// Runs one scenario in a fresh ecosystem.
pub async fn run_scenario(scenario: &Scenario, file: &Path, seed: u64) -> ScenarioReport {
    let eco = match Ecosystem::start(Config::for_tests(seed)).await {
        Ok(e) => e,
        Err(e) => {
            let mut report = new_report(scenario, file);
            report.outcome = Outcome::Failed;
            report.steps.push(StepReport {
                name: "start".into(),
                outcome: Outcome::Failed,
                message: Some(format!("{e:#}")),
                duration_ms: 0.0,
            });
            return report;
        }
    };
    let report = run_on_shared(&eco, scenario, file, seed, &mut std::collections::HashSet::new()).await;
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
) -> ScenarioReport {
    let started = Instant::now();
    let first_seq = eco.context().journal().last_seq();
    let mut report = new_report(scenario, file);
    let mut runner = Runner::new(eco, seed);
    let setup = runner.pick_citizens(&scenario.given.citizens, taken);
    if let Err(message) = setup {
        report.outcome = Outcome::Failed;
        report.steps.push(StepReport {
            name: "given".into(),
            outcome: Outcome::Failed,
            message: Some(message),
            duration_ms: 0.0,
        });
    }
    for step in &scenario.steps {
        let name = actions_of(step).first().copied().unwrap_or("?").to_owned();
        if report.outcome == Outcome::Failed {
            report.steps.push(StepReport { name, outcome: Outcome::Skipped, message: None, duration_ms: 0.0 });
            continue;
        }
        let t0 = Instant::now();
        let result = runner.step(step).await;
        let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => report.steps.push(StepReport { name, outcome: Outcome::Passed, message: None, duration_ms }),
            Err(message) => {
                report.outcome = Outcome::Failed;
                let message = format!("{message}\nlast exchanges:\n{}", runner.last_exchanges(3));
                report.steps.push(StepReport { name, outcome: Outcome::Failed, message: Some(message), duration_ms });
            }
        }
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
            request_body: e.request_body.text(),
            response_body: e.response_body.text(),
        })
        .collect();
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
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
    first_seq: u64,
    http: reqwest::Client,
    app: VirtualApp,
    vars: HashMap<String, String>,
    people: HashMap<String, Citizen>,
}

type StepResult = Result<(), String>;

impl<'e> Runner<'e> {
    fn new(eco: &'e Ecosystem, seed: u64) -> Self {
        Self {
            eco,
            first_seq: eco.context().journal().last_seq(),
            http: reqwest::Client::new(),
            app: VirtualApp::new(&eco.url(System::Immuni), seed),
            vars: HashMap::new(),
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
            let age_band = match &spec.age {
                None => None,
                Some(band) => Some(
                    parse_age_band(band)
                        .ok_or_else(|| format!("{name}: age {band:?} is not a band like 18-64, 65- or -11"))?,
                ),
            };
            let found = ctx.population().iter().find(|c| {
                !taken.contains(c.codice_fiscale())
                    && spec.region.as_deref().is_none_or(|r| c.region().code == r)
                    && spec.minor.is_none_or(|m| c.is_minor_on(today) == m)
                    && spec.mobile.is_none_or(|m| c.mobile().is_some() == m)
                    && spec.email.is_none_or(|m| c.email().is_some() == m)
                    && age_band.is_none_or(|(lo, hi)| (lo..=hi).contains(&c.age_on(today)))
            });
            let Some(c) = found else { return Err(format!("no citizen in the registry matches {name}: {spec:?}")) };
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
            let value = self
                .vars
                .get(name)
                .ok_or_else(|| format!("variable {name} is not set (capture it in an earlier step)"))?;
            if hash {
                out.push_str(&ecosim_core::codes::sha256_hex(value));
            } else {
                out.push_str(value);
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn last_exchanges(&self, n: usize) -> String {
        let page = self.eco.context().journal().since(0);
        let skip = page.exchanges.len().saturating_sub(n);
        page.exchanges[skip..]
            .iter()
            .map(|e| {
                format!(
                    "  {} -> {} {} {} {}: {}",
                    e.from,
                    e.to,
                    e.method,
                    e.path,
                    e.status,
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
        let mut req = self.http.request(method, format!("{}{path}", self.eco.url(system)));
        if let Some(a) = account {
            req = req.basic_auth(a, Some(format!("{a}-secret")));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| format!("{system} did not answer: {e}"))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn check(expect: Option<&Expect>, default_status: u16, status: u16, body: &Value) -> StepResult {
        let want = expect.and_then(|e| e.status).unwrap_or(default_status);
        if status != want {
            return Err(format!("expected status {want}, got {status}: {body}"));
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
            let account = r.account.clone().unwrap_or_else(|| format!("lab-{}", c.region().code));
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
                    Some(&g.account),
                    None,
                )
                .await?;
            return Self::check(expect, 200, status, &v);
        }
        if let Some(c) = &step.ts_correct {
            let cun = self.render(&c.cun)?;
            let path = format!("/ts/v1/test-results/{cun}");
            let (status, v) = self
                .send(System::SistemaTs, reqwest::Method::PATCH, &path, Some(&c.account), Some(c.changes.clone()))
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
            let from = self.render(&j.from)?;
            // An exchange is journalled when its answer is sent, which can be a moment
            // after its effects are visible elsewhere: look again for a while.
            let within = parse_duration(j.within.as_deref().unwrap_or("5s")).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::try_from(within).unwrap_or(Duration::from_secs(5));
            loop {
                let page = self.eco.context().journal().since(self.first_seq);
                let matching = page
                    .exchanges
                    .iter()
                    .filter(|e| e.from == from || (from == "sar" && e.from.starts_with("sar-")))
                    .filter(|e| e.to == j.to)
                    .filter(|e| j.method.as_deref().is_none_or(|m| e.method.eq_ignore_ascii_case(m)))
                    .filter(|e| j.path.as_deref().is_none_or(|p| e.path.contains(p)))
                    .filter(|e| j.status.is_none_or(|s| e.status == s))
                    .count();
                let ok = match j.count {
                    Some(n) => matching == n,
                    None => matching > 0,
                };
                if ok {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "expected {} exchange(s) {from} -> {} {} {} {}, found {matching}",
                        j.count.map(|n| n.to_string()).unwrap_or_else(|| "some".into()),
                        j.to,
                        j.method.as_deref().unwrap_or("*"),
                        j.path.as_deref().unwrap_or("*"),
                        j.status.map(|s| s.to_string()).unwrap_or_else(|| "*".into())
                    ));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
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
            let a = self.app.get_dgc(&g.token_type, &hash, &c.card().last8(), expiry, false).await;
            return Self::check(expect, 200, a.status, &a.body);
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
        let account = v.account.clone().unwrap_or_else(|| format!("vaccinatore-{}", c.region().code));
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
        let within = parse_duration(e.within.as_deref().unwrap_or("10s")).map_err(|err| err.to_string())?;
        let deadline = Instant::now() + Duration::try_from(within).unwrap_or(Duration::from_secs(10));
        let path = if sms { format!("/sms/v1/inbox/{to}") } else { format!("/mail/v1/inbox/{to}") };
        let field = if sms { "text" } else { "body" };
        loop {
            let (_, inbox) = self.send(System::SmsGateway, reqwest::Method::GET, &path, None, None).await?;
            let messages = inbox["messages"].as_array().cloned().unwrap_or_default();
            let matching: Vec<&Value> = messages
                .iter()
                .filter(|m| m[field].as_str().is_some_and(|t| regex.is_match(t)))
                .filter(|m| e.from.as_deref().is_none_or(|f| m["from"].as_str() == Some(f)))
                .collect();
            let enough = match e.count {
                Some(n) => matching.len() == n,
                None => !matching.is_empty(),
            };
            if enough {
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
                    "expected {} {} to {to} matching /{}/ within {}; got {} matching of {texts:?}",
                    e.count.map(|n| n.to_string()).unwrap_or_else(|| "a".into()),
                    if sms { "SMS" } else { "e-mail" },
                    regex.as_str(),
                    e.within.as_deref().unwrap_or("10s"),
                    matching.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
