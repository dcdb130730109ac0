//! `ecosim load`: an open-loop load generator for Flow 1 (lab -> SAR -> Sistema TS
//! -> CUN SMS), against the reference SAR or a vendor's.
//!
//! Open loop: result *n* is due at `n / rate` seconds from the start whatever
//! happened to the ones before, and its latency is counted from that due time, not
//! from when it could be sent, so a slow system cannot hide its queue (no
//! coordinated omission). Latencies go into an HdrHistogram. At the end the run
//! waits for the flow to drain and checks that every acknowledged result became
//! exactly one record at Sistema TS and one CUN SMS (lost and duplicated are
//! counted, not assumed), and reports the delay from report to SMS on a sample of
//! results sent to citizens who get nothing else during the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ecosim_core::System;
use ecosim_core::client::{Http, Method};
use ecosim_core::config::Config;
use ecosim_domain::messages::DGC_SMS_SENDER;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ecosystem::Ecosystem;
use crate::loadgen::latency_histogram;

/// How long the load generator waits for an answer (a system under load may be
/// slow; only no answer at all is a transport error).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Results per second (the arrival rate).
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Percent of negative results.
    pub negatives: u8,
    /// Percent of results for minors (their CUN SMS goes to a parent, ORD-6.1a).
    pub minors: u8,
    /// A vendor's SAR (its base URL); `None` drives the reference SAR.
    pub sut: Option<String>,
    /// With `sut`: the first port of the national simulators (as `ecosim up`).
    pub base_port: u16,
    /// Seed of the ecosystem (population, codes).
    pub seed: u64,
    /// After the last answer, how long the flow may make no progress (no new
    /// record, no new SMS) before the run stops waiting for it to drain.
    pub drain: Duration,
    /// Results in flight at most; a result due when this many wait is not sent
    /// and counted (`not_sent`): the generator never queues silently.
    pub max_in_flight: usize,
    /// Connections to the SAR at most (a lab fleet's, under the systems' cap of
    /// 1,024 a listener); results beyond wait for one, the wait in their latency.
    pub connections: usize,
    /// Results whose delay to the SMS is measured.
    pub samples: usize,
    /// Print progress on stderr once a second.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            rate: 500.0,
            duration: Duration::from_secs(60),
            negatives: 70,
            minors: 10,
            sut: None,
            base_port: 8080,
            seed: 42,
            drain: Duration::from_secs(60),
            max_in_flight: 20_000,
            connections: 256,
            samples: 200,
            progress: true,
        }
    }
}

impl LoadOptions {
    /// `peak-day`: the Italian record day (about 1.2 million results, January 2022)
    /// compressed into two minutes: 10,000 results a second for 120 s, 85% negative,
    /// 10% minors.
    pub fn peak_day() -> Self {
        Self { rate: 10_000.0, duration: Duration::from_secs(120), negatives: 85, minors: 10, ..Self::default() }
    }

    /// Results the run sends.
    pub fn total(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }
}

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// How many were measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Worst.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// What a load run measured (also its JSON summary).
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// The SAR driven.
    pub sar: String,
    /// Asked rate, results per second.
    pub rate: f64,
    /// Results due in the run.
    pub due: u64,
    /// Results sent.
    pub sent: u64,
    /// Answered 2xx by the SAR.
    pub acknowledged: u64,
    /// Answered otherwise, by status.
    pub refused: std::collections::BTreeMap<u16, u64>,
    /// No answer (connection refused or reset, timeout).
    pub transport_errors: u64,
    /// Due but not sent: `max_in_flight` results were waiting.
    pub not_sent: u64,
    /// Seconds from the first result due to the last answer.
    pub send_seconds: f64,
    /// Acknowledged results per second over `send_seconds`.
    pub acknowledged_per_second: f64,
    /// From each result's due time to its answer (open loop).
    pub latency_ms: Percentiles,
    /// New records at Sistema TS during the run.
    pub ts_records: u64,
    /// New CUN SMS at the gateway during the run (every SMS but the green pass's).
    pub cun_sms: u64,
    /// Acknowledged results with no record or no SMS when the drain ended (the flow
    /// had stopped moving for the drain limit).
    pub lost: u64,
    /// Records or SMS beyond one per acknowledged result.
    pub duplicated: u64,
    /// Seconds from the last answer until every SMS was there (or the drain limit).
    pub drain_seconds: f64,
    /// Seconds from the first result due until the last SMS.
    pub end_to_end_seconds: f64,
    /// From a sampled result's due time to its SMS in the citizen's inbox.
    pub report_to_sms_ms: Percentiles,
    /// The first refusal or error seen, for a start.
    pub first_error: Option<String>,
}

impl LoadSummary {
    /// Whether the run lost or duplicated nothing and every result was acknowledged.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.not_sent == 0
            && self.transport_errors == 0
            && self.refused.is_empty()
            && self.acknowledged == self.due
    }

    /// Prints the report.
    pub fn print(&self) {
        let l = &self.latency_ms;
        println!("ecosim load: lab results to {} at {:.0}/s", self.sar, self.rate);
        println!(
            "  sent {} of {} due ({} not sent: too many in flight); acknowledged {}, refused {}, transport errors {}",
            self.sent,
            self.due,
            self.not_sent,
            self.acknowledged,
            self.refused.values().sum::<u64>(),
            self.transport_errors
        );
        for (status, n) in &self.refused {
            println!("    status {status}: {n}");
        }
        println!("  {:.1} s to send and answer: {:.0} acknowledged/s", self.send_seconds, self.acknowledged_per_second);
        println!(
            "  latency from due time (ms): p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        println!(
            "  Sistema TS records {}, CUN SMS {}: lost {}, duplicated {} (drained in {:.1} s; first report to last SMS {:.1} s)",
            self.ts_records, self.cun_sms, self.lost, self.duplicated, self.drain_seconds, self.end_to_end_seconds
        );
        let s = &self.report_to_sms_ms;
        println!(
            "  report to SMS, {} sampled results (ms): p50 {:.0}, p90 {:.0}, p99 {:.0}, max {:.0}",
            s.count, s.p50, s.p90, s.p99, s.max
        );
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
        println!("  verdict: {}", if self.clean() { "clean" } else { "NOT clean" });
    }
}

/// One result to send: the body and the credentials of the lab that sends it.
#[derive(Debug, Clone)]
struct Report {
    body: Value,
    /// The lab's `Authorization` value (HTTP Basic), made once.
    authorization: String,
    /// For sampled results: the inbox to watch.
    watch: Option<String>,
}

/// The population split the run draws from: adults with a mobile, minors with a
/// parent's mobile, and adults kept for the samples (used once each).
struct Pool {
    adults: Vec<Report>,
    minors: Vec<Report>,
    sampled: Vec<Report>,
}

fn pool(eco: &Ecosystem, samples: usize) -> anyhow::Result<Pool> {
    let ctx = eco.context();
    let today = ctx.clock().today();
    let day = today.to_string();
    let (mut adults, mut minors) = (Vec::new(), Vec::new());
    for c in ctx.population().iter() {
        let authorization = crate::bench::basic(&format!("lab-{}", c.region().code));
        let body = |contatti: Value| {
            json!({"codice_fiscale": c.codice_fiscale().to_string(), "tipo_test": "MOLECOLARE",
                "data_esecuzione": day, "struttura": "LOAD-LAB", "contatti": contatti})
        };
        if c.is_minor_on(today) {
            if let Some(parent) = c.parent_mobile() {
                minors.push(Report {
                    body: body(json!({"cellulare_genitore": parent.to_string()})),
                    authorization,
                    watch: None,
                });
            }
        } else if let Some(m) = c.mobile() {
            adults.push(Report {
                body: body(json!({"cellulare": m.to_string()})),
                authorization,
                watch: Some(m.to_string()),
            });
        }
    }
    // Samples: adults whose number nobody else in the pools has.
    let mut numbers = std::collections::HashMap::<String, usize>::new();
    for r in adults.iter().chain(&minors) {
        let n = r.body["contatti"].as_object().and_then(|c| c.values().next()).and_then(Value::as_str);
        *numbers.entry(n.unwrap_or_default().to_owned()).or_default() += 1;
    }
    let mut sampled = Vec::new();
    let mut i = 0;
    while sampled.len() < samples && i < adults.len() {
        if adults[i].watch.as_ref().is_some_and(|m| numbers.get(m) == Some(&1)) {
            sampled.push(adults.swap_remove(i));
        } else {
            i += 1;
        }
    }
    for r in &mut adults {
        r.watch = None;
    }
    anyhow::ensure!(!adults.is_empty(), "no adult with a mobile number in the population");
    Ok(Pool { adults, minors, sampled })
}

/// The counts the check compares: Sistema TS's records and the gateway's CUN SMS.
async fn counts(http: &Http, ts: &str, gateway: &str) -> anyhow::Result<(u64, u64)> {
    let ts_state: Value = http.request(Method::GET, format!("{ts}/_admin/state")).send().await?.json().await?;
    let gw_state: Value = http.request(Method::GET, format!("{gateway}/_admin/state")).send().await?.json().await?;
    let records = ts_state["simulator"]["test_results"].as_u64().unwrap_or(0);
    let by_sender = gw_state["simulator"]["per_mittente"].as_object().cloned().unwrap_or_default();
    let sms = by_sender.iter().filter(|(k, _)| k.as_str() != DGC_SMS_SENDER).filter_map(|(_, v)| v.as_u64()).sum();
    Ok((records, sms))
}

struct Tally {
    acknowledged: AtomicU64,
    transport_errors: AtomicU64,
    in_flight: AtomicU64,
    refused: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    latency: std::sync::Mutex<Histogram<u64>>,
    first_error: std::sync::Mutex<Option<String>>,
    /// Sampled results acknowledged and waiting for their SMS: (inbox, due time).
    watched: std::sync::Mutex<Vec<(String, Instant)>>,
    /// Their delays, from due time to the SMS in the inbox.
    report_to_sms: std::sync::Mutex<Histogram<u64>>,
}

/// Watches the sampled results' inboxes (every 20 ms) during the run and the
/// drain: the first SMS in one ends that result's delay.
async fn watch_samples(http: Http, gateway: String, tally: Arc<Tally>) {
    loop {
        let pending: Vec<(String, Instant)> =
            std::mem::take(&mut *tally.watched.lock().unwrap_or_else(|p| p.into_inner()));
        let mut still = Vec::new();
        for (inbox, due) in pending {
            let got = match http.request(Method::GET, format!("{gateway}/sms/v1/inbox/{inbox}")).send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if got["messages"].as_array().is_some_and(|m| !m.is_empty()) {
                let delay = due.elapsed().as_micros() as u64;
                tally.report_to_sms.lock().unwrap_or_else(|p| p.into_inner()).saturating_record(delay);
            } else {
                still.push((inbox, due));
            }
        }
        tally.watched.lock().unwrap_or_else(|p| p.into_inner()).extend(still);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the national simulators (and the reference SAR unless `options.sut`
/// names a vendor's), runs the load and checks the outcome.
pub async fn run(options: &LoadOptions) -> anyhow::Result<LoadSummary> {
    let eco = match &options.sut {
        Some(_) => {
            Ecosystem::start_without(crate::cli::sut_config(options.seed, options.base_port), &[System::Sar]).await?
        }
        None => {
            let mut config = Config {
                population: 20_000,
                journal: ecosim_core::config::JournalConfig { cap: 10_000, ..Default::default() },
                ..Config::for_tests(options.seed)
            };
            // Up to 256 deliveries at once per outbox; the SAR's run a quarter of
            // that while lab results arrive (`Outbox::intake`), so its intake keeps
            // the pace and the queue drains at full width after it.
            config.retry.concurrency = 256;
            config.thread_per_system = true;
            Ecosystem::start(config).await?
        }
    };
    let sar = options.sut.clone().unwrap_or_else(|| eco.url(System::Sar));
    let summary = drive(&eco, &sar, options).await;
    eco.shutdown().await;
    summary
}

/// Drives the load through the SAR at `sar` (connected to `eco`'s national
/// simulators) and checks the outcome; `eco` is left running.
pub async fn drive(eco: &Ecosystem, sar: &str, options: &LoadOptions) -> anyhow::Result<LoadSummary> {
    anyhow::ensure!(options.rate > 0.0 && options.rate.is_finite(), "the rate must be above 0");
    anyhow::ensure!(options.negatives <= 100 && options.minors <= 100, "percentages go from 0 to 100");
    let esiti = format!("{}/sar/v1/esiti", sar.trim_end_matches('/'));
    let (ts, gateway) = (eco.url(System::SistemaTs), eco.url(System::SmsGateway));
    let pool = Arc::new(pool(eco, options.samples)?);
    let connections = Arc::new(tokio::sync::Semaphore::new(options.connections.max(1)));
    // The thin client the systems use (pooled, keep-alive, no redirects followed):
    // at 10,000 results a second the load generator shares the machine it measures.
    let http = ecosim_core::client::http_client();
    let (records_before, sms_before) = counts(&http, &ts, &gateway).await?;
    let total = options.total();
    let sample_every = if pool.sampled.is_empty() { u64::MAX } else { (total / pool.sampled.len() as u64).max(1) };
    let tally = Arc::new(Tally {
        acknowledged: AtomicU64::new(0),
        transport_errors: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        refused: Default::default(),
        latency: std::sync::Mutex::new(latency_histogram()),
        first_error: Default::default(),
        watched: Default::default(),
        report_to_sms: std::sync::Mutex::new(latency_histogram()),
    });
    let watcher = tokio::spawn(watch_samples(http.clone(), gateway.clone(), tally.clone()));
    let started = Instant::now();
    let mut next_progress = started + Duration::from_secs(1);
    let (mut sent, mut not_sent) = (0u64, 0u64);
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while n < total {
        let now = Instant::now();
        let due_now = ((now - started).as_secs_f64() * options.rate).floor() as u64 + 1;
        while n < total.min(due_now) {
            let due = started + Duration::from_secs_f64(n as f64 / options.rate);
            if tally.in_flight.load(Ordering::Relaxed) >= options.max_in_flight as u64 {
                not_sent += 1;
                n += 1;
                continue;
            }
            let report = pick(&pool, options, n, sample_every);
            let request = http
                .request(Method::POST, esiti.as_str())
                .header("authorization", report.authorization.as_str())
                .json(&report.body)
                .timeout(SEND_TIMEOUT);
            let tally = tally.clone();
            let connections = connections.clone();
            tally.in_flight.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                // Waiting for a connection counts in the latency (from the due time).
                let _connection = connections.acquire_owned().await;
                // The answer is read whole (its connection then goes back to the pool).
                let answer = request.send().await;
                let latency = due.elapsed().as_micros() as u64;
                let res = match answer {
                    Ok(r) => {
                        let status = r.status();
                        r.bytes().await.map(|body| (status, body))
                    }
                    Err(e) => Err(e),
                };
                match res {
                    Ok((status, _)) if status.is_success() => {
                        tally.acknowledged.fetch_add(1, Ordering::Relaxed);
                        tally.latency.lock().unwrap_or_else(|p| p.into_inner()).saturating_record(latency);
                        if let Some(inbox) = report.watch {
                            tally.watched.lock().unwrap_or_else(|p| p.into_inner()).push((inbox, due));
                        }
                    }
                    Ok((status, body)) => {
                        let status = status.as_u16();
                        *tally.refused.lock().unwrap_or_else(|p| p.into_inner()).entry(status).or_default() += 1;
                        let text = String::from_utf8_lossy(&body);
                        tally.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| {
                            format!("status {status}: {}", text.chars().take(300).collect::<String>())
                        });
                    }
                    Err(e) => {
                        tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                        tally
                            .first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| e.to_string());
                    }
                }
                tally.in_flight.fetch_sub(1, Ordering::Relaxed);
            });
            sent += 1;
            n += 1;
        }
        while tasks.try_join_next().is_some() {}
        if options.progress && Instant::now() >= next_progress {
            next_progress += Duration::from_secs(1);
            eprint!(
                "\r  {:>5.0} s  sent {sent:>9} of {total}  acknowledged {:>9}  in flight {:>6}  not sent {not_sent}   ",
                started.elapsed().as_secs_f64(),
                tally.acknowledged.load(Ordering::Relaxed),
                tally.in_flight.load(Ordering::Relaxed),
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    let send_seconds = started.elapsed().as_secs_f64();
    if options.progress {
        eprintln!();
    }
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);

    // Drain: every acknowledged result should become one record and one SMS.
    let answered = Instant::now();
    let (mut records, mut sms);
    sms = 0;
    let mut last_sms_seen = answered;
    let mut last_progress = answered;
    let mut progress = (0, 0);
    loop {
        let asked = Instant::now();
        let (r, s) = counts(&http, &ts, &gateway).await?;
        // Counting scans the tables the flow is writing: with a million rows a count
        // takes tens of milliseconds, so polling is spaced to keep it to a fifth of a
        // core (every 50 ms at least) and does not slow the drain it measures.
        let pause = (asked.elapsed() * 4).max(Duration::from_millis(50));
        let (r, s) = (r.saturating_sub(records_before), s.saturating_sub(sms_before));
        if s > sms {
            last_sms_seen = Instant::now();
        }
        if (r, s) != progress {
            (progress, last_progress) = ((r, s), Instant::now());
        }
        (records, sms) = (r, s);
        let waiting = tally.watched.lock().unwrap_or_else(|p| p.into_inner()).len();
        let done = records >= acknowledged && sms >= acknowledged && waiting == 0;
        // Given up only when nothing moved for `drain`: a slow flow is waited for.
        if done || last_progress.elapsed() >= options.drain {
            break;
        }
        if options.progress {
            eprint!("\r  draining: {records} records, {sms} SMS of {acknowledged}   ");
        }
        tokio::time::sleep(pause).await;
    }
    if options.progress {
        eprintln!();
    }
    watcher.abort();
    let report_to_sms = tally.report_to_sms.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let drain_seconds = (last_sms_seen.max(answered) - answered).as_secs_f64();
    let end_to_end_seconds = (last_sms_seen.max(answered) - started).as_secs_f64();
    // A moment more: anything sent twice shows now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (r, s) = counts(&http, &ts, &gateway).await?;
    let (records, sms) = (r.saturating_sub(records_before).max(records), s.saturating_sub(sms_before).max(sms));
    let lost = acknowledged.saturating_sub(records.min(sms));
    let duplicated = records.saturating_sub(acknowledged).max(sms.saturating_sub(acknowledged));
    let latency = tally.latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let refused = tally.refused.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let first_error = tally.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(LoadSummary {
        sar: sar.trim_end_matches('/').to_owned(),
        rate: options.rate,
        due: total,
        sent,
        acknowledged,
        refused,
        transport_errors: tally.transport_errors.load(Ordering::Relaxed),
        not_sent,
        send_seconds,
        acknowledged_per_second: acknowledged as f64 / send_seconds.max(1e-9),
        latency_ms: Percentiles::of(&latency),
        ts_records: records,
        cun_sms: sms,
        lost,
        duplicated,
        drain_seconds,
        end_to_end_seconds,
        report_to_sms_ms: Percentiles::of(&report_to_sms),
        first_error,
    })
}

/// The n-th result: a sampled adult at regular intervals, else a minor or an adult
/// by the asked mix, positive or negative by the asked share (spread evenly).
fn pick(pool: &Pool, options: &LoadOptions, n: u64, sample_every: u64) -> Report {
    let spread = |percent: u8, salt: u64| (n.wrapping_mul(37).wrapping_add(salt) % 100) < u64::from(percent);
    let sample = n % sample_every == sample_every / 2 && ((n / sample_every) as usize) < pool.sampled.len();
    let mut report = if sample {
        pool.sampled[(n / sample_every) as usize].clone()
    } else if !pool.minors.is_empty() && spread(options.minors, 11) {
        pool.minors[(n as usize) % pool.minors.len()].clone()
    } else {
        pool.adults[(n as usize) % pool.adults.len()].clone()
    };
    let negative = spread(options.negatives, 53);
    report.body["esito"] = Value::String(if negative { "NEGATIVO" } else { "POSITIVO" }.into());
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_day_is_1_2_million_results_in_two_minutes() {
        let p = LoadOptions::peak_day();
        assert_eq!(p.total(), 1_200_000);
        assert_eq!(p.duration, Duration::from_secs(120));
    }

    #[test]
    fn the_mix_follows_the_asked_shares() {
        let pool = Pool {
            adults: vec![Report { body: json!({"who": "adult"}), authorization: "Basic x".into(), watch: None }],
            minors: vec![Report { body: json!({"who": "minor"}), authorization: "Basic x".into(), watch: None }],
            sampled: Vec::new(),
        };
        let options = LoadOptions { negatives: 70, minors: 10, ..LoadOptions::default() };
        let picks: Vec<Report> = (0..1000).map(|n| pick(&pool, &options, n, u64::MAX)).collect();
        let negatives = picks.iter().filter(|r| r.body["esito"] == "NEGATIVO").count();
        let minors = picks.iter().filter(|r| r.body["who"] == "minor").count();
        assert_eq!((negatives, minors), (700, 100));
    }
}
