//! The runner's machinery shared by every action: the scenario's variables and
//! citizens, calls to the systems (or to the system under test), checking answers,
//! polling, and the typed [`StepError`].

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use ecosim_core::System;
use ecosim_core::duration::parse_duration;
use ecosim_domain::population::Citizen;
use serde_json::Value;

use super::model::{CitizenSpec, Expect};
use super::run::{DEFAULT_REGION, DELIVERY_MARGIN_SECS, Suts};
use crate::app::VirtualApp;
use crate::ecosystem::EcoHandle;

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The scenario is wrong: an unset variable, an unknown citizen or account, a
    /// regex or duration that does not parse.
    #[error("{0}")]
    Scenario(String),
    /// A system did not answer.
    #[error("{0}")]
    NoAnswer(String),
    /// What happened is not what the step expects.
    #[error("{0}")]
    Unexpected(String),
}

/// What a step returns.
pub(super) type StepResult = Result<(), StepError>;

/// What one look of a polling step found.
pub(super) enum Look<T> {
    /// What was awaited is there.
    Done(T),
    /// Not yet: the step's error if time runs out.
    NotYet(StepError),
}

/// Looks every `every` until a look is [`Look::Done`] or `within` has passed (then the
/// last look's error is the step's). Looks at least once; an `Err` ends at once.
pub(super) async fn poll_until<T, F, Fut>(within: Duration, every: Duration, mut look: F) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T>, StepError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match look().await? {
            Look::Done(value) => return Ok(value),
            Look::NotYet(e) if Instant::now() >= deadline => return Err(e),
            Look::NotYet(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Looks every `every` for the whole `window`: the first failed look is the step's
/// error (something that must not happen, happened).
pub(super) async fn watch<F, Fut>(window: Duration, every: Duration, mut look: F) -> StepResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StepResult>,
{
    let deadline = Instant::now() + window;
    loop {
        look().await?;
        if Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(every).await;
    }
}

/// `"18-64"`, `"65-"`, `"-11"` as an inclusive range of years.
fn parse_age_band(band: &str) -> Option<(i16, i16)> {
    let (lo, hi) = band.split_once('-')?;
    let lo = if lo.trim().is_empty() { 0 } else { lo.trim().parse().ok()? };
    let hi = if hi.trim().is_empty() { i16::MAX } else { hi.trim().parse().ok()? };
    (lo <= hi).then_some((lo, hi))
}

/// One scenario's run: the ecosystem, the systems under test, variables and citizens.
pub(super) struct Runner<'e> {
    pub(super) eco: &'e EcoHandle,
    pub(super) suts: Suts,
    pub(super) first_seq: u64,
    http: reqwest::Client,
    /// The citizen's app (locked while it makes a call: it draws from its own generator).
    pub(super) app: tokio::sync::Mutex<VirtualApp>,
    pub(super) vars: HashMap<String, String>,
    people: HashMap<String, Citizen>,
}

impl<'e> Runner<'e> {
    pub(super) fn new(eco: &'e EcoHandle, seed: u64, suts: Suts) -> Self {
        let bound = suts.send_bound_secs();
        let region = suts.region.clone().unwrap_or_else(|| DEFAULT_REGION.to_owned());
        Self {
            eco,
            suts,
            first_seq: eco.context().journal().last_seq(),
            http: reqwest::Client::builder()
                .pool_idle_timeout(ecosim_core::client::POOL_IDLE)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            app: tokio::sync::Mutex::new(VirtualApp::new(&eco.url(System::Immuni), seed)),
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

    pub(super) fn pick_citizens(
        &mut self,
        specs: &std::collections::BTreeMap<String, CitizenSpec>,
        taken: &mut std::collections::HashSet<ecosim_domain::codes::CodiceFiscale>,
    ) -> Result<(), StepError> {
        let ctx = self.eco.context();
        let today = ctx.clock().today();
        for (name, spec) in specs {
            let region = spec.region.as_deref().map(|r| self.render(r)).transpose()?;
            let age_band = match &spec.age {
                None => None,
                Some(band) => Some(parse_age_band(band).ok_or_else(|| {
                    StepError::Scenario(format!("{name}: age {band:?} is not a band like 18-64, 65- or -11"))
                })?),
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
                return Err(StepError::Scenario(format!(
                    "no citizen left in the registry ({} people, {} already taken) for {name} ({})",
                    ctx.population().len(),
                    taken.len(),
                    wanted.join(", ")
                )));
            };
            taken.insert(*c.codice_fiscale());
            self.vars.insert(format!("{name}.cf"), c.codice_fiscale().to_string());
            self.vars.insert(format!("{name}.region"), c.region().code.to_owned());
            self.vars.insert(format!("{name}.card8"), c.card().number.last8().as_str().to_owned());
            self.vars.insert(format!("{name}.card_expiry"), c.card().expiry.to_string());
            self.vars.insert(format!("{name}.nome"), c.name().to_owned());
            self.people.insert(name.clone(), c.clone());
        }
        Ok(())
    }

    /// The citizen called `name` in `given.citizens`.
    pub(super) fn citizen(&self, name: &str) -> Result<&Citizen, StepError> {
        self.people.get(name).ok_or_else(|| StepError::Scenario(format!("no citizen {name:?} in given.citizens")))
    }

    /// `text` with `{{variables}}` filled in.
    pub(super) fn render(&self, text: &str) -> Result<String, StepError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| StepError::Scenario(format!("unclosed {{{{ in {text:?}")))?;
            let name = after[..end].trim();
            let (hash, name) = match name.strip_prefix("sha256:") {
                Some(inner) => (true, inner.trim()),
                None => (false, name),
            };
            let value = match self.vars.get(name) {
                Some(v) => v.clone(),
                None => self.relative_date(name).ok_or_else(|| {
                    StepError::Scenario(format!("variable {name} is not set (capture it in an earlier step)"))
                })??,
            };
            if hash {
                out.push_str(&ecosim_domain::codes::sha256_hex(&value));
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
    fn relative_date(&self, name: &str) -> Option<Result<String, StepError>> {
        let rest = name.strip_prefix("today")?;
        let (sign, n) = match rest.split_at_checked(1)? {
            ("-", n) => (-1, n),
            ("+", n) => (1, n),
            _ => return None,
        };
        let days: i64 = match n.trim().parse() {
            Ok(d) => d,
            Err(_) => {
                return Some(Err(StepError::Scenario(format!("{{{{{name}}}}}: write today-N or today+N with N days"))));
            }
        };
        let today = self.eco.context().clock().today();
        Some(
            today
                .checked_add(jiff::Span::new().days(sign * days))
                .map(|d| d.to_string())
                .map_err(|e| StepError::Scenario(format!("{name}: {e}"))),
        )
    }

    /// A duration of the scenario (`10s`, `{{delivery_bound}}`), as real time.
    pub(super) fn real_time(&self, text: Option<&str>, default: &str) -> Result<Duration, StepError> {
        let text = self.render(text.unwrap_or(default))?;
        let d = parse_duration(&text).map_err(|e| StepError::Scenario(e.to_string()))?;
        Duration::try_from(d).map_err(|_| StepError::Scenario(format!("{text}: a real-time wait cannot be negative")))
    }

    /// A regex of the scenario, rendered (`what` names it in errors).
    pub(super) fn regex(&self, text: &str, what: &str) -> Result<regex::Regex, StepError> {
        regex::Regex::new(&self.render(text)?)
            .map_err(|err| StepError::Scenario(format!("{what} is not a valid regex: {err}")))
    }

    /// The citizens' names a text mentions (by codice fiscale, mobile, parent's mobile
    /// or e-mail), as `teo`, `teo.parent`.
    pub(super) fn who_is_in(&self, text: &str) -> Vec<String> {
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
    pub(super) fn last_exchanges(&self, n: usize) -> String {
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

    pub(super) async fn send(
        &self,
        system: System,
        method: reqwest::Method,
        path: &str,
        account: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), StepError> {
        let sut = if system == System::Sar { self.suts.url_for(path).map(str::to_owned) } else { None };
        let base = sut.clone().unwrap_or_else(|| self.eco.url(system));
        let mut req = self.http.request(method.clone(), format!("{base}{path}"));
        if let Some(a) = account {
            req = req.basic_auth(a, Some(self.password_of(a)?));
        }
        if path.starts_with("/_admin")
            && let Some(token) = &self.eco.context().config().admin.token
        {
            req = req.bearer_auth(token);
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
            Err(e) if sut.is_none() => return Err(StepError::NoAnswer(format!("{system} did not answer: {e}"))),
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
                note: None,
            });
            if status == 0 {
                return Err(StepError::NoAnswer(text));
            }
        }
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// The password of `account` in this ecosystem's configuration.
    fn password_of(&self, account: &str) -> Result<String, StepError> {
        self.eco.context().accounts().get(account).map(|a| a.password.clone()).ok_or_else(|| {
            StepError::Scenario(format!("no account {account:?} in the configuration ([accounts] or the defaults)"))
        })
    }

    /// Whether an answer is what `expect` asks (or `default_status` without one).
    pub(super) fn check(expect: Option<&Expect>, default_status: u16, status: u16, body: &Value) -> StepResult {
        let any = expect.map(|e| e.status_any.as_slice()).unwrap_or_default();
        if !any.is_empty() {
            if !any.contains(&status) {
                return Err(StepError::Unexpected(format!("expected a status among {any:?}, got {status}: {body}")));
            }
        } else {
            let want = expect.and_then(|e| e.status).unwrap_or(default_status);
            if status != want {
                return Err(StepError::Unexpected(format!("expected status {want}, got {status}: {body}")));
            }
        }
        if let Some(e) = expect {
            if let Some(code) = e.error_code
                && body["error_code"].as_u64() != Some(code)
            {
                return Err(StepError::Unexpected(format!("expected error_code {code}, got {}", body["error_code"])));
            }
            if let Some(r) = &e.requirement
                && body["requirement"].as_str() != Some(r)
            {
                return Err(StepError::Unexpected(format!("expected requirement {r}, got {}", body["requirement"])));
            }
            if let Some(f) = &e.field
                && body["errors"][0]["field"].as_str() != Some(f)
            {
                return Err(StepError::Unexpected(format!("expected field {f}, got {}", body["errors"][0]["field"])));
            }
            for (pointer, want) in &e.json {
                let got = body.pointer(pointer).unwrap_or(&Value::Null);
                if got != want {
                    return Err(StepError::Unexpected(format!("expected {pointer} = {want}, got {got}: {body}")));
                }
            }
        }
        Ok(())
    }

    /// `expect` with `{{variables}}` in its JSON values filled in.
    pub(super) fn rendered(&self, expect: Option<&Expect>) -> Result<Option<Expect>, StepError> {
        let Some(e) = expect else { return Ok(None) };
        let mut e = e.clone();
        for value in e.json.values_mut() {
            *value = serde_json::from_str(&self.render(&value.to_string())?)
                .map_err(|err| StepError::Scenario(format!("expect.json: {err}")))?;
        }
        Ok(Some(e))
    }

    /// The number (`sms`) or address a step's `to` names: a citizen, `<name>.parent`,
    /// or itself.
    pub(super) fn recipient(&self, to: &str, sms: bool) -> Result<String, StepError> {
        let to = self.render(to)?;
        if let Some(name) = to.strip_suffix(".parent") {
            return self
                .citizen(name)?
                .parent_mobile()
                .map(|m| m.to_string())
                .ok_or_else(|| StepError::Scenario(format!("{name} has no parent mobile")));
        }
        if let Some(c) = self.people.get(&to) {
            let found = if sms {
                c.mobile().or(c.parent_mobile()).map(|m| m.to_string())
            } else {
                c.email().map(|e| e.to_string())
            };
            return found
                .ok_or_else(|| StepError::Scenario(format!("{to} has no {}", if sms { "mobile" } else { "e-mail" })));
        }
        Ok(to)
    }
}
