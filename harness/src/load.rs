//! `ecosim load`: an open-loop load generator for Flow 1 (lab -> SAR -> Sistema TS
//! -> CUN SMS), against the reference SAR or a vendor's.
//!
//! Open loop: result *n* is due at `n / rate` seconds from the start whatever
//! happened to the ones before, and its latency is counted from that due time, not
//! from when it could be sent, so a slow system cannot hide its queue (no
//! coordinated omission). Latencies go into an HdrHistogram. At the end the run
//! waits for the flow to drain and checks each acknowledged result, not totals: it
//! became exactly one record at Sistema TS (found by the facility code the run gave
//! it alone) and its CUN reached, in exactly one SMS, the number the result gave (the
//! citizen's, or a minor's parent's). Lost, duplicated and misdirected results are
//! counted, not assumed: a SAR that texts one citizen twice and another never, or
//! each CUN to the wrong phone, has the right totals and is not clean. The run also
//! reports the delay from report to SMS on a sample of results sent to citizens who
//! get nothing else during the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ecosim_core::System;
use ecosim_core::client::{Http, Method};
use ecosim_core::config::Config;
use ecosim_domain::messages::DGC_SMS_SENDER;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
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
    /// Whether it is the reference SAR, in this process.
    pub sar_in_process: bool,
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
    /// Acknowledged results with no record at Sistema TS, or whose CUN reached no
    /// phone, when the drain ended (the flow had stopped moving for the drain limit).
    pub lost: u64,
    /// Acknowledged results with more than one record, or whose CUN was texted more
    /// than once.
    pub duplicated: u64,
    /// Acknowledged results whose CUN was texted to a number other than the one the
    /// result gave (another citizen's phone).
    pub misdirected: u64,
    /// Seconds from the last answer until every SMS was there (or the drain limit).
    pub drain_seconds: f64,
    /// Seconds from the first result due until the last SMS.
    pub end_to_end_seconds: f64,
    /// From a sampled result's due time to its SMS in the citizen's inbox.
    pub report_to_sms_ms: Percentiles,
    /// How far the flow was when the last result was answered: Sistema TS's new
    /// records and the CUN SMS by then (what the SAR, or the systems after it, still
    /// owed is the rest).
    pub at_last_answer: Progress,
    /// Negative results acknowledged: each is due a test certificate at PN-DGC
    /// (flow 4, retrieved with the CUN; not part of the CUN flow the run judges).
    pub negatives_acknowledged: u64,
    /// Certificates PN-DGC issued during the run. After the CUN flow's drain and the
    /// check the run waits for them as it waited for the SMS (until every negative
    /// has one, or nothing moved for `--drain`): Sistema TS holds its events for
    /// PN-DGC while results arrive at [`ecosim_core::outbox::PEAK_PER_SECOND`] a second
    /// or more and sends them once the rate falls.
    pub test_certificates: u64,
    /// Seconds from the first result due until PN-DGC had issued every negative's
    /// certificate (`None`: not all of them before the wait gave up).
    pub certificates_seconds: Option<f64>,
    /// How long the drains waited for a flow standing still (`--drain`), seconds.
    pub drain_limit_seconds: f64,
    /// When the certificates stopped coming: PN-DGC's last refusal of an event, from
    /// the journal (`"500: storage failure: ..."`).
    pub certificates_refused: Option<String>,
    /// CPU over the run, from the first result due to the end of the drain (Linux).
    pub cpu: Option<CpuShare>,
    /// The first refusal or error seen, for a start.
    pub first_error: Option<String>,
}

/// Records and SMS at a moment of the run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    /// New records at Sistema TS.
    pub ts_records: u64,
    /// New CUN SMS at the gateway.
    pub cun_sms: u64,
}

/// Who used the machine during a run: near all of it, the figures say what the
/// machine could do, whichever system is the cause.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuShare {
    /// The machine's cores.
    pub cores: usize,
    /// Cores' worth of CPU this process used: the national simulators (and the
    /// reference SAR without `--sut`) and the load generator.
    pub ecosim_cores: f64,
    /// The whole machine's busy share, percent (a vendor's SAR on it included).
    pub machine_busy_percent: f64,
}

/// CPU time so far from `/proc` (Linux; `None` elsewhere), in clock ticks: this
/// process's user and system time, and the machine's busy and total time.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    process: u64,
    machine_busy: u64,
    machine_total: u64,
}

/// Clock ticks a second in `/proc` (`USER_HZ`, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

fn cpu_times() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_times_of(&stat, &std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`CpuTimes`] from the text of `/proc/self/stat` and of `/proc/stat`.
fn cpu_times_of(own: &str, machine: &str) -> Option<CpuTimes> {
    // After the command's `(name)`: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let process = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // `cpu  user nice system idle iowait irq softirq steal ...`
    let line = machine.lines().next().filter(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|v| v.parse().ok()).collect::<Option<_>>()?;
    let idle = ticks.get(3)? + ticks.get(4)?;
    let total: u64 = ticks.iter().sum();
    Some(CpuTimes { process, machine_busy: total.saturating_sub(idle), machine_total: total })
}

impl CpuShare {
    fn between(before: CpuTimes, after: CpuTimes, seconds: f64) -> Option<Self> {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        let total = after.machine_total.checked_sub(before.machine_total).filter(|t| *t > 0)?;
        let busy = after.machine_busy.saturating_sub(before.machine_busy);
        Some(Self {
            cores,
            ecosim_cores: after.process.saturating_sub(before.process) as f64 / TICKS_PER_SECOND / seconds.max(1e-9),
            machine_busy_percent: busy as f64 * 100.0 / total as f64,
        })
    }
}

impl LoadSummary {
    /// Whether every result was acknowledged and none was lost, duplicated or
    /// misdirected.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.misdirected == 0
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
            "  Sistema TS records {}, CUN SMS {} (drained in {:.1} s; first report to last SMS {:.1} s)",
            self.ts_records, self.cun_sms, self.drain_seconds, self.end_to_end_seconds
        );
        println!(
            "  each acknowledged result: lost {}, duplicated {}, misdirected {} (its record at Sistema TS, its CUN by SMS at its number)",
            self.lost, self.duplicated, self.misdirected
        );
        let a = &self.at_last_answer;
        println!(
            "  at the last answer: {} records at Sistema TS and {} CUN SMS of {} acknowledged",
            a.ts_records, a.cun_sms, self.acknowledged
        );
        if self.negatives_acknowledged > 0 {
            let when = match (self.certificates_seconds, &self.certificates_refused) {
                (Some(s), _) => format!("the last {s:.1} s after the first report"),
                (None, why) => format!(
                    "not all of them: none came for {} s, the rest wait in Sistema TS's outbox ({})",
                    self.drain_limit_seconds,
                    why.as_deref().map_or("PN-DGC refused none of them".to_owned(), |w| format!("PN-DGC answered {w}"))
                ),
            };
            println!(
                "  green pass (not judged): {} test certificates for {} negative results, {when} (Sistema TS holds its events for PN-DGC while results arrive at {}/s or more)",
                self.test_certificates,
                self.negatives_acknowledged,
                ecosim_core::outbox::PEAK_PER_SECOND
            );
        }
        if let Some(c) = &self.cpu {
            println!(
                "  CPU over the run: ecosim (national systems{}, this generator) {:.2} of {} cores; the machine {:.0}% busy{}",
                if self.sar_in_process { ", reference SAR" } else { "" },
                c.ecosim_cores,
                c.cores,
                c.machine_busy_percent,
                if c.machine_busy_percent >= 90.0 { " (the figures are what this machine could do)" } else { "" }
            );
        }
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
    /// The lab's region (its SAR's records at Sistema TS are the region's).
    region: String,
    /// For sampled results: the inbox to watch.
    watch: Option<String>,
}

impl Report {
    /// The number the result's CUN SMS is due at: a minor's parent's, else the
    /// citizen's (the only contact the run gives).
    fn number(&self) -> Option<&str> {
        let c = &self.body["contatti"];
        c["cellulare_genitore"].as_str().or_else(|| c["cellulare"].as_str())
    }
}

/// The facility code of the run's n-th result: the run's prefix, then `n` in hex
/// (`LOAD3-1a2f`), so Sistema TS's records say which result each one is.
fn facility(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:x}")
}

/// A prefix no earlier run of this process used (drives can share an ecosystem).
fn run_prefix() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    format!("LOAD{}-", RUNS.fetch_add(1, Ordering::Relaxed) + 1)
}

/// The population split the run draws from: adults with a mobile, minors with a
/// parent's mobile, and adults kept for the samples (used once each).
struct Pool {
    adults: Vec<Report>,
    minors: Vec<Report>,
    sampled: Vec<Report>,
    /// The test date every result carries (the virtual today).
    day: String,
}

fn pool(eco: &Ecosystem, samples: usize) -> anyhow::Result<Pool> {
    let ctx = eco.context();
    let today = ctx.clock().today();
    let day = today.to_string();
    let (mut adults, mut minors) = (Vec::new(), Vec::new());
    for c in ctx.population().iter() {
        let authorization = crate::bench::basic(&format!("lab-{}", c.region().code));
        let region = c.region().code.to_owned();
        // `struttura` is the result's own, set as it is sent ([`facility`]).
        let body = |contatti: Value| {
            json!({"codice_fiscale": c.codice_fiscale().to_string(), "tipo_test": "MOLECOLARE",
                "data_esecuzione": day, "contatti": contatti})
        };
        if c.is_minor_on(today) {
            if let Some(parent) = c.parent_mobile() {
                minors.push(Report {
                    body: body(json!({"cellulare_genitore": parent.to_string()})),
                    authorization,
                    region,
                    watch: None,
                });
            }
        } else if let Some(m) = c.mobile() {
            adults.push(Report {
                body: body(json!({"cellulare": m.to_string()})),
                authorization,
                region,
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
    Ok(Pool { adults, minors, sampled, day })
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
    /// The acknowledged results, by number in the run.
    acked: std::sync::Mutex<Vec<u64>>,
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
                Ok(r) => r.json::<Inbox>().await.is_ok_and(|i| !i.messages.is_empty()),
                Err(_) => false,
            };
            if got {
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
            // A thread per national system, as without `--sut`: with the reference SAR
            // in another process standing in for a vendor's, 6,000 results/s for 15 s
            // (85% negative) drained 0.1-0.9 s after the last answer this way against
            // 7.0-8.1 s on one shared runtime, and 10,000/s 8.8 s against 16.4 s.
            let mut config = crate::cli::sut_config(options.seed, options.base_port);
            config.thread_per_system = true;
            Ecosystem::start_without(config, &[System::Sar]).await?
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
    let (ts, gateway, pn_dgc) = (eco.url(System::SistemaTs), eco.url(System::SmsGateway), eco.url(System::PnDgc));
    let pool = Arc::new(pool(eco, options.samples)?);
    let connections = Arc::new(tokio::sync::Semaphore::new(options.connections.max(1)));
    // The thin client the systems use (pooled, keep-alive, no redirects followed):
    // at 10,000 results a second the load generator shares the machine it measures.
    let http = ecosim_core::client::http_client();
    let (records_before, sms_before) = counts(&http, &ts, &gateway).await?;
    let certificates_before = crate::bench::certificates(&http, &pn_dgc).await?;
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
        acked: Default::default(),
    });
    let prefix = run_prefix();
    let watcher = tokio::spawn(watch_samples(http.clone(), gateway.clone(), tally.clone()));
    let cpu_before = cpu_times();
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
            let mut report = pick(&pool, options, n, sample_every);
            report.body["struttura"] = Value::String(facility(&prefix, n));
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
                        tally.acked.lock().unwrap_or_else(|p| p.into_inner()).push(n);
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
    let mut at_last_answer = None;
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
        at_last_answer.get_or_insert(Progress { ts_records: r, cun_sms: s });
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
    let cpu = cpu_before
        .zip(cpu_times())
        .and_then(|(before, after)| CpuShare::between(before, after, started.elapsed().as_secs_f64()));
    let report_to_sms = tally.report_to_sms.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let drain_seconds = (last_sms_seen.max(answered) - answered).as_secs_f64();
    let end_to_end_seconds = (last_sms_seen.max(answered) - started).as_secs_f64();
    // A moment more: anything sent twice shows now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (r, s) = counts(&http, &ts, &gateway).await?;
    let (records, sms) = (r.saturating_sub(records_before).max(records), s.saturating_sub(sms_before).max(sms));
    let acked = std::mem::take(&mut *tally.acked.lock().unwrap_or_else(|p| p.into_inner()));
    let expected: Vec<Expected<'_>> = acked
        .iter()
        .map(|&n| {
            let report = chosen(&pool, options, n, sample_every);
            Expected { n, region: &report.region, number: report.number().unwrap_or_default() }
        })
        .collect();
    let negatives_acknowledged = acked.iter().filter(|&&n| negative(options, n)).count() as u64;
    let (Outcomes { lost, duplicated, misdirected }, found) =
        check_each(&http, &ts, &gateway, &pool.day, &prefix, &expected).await?;
    let certificates = Certificates { url: &pn_dgc, before: certificates_before, due: negatives_acknowledged };
    let (test_certificates, certificates_seconds) = certificates.wait(&http, started, options).await?;
    let certificates_refused =
        if certificates_seconds.is_none() { certificates.last_refusal(&http).await } else { None };
    let latency = tally.latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let refused = tally.refused.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut first_error = tally.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(why) = unmatched(found, records, &prefix) {
        first_error.get_or_insert(why);
    }
    Ok(LoadSummary {
        sar: sar.trim_end_matches('/').to_owned(),
        sar_in_process: eco.addr(System::Sar).is_some() && sar.trim_end_matches('/') == eco.url(System::Sar),
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
        misdirected,
        drain_seconds,
        end_to_end_seconds,
        report_to_sms_ms: Percentiles::of(&report_to_sms),
        at_last_answer: at_last_answer.unwrap_or_default(),
        negatives_acknowledged,
        test_certificates,
        certificates_seconds,
        drain_limit_seconds: options.drain.as_secs_f64(),
        certificates_refused,
        cpu,
        first_error,
    })
}

/// The negatives' test certificates at PN-DGC, waited for after the CUN flow.
struct Certificates<'a> {
    url: &'a str,
    /// PN-DGC's count before the run.
    before: u64,
    /// Negative results acknowledged: one certificate each.
    due: u64,
}

impl Certificates<'_> {
    /// Waits until every one is issued or nothing moved for `options.drain`; how many
    /// there are, and when (from `started`) the last came if all did.
    async fn wait(&self, http: &Http, started: Instant, options: &LoadOptions) -> anyhow::Result<(u64, Option<f64>)> {
        let (mut seen, mut moved) = (u64::MAX, Instant::now());
        loop {
            let issued = crate::bench::certificates(http, self.url).await?.saturating_sub(self.before);
            if issued >= self.due {
                if options.progress && seen != u64::MAX {
                    eprintln!();
                }
                return Ok((issued, Some(started.elapsed().as_secs_f64())));
            }
            if issued != seen {
                (seen, moved) = (issued, Instant::now());
            } else if moved.elapsed() >= options.drain {
                if options.progress {
                    eprintln!();
                }
                return Ok((issued, None));
            }
            if options.progress {
                eprint!("\r  PN-DGC's test certificates (not judged): {issued} of {}   ", self.due);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// PN-DGC's latest answer to an event that was not a success, from the journal's
    /// last thousand exchanges: its status and the problem's detail.
    async fn last_refusal(&self, http: &Http) -> Option<String> {
        let get = |path: String| async move {
            http.request(Method::GET, format!("{}{path}", self.url)).send().await.ok()?.json::<Value>().await.ok()
        };
        let last = get("/_admin/state".into()).await?["journal"]["last_seq"].as_u64()?;
        let page = get(format!("/_admin/journal?since={}", last.saturating_sub(1000))).await?;
        let refused = page["exchanges"].as_array()?.iter().rev().find(|x| {
            x["to"] == "pn-dgc" && x["path"] == "/pn-dgc/v1/eventi" && x["status"].as_u64().is_some_and(|s| s >= 400)
        })?;
        let body = refused["response_body"].as_str().unwrap_or_default();
        let detail = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|b| b["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.to_owned());
        Some(format!("{}: {detail}", refused["status"]))
    }
}

/// An acknowledged result, as the check needs it.
#[derive(Debug, Clone)]
struct Expected<'a> {
    /// Its number in the run (its facility code's).
    n: u64,
    /// Its lab's region.
    region: &'a str,
    /// The number its CUN SMS is due at.
    number: &'a str,
}

/// What the check of each acknowledged result found; a result counts once, in the
/// first of these that applies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outcomes {
    lost: u64,
    duplicated: u64,
    misdirected: u64,
}

/// A CUN: its ten characters.
type Code = [u8; 10];

/// The records Sistema TS holds for a result: how many, and the first one's CUN.
#[derive(Debug, Default, Clone, Copy)]
struct Recorded {
    count: u32,
    cun: Code,
}

/// The SMS that carried a CUN: how many, the first one's number (an index into the
/// numbers read) and, if any, another number one of them reached.
#[derive(Debug, Clone, Copy)]
struct Texted {
    count: u32,
    first: u32,
    other: Option<u32>,
}

/// Judges each result in `expected` against the records (by the result's number in
/// the run) and the SMS by CUN; `numbers` indexes the phone numbers read.
fn judge(
    expected: &[Expected<'_>],
    recorded: &HashMap<u64, Recorded>,
    texted: &HashMap<Code, Texted>,
    numbers: &HashMap<&str, u32>,
) -> Outcomes {
    let mut o = Outcomes::default();
    for e in expected {
        let Some(r) = recorded.get(&e.n).filter(|r| r.count > 0) else {
            o.lost += 1;
            continue;
        };
        if r.count > 1 {
            o.duplicated += 1;
            continue;
        }
        let Some(t) = texted.get(&r.cun) else {
            o.lost += 1;
            continue;
        };
        if Some(&t.first) != numbers.get(e.number) || t.other.is_some() {
            o.misdirected += 1;
        } else if t.count > 1 {
            o.duplicated += 1;
        }
    }
    o
}

/// One of Sistema TS's listed records, as far as the check reads it.
#[derive(Debug, Deserialize)]
struct Listed {
    struttura: String,
    cun: String,
}

#[derive(Debug, Deserialize)]
struct Listing {
    risultati: Vec<Listed>,
}

#[derive(Debug, Deserialize)]
struct Inbox {
    messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    text: String,
}

/// Reads what the national systems hold for the run's results, through their APIs as
/// anyone would (Sistema TS's listing with each region's SAR account, the gateway's
/// inboxes), and judges each acknowledged result ([`judge`]); also says how many of
/// them Sistema TS had a record of.
async fn check_each(
    http: &Http,
    ts: &str,
    gateway: &str,
    day: &str,
    prefix: &str,
    expected: &[Expected<'_>],
) -> anyhow::Result<(Outcomes, u64)> {
    const READ_TIMEOUT: Duration = Duration::from_secs(120);
    // Only acknowledged results are judged (memory grows with them, not with the run).
    let mut recorded: HashMap<u64, Recorded> = expected.iter().map(|e| (e.n, Recorded::default())).collect();
    let regions: std::collections::BTreeSet<&str> = expected.iter().map(|e| e.region).collect();
    for region in regions {
        let url = format!("{ts}/ts/v1/test-results?dal={day}&al={day}");
        let res = http
            .request(Method::GET, url.as_str())
            .header("authorization", crate::bench::basic(&format!("sar-{region}")).as_str())
            .timeout(READ_TIMEOUT)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "Sistema TS answered {} to {url} for region {region}", res.status());
        let listing: Listing = res.json().await?;
        for record in listing.risultati {
            let n = record.struttura.strip_prefix(prefix).and_then(|hex| u64::from_str_radix(hex, 16).ok());
            let (Some(slot), Some(cun)) = (n.and_then(|n| recorded.get_mut(&n)), code_of(&record.cun)) else {
                continue;
            };
            if slot.count == 0 {
                slot.cun = cun;
            }
            slot.count += 1;
        }
    }
    // The CUNs to look for, and every number a result's SMS is due at.
    let cuns: std::collections::HashSet<Code> = recorded.values().filter(|r| r.count > 0).map(|r| r.cun).collect();
    let mut numbers = HashMap::<&str, u32>::new();
    for e in expected {
        let next = u32::try_from(numbers.len())?;
        numbers.entry(e.number).or_insert(next);
    }
    let mut texted = HashMap::<Code, Texted>::new();
    let mut reads = tokio::task::JoinSet::new();
    let mut queue: Vec<(String, u32)> = numbers.iter().map(|(&k, &v)| (k.to_owned(), v)).collect();
    loop {
        while reads.len() < 32
            && let Some((number, index)) = queue.pop()
        {
            let request = http.request(Method::GET, format!("{gateway}/sms/v1/inbox/{number}")).timeout(READ_TIMEOUT);
            reads.spawn(async move {
                let res = request.send().await.map_err(|e| anyhow::anyhow!("inbox {number}: {e}"))?;
                anyhow::ensure!(res.status().is_success(), "the gateway answered {} for inbox {number}", res.status());
                let inbox: Inbox = res.json().await.map_err(|e| anyhow::anyhow!("inbox {number}: {e}"))?;
                Ok::<_, anyhow::Error>((index, inbox))
            });
        }
        let Some(read) = reads.join_next().await else { break };
        let (index, inbox) = read??;
        for message in inbox.messages {
            for cun in codes_in(&message.text).filter(|c| cuns.contains(c)) {
                texted
                    .entry(cun)
                    .and_modify(|t| {
                        t.count += 1;
                        if index != t.first {
                            t.other = Some(index);
                        }
                    })
                    .or_insert(Texted { count: 1, first: index, other: None });
            }
        }
    }
    let found = recorded.values().filter(|r| r.count > 0).count() as u64;
    Ok((judge(expected, &recorded, &texted, &numbers), found))
}

/// Why the check found nothing, when Sistema TS holds new records but none carries
/// the run's facility codes: a SAR that replaces the lab's `struttura` with codes of
/// its own cannot be checked result by result (every result then counts as lost).
fn unmatched(found: u64, new_records: u64, prefix: &str) -> Option<String> {
    (found == 0 && new_records > 0).then(|| {
        format!(
            "Sistema TS holds {new_records} new records but none carries a facility code the run sent \
             ({prefix}...): the check finds each result by the `struttura` the lab gave, which the SAR must \
             pass on as it came"
        )
    })
}

/// The ten characters of `CUN-XXXXXXXXXX` (or of a bare code).
fn code_of(cun: &str) -> Option<Code> {
    let code = cun.strip_prefix("CUN-").unwrap_or(cun);
    code.as_bytes().try_into().ok()
}

/// Every run of exactly ten letters and digits in `text` (a CUN wherever a SAR's
/// wording puts it, with or without its `CUN-`).
fn codes_in(text: &str) -> impl Iterator<Item = Code> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric()).filter_map(|word| word.as_bytes().try_into().ok())
}

/// Whether the n-th result falls in a share of `percent` (spread evenly; `salt` keeps
/// the shares apart).
fn spread(n: u64, percent: u8, salt: u64) -> bool {
    (n.wrapping_mul(37).wrapping_add(salt) % 100) < u64::from(percent)
}

/// Whose the n-th result is: a sampled adult at regular intervals, else a minor or an
/// adult by the asked mix.
fn chosen<'p>(pool: &'p Pool, options: &LoadOptions, n: u64, sample_every: u64) -> &'p Report {
    let sample = n % sample_every == sample_every / 2 && ((n / sample_every) as usize) < pool.sampled.len();
    if sample {
        &pool.sampled[(n / sample_every) as usize]
    } else if !pool.minors.is_empty() && spread(n, options.minors, 11) {
        &pool.minors[(n as usize) % pool.minors.len()]
    } else {
        &pool.adults[(n as usize) % pool.adults.len()]
    }
}

/// Whether the n-th result is negative (the asked share, spread over the run).
fn negative(options: &LoadOptions, n: u64) -> bool {
    spread(n, options.negatives, 53)
}

/// The n-th result ([`chosen`]), positive or negative by the asked share.
fn pick(pool: &Pool, options: &LoadOptions, n: u64, sample_every: u64) -> Report {
    let mut report = chosen(pool, options, n, sample_every).clone();
    report.body["esito"] = Value::String(if negative(options, n) { "NEGATIVO" } else { "POSITIVO" }.into());
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_from_procs_text() {
        // A command name with a space and a parenthesis, as `/proc` writes it.
        let own = "4242 (ecosim (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 9 0";
        let machine = "cpu  1000 10 300 5000 100 0 20 0 0 0\ncpu0 500 5 150 2500 50 0 10 0 0 0\n";
        let t = cpu_times_of(own, machine).expect("parsed");
        assert_eq!((t.process, t.machine_busy, t.machine_total), (325, 1330, 6430));
        assert!(cpu_times_of(own, "intr 1 2 3").is_none());
        assert!(cpu_times_of("4242 (ecosim) S 1", machine).is_none());
        let later = CpuTimes { process: 525, machine_busy: 1330 + 360, machine_total: 6430 + 400 };
        let share = CpuShare::between(t, later, 2.0).expect("a share");
        assert_eq!((share.ecosim_cores, share.machine_busy_percent), (1.0, 90.0));
        assert!(CpuShare::between(t, t, 2.0).is_none(), "no time went by in /proc");
    }

    #[test]
    fn records_without_the_runs_facility_codes_are_explained() {
        let why = unmatched(0, 20, "LOAD3-").expect("explained");
        assert!(why.contains("20 new records") && why.contains("LOAD3-") && why.contains("struttura"), "{why}");
        assert_eq!(unmatched(0, 0, "LOAD3-"), None, "nothing recorded: plainly lost");
        assert_eq!(unmatched(5, 20, "LOAD3-"), None, "some found: judged one by one");
    }

    #[test]
    fn peak_day_is_1_2_million_results_in_two_minutes() {
        let p = LoadOptions::peak_day();
        assert_eq!(p.total(), 1_200_000);
        assert_eq!(p.duration, Duration::from_secs(120));
    }

    #[test]
    fn the_mix_follows_the_asked_shares() {
        let report = |who: &str| Report {
            body: json!({"who": who}),
            authorization: "Basic x".into(),
            region: "160".into(),
            watch: None,
        };
        let pool =
            Pool { adults: vec![report("adult")], minors: vec![report("minor")], sampled: Vec::new(), day: "".into() };
        let options = LoadOptions { negatives: 70, minors: 10, ..LoadOptions::default() };
        let picks: Vec<Report> = (0..1000).map(|n| pick(&pool, &options, n, u64::MAX)).collect();
        let negatives = picks.iter().filter(|r| r.body["esito"] == "NEGATIVO").count();
        let minors = picks.iter().filter(|r| r.body["who"] == "minor").count();
        assert_eq!((negatives, minors), (700, 100));
    }

    #[test]
    fn a_report_is_due_at_the_parents_number_if_it_gives_one() {
        let r = |contatti: Value| Report {
            body: json!({"contatti": contatti}),
            authorization: String::new(),
            region: String::new(),
            watch: None,
        };
        assert_eq!(r(json!({"cellulare": "+393331112222"})).number(), Some("+393331112222"));
        assert_eq!(r(json!({"cellulare_genitore": "+393334445555"})).number(), Some("+393334445555"));
        assert_eq!(r(json!({})).number(), None);
    }

    #[test]
    fn cuns_are_found_in_any_wording_and_facility_codes_name_the_result() {
        let text = "Il codice del tuo test Covid-19 del 01/10/21 è CUN-AF2IYUU2YJ. Oppure: 6HQ5EW73HE!";
        let found: Vec<String> = codes_in(text).map(|c| String::from_utf8_lossy(&c).into_owned()).collect();
        assert_eq!(found, ["AF2IYUU2YJ", "6HQ5EW73HE"]);
        assert_eq!(code_of("CUN-AF2IYUU2YJ"), code_of("AF2IYUU2YJ"));
        assert_eq!(code_of("CUN-SHORT"), None);
        let (a, b) = (run_prefix(), run_prefix());
        assert_ne!(a, b, "each run its own facility codes");
        assert_eq!(facility("LOAD7-", 1_199_999), "LOAD7-124f7f");
        assert!(ecosim_domain::test_result::check_struttura(&facility(&a, 1_199_999)).is_ok());
    }

    /// Eight results: each outcome once, judged per result, where totals (eight
    /// records, eight SMS) would say nothing was wrong.
    #[test]
    fn each_result_is_judged_on_its_own_record_and_its_own_sms() {
        let code = |i: u8| -> Code { [b'A' + i; 10] };
        let phones: Vec<String> = (0..8).map(|i| format!("+3933300000{i}")).collect();
        let numbers: HashMap<&str, u32> = (0..8u32).map(|i| (phones[i as usize].as_str(), i)).collect();
        let expected: Vec<Expected<'_>> =
            (0..8u64).map(|n| Expected { n, region: "160", number: &phones[n as usize] }).collect();
        let mut recorded: HashMap<u64, Recorded> =
            (0..8u8).map(|n| (u64::from(n), Recorded { count: 1, cun: code(n) })).collect();
        recorded.remove(&1); // 1: never reached Sistema TS
        recorded.insert(2, Recorded { count: 2, cun: code(2) }); // 2: recorded twice
        let mut texted = HashMap::new();
        for n in [0u8, 2, 6, 7] {
            texted.insert(code(n), Texted { count: 1, first: u32::from(n), other: None });
        }
        texted.insert(code(3), Texted { count: 2, first: 3, other: None }); // 3: texted twice
        // 4: nothing texted; 5: texted to 6's phone; 6: to its own and to 0's.
        texted.insert(code(5), Texted { count: 1, first: 6, other: None });
        texted.insert(code(6), Texted { count: 2, first: 6, other: Some(0) });
        let o = judge(&expected, &recorded, &texted, &numbers);
        assert_eq!(o, Outcomes { lost: 2, duplicated: 2, misdirected: 2 }, "0 and 7 are the clean ones");
        assert_eq!(judge(&expected[..1], &recorded, &texted, &numbers), Outcomes::default());
    }
}
