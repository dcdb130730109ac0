//! Benchmarks behind `ecosim bench`: figures the README reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecosim_core::System;
use ecosim_core::client::Method;
use ecosim_core::config::Config;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::ecosystem::Ecosystem;

/// What a CUN-journey run measured.
#[derive(Debug, Clone)]
pub struct CunJourneys {
    /// Journeys completed (SMS delivered).
    pub journeys: usize,
    /// From the first lab report to the last SMS delivered.
    pub elapsed: Duration,
    /// Where the databases were.
    pub storage: String,
    /// Share of negative results, in percent (each also yields a signed test certificate).
    pub negatives: u8,
    /// With negative results: their test certificates, and from the first lab report
    /// until PN-DGC had issued the last of them.
    pub certificates: Option<(u64, Duration)>,
}

impl CunJourneys {
    /// Journeys per second.
    pub fn per_second(&self) -> f64 {
        self.journeys as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints the figures.
    pub fn print(&self) {
        println!(
            "CUN journeys (lab -> SAR -> Sistema TS -> SMS delivered), databases {}, {}% negative results",
            self.storage, self.negatives
        );
        println!(
            "  {} journeys in {:.2} s: {:.0} journeys/s",
            self.journeys,
            self.elapsed.as_secs_f64(),
            self.per_second()
        );
        if let Some((n, after)) = self.certificates {
            println!("  and the negatives' {n} test certificates issued by {:.2} s", after.as_secs_f64());
        }
    }
}

/// The median, lowest and highest of several runs' figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The middle figure (of an even count, the mean of the two middle ones).
    pub median: f64,
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
}

impl Spread {
    /// The spread of `figures`; `None` if there are none.
    pub fn of(figures: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = figures.into_iter().collect();
        v.sort_by(f64::total_cmp);
        let (min, max) = (*v.first()?, *v.last()?);
        let mid = v.len() / 2;
        let median = if v.len().is_multiple_of(2) { (v[mid - 1] + v[mid]) / 2.0 } else { v[mid] };
        Some(Self { median, min, max })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0}/s (lowest {:.0}, highest {:.0})", self.median, self.min, self.max)
    }
}

/// Runs `journeys` CUN journeys with `concurrency` lab reports in flight, in a fresh
/// in-process ecosystem on loopback (no artificial waits, no fault rules).
/// `negatives` percent of the results are negative: Sistema TS then also sends
/// PN-DGC a test event, which becomes a signed test certificate, work that shares the
/// same two cores. A journey is a CUN SMS; the run ends when every CUN SMS is there
/// and every negative's certificate is issued (at this rate Sistema TS holds its
/// events for PN-DGC until the results stop coming). Journeys a second count the CUN
/// SMS; when the last certificate came is reported beside it.
pub async fn cun_journeys(
    journeys: usize,
    concurrency: usize,
    data_dir: Option<PathBuf>,
    negatives: u8,
) -> anyhow::Result<CunJourneys> {
    let negatives = negatives.min(100);
    if let Some(dir) = &data_dir {
        fresh_dir(dir)?;
    }
    let storage = match &data_dir {
        Some(d) => format!("on disk in {}", d.display()),
        None => "in memory".to_owned(),
    };
    let mut config = Config {
        population: 20_000,
        journal: ecosim_core::config::JournalConfig { cap: 10_000, ..Default::default() },
        data_dir,
        ..Config::for_tests(7)
    };
    config.retry.concurrency = 256;
    config.thread_per_system = true;
    let eco = Ecosystem::start(config).await?;
    let ctx = eco.context().clone();
    let today = ctx.clock().today();
    // Each citizen's report and its lab's credentials, made before the clock starts.
    let people: Vec<(String, String, String)> = ctx
        .population()
        .iter()
        .filter(|c| c.mobile().is_some() && !c.is_minor_on(today))
        .map(|c| {
            (
                c.codice_fiscale().to_string(),
                c.mobile().map(|m| m.to_string()).unwrap_or_default(),
                basic(&format!("lab-{}", c.region().code)),
            )
        })
        .collect();
    anyhow::ensure!(!people.is_empty(), "no citizen with a mobile number");
    // The same thin client the systems call each other with: the lab shares the two
    // cores, and a general client's URL parsing and layers were a tenth of a journey.
    let http = ecosim_core::client::http_client();
    let esiti = format!("{}/sar/v1/esiti", eco.url(System::Sar));
    let gateway = eco.url(System::SmsGateway);
    let pn_dgc = eco.url(System::PnDgc);
    let before = delivered(&http, &gateway).await?;
    let certificates_before = certificates(&http, &pn_dgc).await?;
    let started = Instant::now();
    let day = today.to_string();
    // The i-th result is negative for `negatives` of every hundred.
    let negative = |i: usize| i % 100 < usize::from(negatives);
    drive(journeys, concurrency, |i| {
        let (cf, mobile, authorization) = &people[i % people.len()];
        let body = json!({
            "codice_fiscale": cf, "esito": if negative(i) { "NEGATIVO" } else { "POSITIVO" },
            "tipo_test": "MOLECOLARE", "data_esecuzione": day, "struttura": "BENCH-LAB",
            "contatti": {"cellulare": mobile},
        });
        let request =
            http.request(Method::POST, esiti.as_str()).header("authorization", authorization.as_str()).json(&body);
        async move {
            let res = request.send().await?;
            let status = res.status();
            // Read to the end, so the connection goes back to the pool.
            res.bytes().await?;
            anyhow::ensure!(status.as_u16() == 202, "the SAR answered {status}");
            Ok(())
        }
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    until(deadline, journeys as u64, "SMS delivered", || async { Ok(delivered(&http, &gateway).await? - before) })
        .await?;
    let elapsed = started.elapsed();
    let negative_results = (0..journeys).filter(|&i| negative(i)).count() as u64;
    until(deadline, negative_results, "test certificates issued", || async {
        Ok(certificates(&http, &pn_dgc).await? - certificates_before)
    })
    .await?;
    let certificates = (negative_results > 0).then(|| (negative_results, started.elapsed()));
    eco.shutdown().await;
    Ok(CunJourneys { journeys, elapsed, storage, negatives, certificates })
}

/// Polls `count` until it reaches `target`; an error naming `what` at `deadline`.
async fn until<F, Fut>(deadline: Instant, target: u64, what: &str, mut count: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    loop {
        let n = count().await?;
        if n >= target {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {n} of {target} {what} after 2 minutes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The certificates PN-DGC at `pn_dgc` has issued so far.
pub(crate) async fn certificates(http: &ecosim_core::client::Http, pn_dgc: &str) -> anyhow::Result<u64> {
    let state: Value = http.request(Method::GET, format!("{pn_dgc}/_admin/state")).send().await?.json().await?;
    state["simulator"]["certificati"].as_u64().ok_or_else(|| anyhow::anyhow!("PN-DGC's state has no certificate count"))
}

async fn delivered(http: &ecosim_core::client::Http, gateway: &str) -> anyhow::Result<u64> {
    let state: Value = http.request(Method::GET, format!("{gateway}/_admin/state")).send().await?.json().await?;
    // Only the CUN SMS: negative results also bring green-pass AUTHCODEs (`Min Salute`).
    anyhow::ensure!(state["simulator"]["per_mittente"].is_object(), "the gateway's state has no counts by sender");
    Ok(state["simulator"]["per_mittente"][ecosim_domain::messages::CUN_SMS_SENDER].as_u64().unwrap_or(0))
}

/// Refuses a data directory that already holds something: a run there would reopen
/// the databases of an earlier one and measure bigger tables (and nothing of a
/// user's is deleted to make room).
fn fresh_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let held = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => anyhow::bail!("cannot read --data-dir {}: {e}", dir.display()),
    };
    anyhow::ensure!(
        !held,
        "--data-dir {} is not empty: a benchmark measures fresh databases; give a new or empty directory",
        dir.display()
    );
    Ok(())
}

/// What an anonymous-load memory run measured.
#[derive(Debug, Clone)]
pub struct MemoryUnderLoad {
    /// Requests sent (every one refused 401: no credentials).
    pub requests: usize,
    /// Bytes in each request body.
    pub body_bytes: usize,
    /// Time the requests took.
    pub elapsed: Duration,
    /// Resident memory before the first request and after the last, and the
    /// process's peak (client and ecosystem share the process).
    pub rss_before: Option<u64>,
    /// See `rss_before`.
    pub rss_after: Option<u64>,
    /// See `rss_before`.
    pub rss_peak: Option<u64>,
    /// What the journal kept at the end: entries and bytes, and its budget.
    pub journal_kept: usize,
    /// See `journal_kept`.
    pub journal_bytes: usize,
    /// See `journal_kept`.
    pub journal_budget: usize,
}

impl MemoryUnderLoad {
    /// Prints the figures.
    pub fn print(&self) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let show = |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.0} MiB", mib(b)));
        println!(
            "{} anonymous POSTs of {} bytes to Sistema TS (each 401), in {:.1} s ({:.0}/s)",
            self.requests,
            self.body_bytes,
            self.elapsed.as_secs_f64(),
            self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
        );
        println!(
            "  resident memory: {} before, {} after, peak {} (load generator included)",
            show(self.rss_before),
            show(self.rss_after),
            show(self.rss_peak)
        );
        println!(
            "  journal: {} exchanges kept in {:.1} MiB of its {:.0} MiB budget ({} bytes each)",
            self.journal_kept,
            mib(self.journal_bytes as u64),
            mib(self.journal_budget as u64),
            self.journal_bytes / self.journal_kept.max(1)
        );
    }
}

/// Resident set size (`VmRSS`) and its peak (`VmHWM`), from `/proc/self/status` (Linux).
pub fn resident() -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sends `requests` anonymous POSTs of `body_bytes` each to Sistema TS's intake, with
/// `concurrency` in flight, and reports what memory they cost (the journal keeps
/// each 401 within its default budget).
pub async fn memory_under_anonymous_load(
    requests: usize,
    body_bytes: usize,
    concurrency: usize,
) -> anyhow::Result<MemoryUnderLoad> {
    let mut config = Config { population: 2_000, ..Config::for_tests(7) };
    config.thread_per_system = true;
    let journal_budget = config.journal.budget.0;
    let eco = Ecosystem::start(config).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build()?;
    let url = format!("{}/ts/v1/test-results", eco.url(System::SistemaTs));
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(body_bytes.saturating_sub(10)));
    let (rss_before, _) = resident();
    let started = Instant::now();
    drive(requests, concurrency, |_| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            let res = http.post(url).header("content-type", "application/json").body(body).send().await?;
            anyhow::ensure!(res.status().as_u16() == 401, "Sistema TS answered {} to an anonymous call", res.status());
            Ok(())
        }
    })
    .await?;
    let elapsed = started.elapsed();
    let (rss_after, rss_peak) = resident();
    let journal = eco.context().journal();
    let (journal_kept, journal_bytes) = (journal.len(), journal.bytes());
    eco.shutdown().await;
    Ok(MemoryUnderLoad {
        requests,
        body_bytes,
        elapsed,
        rss_before,
        rss_after,
        rss_peak,
        journal_kept,
        journal_bytes,
        journal_budget,
    })
}

/// What an intake-over-time run measured: one block per virtual day.
#[derive(Debug, Clone)]
pub struct IntakeOverTime {
    /// Results sent per virtual day.
    pub per_day: usize,
    /// Each day's throughput (results/s), in order.
    pub days: Vec<f64>,
    /// Results Sistema TS held at the end (retention keeps about 14 days' worth).
    pub held_at_end: u64,
    /// Resident memory at the end and its peak (load generator included).
    pub rss: (Option<u64>, Option<u64>),
}

impl IntakeOverTime {
    /// Prints the figures.
    pub fn print(&self) {
        let total = self.per_day * self.days.len();
        println!(
            "Sistema TS intake (POST /ts/v1/test-results, positive, no contacts), {total} results, {} per virtual day",
            self.per_day
        );
        for (i, rate) in self.days.iter().enumerate() {
            println!("  day {:>2}: {rate:>8.0} results/s", i + 1);
        }
        if let (Some(first), Some(last)) = (self.days.first(), self.days.last()) {
            println!(
                "  last day / first day: {:.2}; {} results held at the end (the rest purged after 14 days)",
                last / first,
                self.held_at_end
            );
        }
        let mib = |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.0} MiB", b as f64 / 1048576.0));
        println!(
            "  resident memory at the end {}, peak {} (load generator included)",
            mib(self.rss.0),
            mib(self.rss.1)
        );
    }
}

/// Sends `days` x `per_day` test results straight to Sistema TS (each with an
/// `Idempotency-Key`, so every table the intake writes grows with it), moving the
/// shared clock a day after each day's results, and reports each day's throughput:
/// flat when purges keep the tables at about 14 days' worth.
pub async fn intake_over_time(days: usize, per_day: usize, concurrency: usize) -> anyhow::Result<IntakeOverTime> {
    let mut config = Config { population: 20_000, ..Config::for_tests(11) };
    config.thread_per_system = true;
    let eco = Ecosystem::start(config).await?;
    let ctx = eco.context().clone();
    let people: Vec<(String, String)> =
        ctx.population().iter().map(|c| (c.codice_fiscale().to_string(), format!("sar-{}", c.region().code))).collect();
    anyhow::ensure!(!people.is_empty(), "an empty population");
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build()?;
    let url = format!("{}/ts/v1/test-results", eco.url(System::SistemaTs));
    let mut rates = Vec::with_capacity(days);
    for day in 0..days {
        let today = ctx.clock().today().to_string();
        let started = Instant::now();
        drive(per_day, concurrency, |i| {
            let (cf, sar) = people[(day * per_day + i) % people.len()].clone();
            let (http, url, today) = (http.clone(), url.clone(), today.clone());
            async move {
                let body = json!({
                    "codice_fiscale": cf, "esito": "POSITIVO", "tipo_test": "MOLECOLARE",
                    "data_esecuzione": today, "struttura": "BENCH-LAB",
                });
                let res = http
                    .post(url)
                    .basic_auth(&sar, Some(format!("{sar}-secret")))
                    .header("idempotency-key", format!("bench-{day}-{i}"))
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(res.status().as_u16() == 201, "Sistema TS answered {}", res.status());
                Ok(())
            }
        })
        .await?;
        rates.push(per_day as f64 / started.elapsed().as_secs_f64().max(1e-9));
        eprintln!("  (day {} of {days}: {:.0} results/s)", day + 1, rates[day]);
        let next = ctx.clock().now() + jiff::SignedDuration::from_hours(24);
        ctx.move_clock(next).await.map_err(|e| anyhow::anyhow!("the clock did not move: {e}"))?;
    }
    let state: Value = http.get(format!("{}/_admin/state", eco.url(System::SistemaTs))).send().await?.json().await?;
    let held_at_end = state["simulator"]["test_results"].as_u64().unwrap_or(0);
    let rss = resident();
    eco.shutdown().await;
    Ok(IntakeOverTime { per_day, days: rates, held_at_end, rss })
}

/// What an idle-connections run measured.
#[derive(Debug, Clone)]
pub struct IdleConnections {
    /// Idle sockets held open on Sistema TS's port (half with half-sent headers).
    pub idle: usize,
    /// Each health check's status and time, made while they are open.
    pub health: Vec<(u16, Duration)>,
    /// Descriptors the process held beyond the idle sockets themselves (the
    /// ecosystem's listeners and the connections it kept).
    pub held_by_ecosystem: usize,
    /// The per-listener cap.
    pub cap: usize,
}

impl IdleConnections {
    /// Prints the figures.
    pub fn print(&self) {
        let ok = self.health.iter().filter(|(s, _)| *s == 200).count();
        let mut ms: Vec<f64> = self.health.iter().map(|(_, d)| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        println!("{} idle sockets open on Sistema TS's port (half with half-sent headers):", self.idle);
        println!(
            "  health: {ok} of {} answered 200, median {:.1} ms, worst {:.1} ms",
            self.health.len(),
            ms.get(ms.len() / 2).copied().unwrap_or(0.0),
            ms.last().copied().unwrap_or(0.0)
        );
        println!(
            "  descriptors held by the ecosystem: {} (cap {} per listener; beyond it the oldest idle connections are closed)",
            self.held_by_ecosystem, self.cap
        );
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Opens `idle` sockets on Sistema TS's port that send half a request (or nothing)
/// and wait, then checks health 20 times with a fresh connection each.
pub async fn idle_connections(idle: usize) -> anyhow::Result<IdleConnections> {
    use tokio::io::AsyncWriteExt;
    let mut config = Config { population: 2_000, ..Config::for_tests(7) };
    config.thread_per_system = true;
    let cap = config.connections.max;
    let eco = Ecosystem::start(config).await?;
    let url = eco.url(System::SistemaTs);
    let addr = url.trim_start_matches("http://").to_owned();
    let before = open_descriptors();
    let mut sockets = Vec::with_capacity(idle);
    for i in 0..idle {
        let mut s = tokio::net::TcpStream::connect(&addr).await?;
        if i % 2 == 0 {
            s.write_all(b"GET /_admin/health HTTP/1.1\r\nhost: x\r\n").await?;
        }
        sockets.push(s);
    }
    // Let the listener catch up with the last connections.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut health = Vec::with_capacity(20);
    for _ in 0..20 {
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
        let started = Instant::now();
        let status = http.get(format!("{url}/_admin/health")).send().await.map_or(0, |r| r.status().as_u16());
        health.push((status, started.elapsed()));
    }
    let held_by_ecosystem = open_descriptors().saturating_sub(before).saturating_sub(sockets.len());
    drop(sockets);
    eco.shutdown().await;
    Ok(IdleConnections { idle, health, held_by_ecosystem, cap })
}

/// Runs `n` calls made by `call(i)` with at most `concurrency` in flight, reaping
/// finished ones as it goes (a million finished tasks are not kept); the first
/// error ends the run.
async fn drive<F, Fut>(n: usize, concurrency: usize, call: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = gate.clone().acquire_owned().await?;
        let work = call(i);
        tasks.spawn(async move {
            let done = work.await;
            drop(permit);
            done
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// One route of `ecosim bench http`: each round's run against ecosim and against
/// the bare axum server, measured back to back.
#[derive(Debug, Clone)]
pub struct RouteRatio {
    /// What was measured on ecosim (and what on the bare server).
    pub name: &'static str,
    /// The bare route it is compared with.
    pub bare_route: &'static str,
    /// ecosim's runs, one per round.
    pub ecosim: Vec<crate::loadgen::Saturation>,
    /// The bare server's runs, one per round.
    pub bare: Vec<crate::loadgen::Saturation>,
}

impl RouteRatio {
    fn median(runs: &[crate::loadgen::Saturation]) -> Option<&crate::loadgen::Saturation> {
        let mut sorted: Vec<&crate::loadgen::Saturation> = runs.iter().collect();
        sorted.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        sorted.get(sorted.len() / 2).copied()
    }

    /// The median of each round's ratio (ecosim / bare, same round).
    pub fn ratio(&self) -> f64 {
        let mut ratios: Vec<f64> =
            self.ecosim.iter().zip(&self.bare).map(|(e, b)| e.per_second() / b.per_second().max(1e-9)).collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0)
    }
}

/// What `ecosim bench http` measured.
#[derive(Debug, Clone)]
pub struct HttpRatios {
    /// Per route.
    pub routes: Vec<RouteRatio>,
    /// Seconds per run, connections, and whether each system had its own thread.
    pub seconds: u64,
    /// See `seconds`.
    pub connections: usize,
    /// See `seconds`.
    pub thread_per_system: bool,
}

impl HttpRatios {
    /// Prints the figures (medians over the rounds).
    pub fn print(&self) {
        let rounds = self.routes.first().map_or(0, |r| r.ecosim.len());
        println!(
            "ecosim vs bare axum 0.8 in the same process, {} connections, {} s x {rounds} rounds, interleaved; {}",
            self.connections,
            self.seconds,
            if self.thread_per_system { "a thread per system" } else { "one runtime for all systems (as `up`)" }
        );
        println!(
            "  {:<34} {:>10} {:>10} {:>6}   {:>28}   {:>20}",
            "route", "ecosim/s", "bare/s", "ratio", "ecosim p50 / p99 / p99.9 ms", "bare p50 / p99 ms"
        );
        for r in &self.routes {
            let (Some(e), Some(b)) = (RouteRatio::median(&r.ecosim), RouteRatio::median(&r.bare)) else { continue };
            println!(
                "  {:<34} {:>10.0} {:>10.0} {:>6.2}   {:>8.2} / {:>7.2} / {:>7.2}   {:>9.2} / {:>8.2}",
                r.name,
                e.per_second(),
                b.per_second(),
                r.ratio(),
                e.ms(0.5),
                e.ms(0.99),
                e.ms(0.999),
                b.ms(0.5),
                b.ms(0.99)
            );
            let errors: u64 = r.ecosim.iter().chain(&r.bare).map(|s| s.errors).sum();
            if errors > 0 {
                let first = r.ecosim.iter().chain(&r.bare).find_map(|s| s.first_error.clone()).unwrap_or_default();
                println!("    {errors} unexpected answers (first: {first})");
            }
        }
        println!("  (bare: GET /health answers a small JSON; POST /echo parses the JSON body and sends it back)");
    }
}

/// The bare axum server the ratios are measured against: `GET /health` and a JSON
/// echo, on a multi-thread runtime of its own (two workers, as a default axum
/// service on this machine).
fn bare_axum() -> anyhow::Result<(std::net::SocketAddr, tokio::runtime::Runtime)> {
    use axum::routing::{get, post};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/echo", post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }));
    runtime.spawn(async move { axum::serve(listener, app).await });
    Ok((addr, runtime))
}

fn addr_of(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    Ok(url.trim_start_matches("http://").parse()?)
}

/// The `Authorization` value of default account `user` (password `<user>-secret`).
pub(crate) fn basic(user: &str) -> String {
    ecosim_core::accounts::basic_authorization(user, &format!("{user}-secret"))
}

/// `ecosim bench http`: each route of ecosim against the bare axum server, in one
/// process, interleaved round by round (`seconds` each, `connections` keep-alive
/// connections, closed loop). The ecosystem runs in memory with `timing.fast` (no
/// artificial waits), on its own runtime; after each ecosim run the bench waits
/// for the work the run set off (the SAR's deliveries) before the next run.
pub fn http_ratios(
    seconds: u64,
    rounds: usize,
    connections: usize,
    thread_per_system: bool,
    only: Option<&str>,
) -> anyhow::Result<HttpRatios> {
    use crate::loadgen::{Prepared, saturate};
    let mut config = Config {
        population: 20_000,
        journal: ecosim_core::config::JournalConfig { cap: 10_000, ..Default::default() },
        ..Config::for_tests(7)
    };
    config.retry.concurrency = 256;
    config.thread_per_system = thread_per_system;
    let eco_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let eco = eco_runtime.block_on(Ecosystem::start(config))?;
    let (bare, _bare_runtime) = bare_axum()?;
    let ctx = eco.context().clone();
    let today = ctx.clock().today().to_string();
    let people: Vec<(String, String, String)> = ctx
        .population()
        .iter()
        .filter(|c| c.mobile().is_some() && !c.is_minor_on(ctx.clock().today()))
        .map(|c| {
            (
                c.codice_fiscale().to_string(),
                c.mobile().map(|m| m.to_string()).unwrap_or_default(),
                c.region().code.to_owned(),
            )
        })
        .collect();
    anyhow::ensure!(!people.is_empty(), "no adult with a mobile number");
    let json_type = || ("content-type", "application/json".to_owned());
    // Each citizen's positive result, posted to `path` by `account` (no account: the
    // bare echo), with contacts for the SAR.
    let results = |path: &str, account: Option<&str>, contacts: bool| -> Vec<Prepared> {
        people
            .iter()
            .map(|(cf, mobile, region)| {
                let mut body = json!({"codice_fiscale": cf, "esito": "POSITIVO", "tipo_test": "MOLECOLARE",
                    "data_esecuzione": today, "struttura": "BENCH-LAB"});
                if contacts {
                    body["contatti"] = json!({"cellulare": mobile});
                }
                let mut headers = vec![json_type()];
                headers.extend(account.map(|a| ("authorization", basic(&format!("{a}-{region}")))));
                Prepared::new("POST", path, &headers, body.to_string().as_bytes())
            })
            .collect()
    };
    let ts_intake = results("/ts/v1/test-results", Some("sar"), false);
    let sar_intake = results("/sar/v1/esiti", Some("lab"), true);
    let echo = results("/echo", None, false);
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ts = addr_of(&eco.url(System::SistemaTs))?;
    let sar = addr_of(&eco.url(System::Sar))?;
    let immuni = addr_of(&eco.url(System::Immuni))?;
    // One OTP, authorised by Sistema TS; check-otp reads it and does not consume it.
    let otp = crate::app::VirtualApp::new(&eco.url(System::Immuni), 7).new_otp();
    client.block_on(async {
        let res = reqwest::Client::new()
            .post(format!("{}/v1/otp", eco.url(System::Immuni)))
            .header("authorization", basic("sistema-ts"))
            .json(&json!({"otp": otp.as_str(), "symptoms_started_on": today}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "Immuni refused the OTP: {}", res.status());
        anyhow::Ok(())
    })?;
    let check_otp = Prepared::new(
        "POST",
        "/v1/ingestion/check-otp",
        &[
            ("content-type", "application/json; charset=utf-8".to_owned()),
            ("authorization", format!("Bearer {}", otp.sha256())),
            ("immuni-dummy-data", "0".to_owned()),
        ],
        json!({"padding": "0123456789abcdef".repeat(16)}).to_string().as_bytes(),
    );
    let health = Prepared::new("GET", "/_admin/health", &[], b"");
    let bare_health = Prepared::new("GET", "/health", &[], b"");
    let check_echo = Prepared::new(
        "POST",
        "/echo",
        &[json_type()],
        json!({"padding": "0123456789abcdef".repeat(16)}).to_string().as_bytes(),
    );
    let duration = Duration::from_secs(seconds.max(1));
    let shared = |v: Vec<Prepared>| Arc::new(v);
    let (ts_intake, sar_intake, echo) = (shared(ts_intake), shared(sar_intake), shared(echo));
    type Make = Arc<dyn Fn(u64) -> Prepared + Send + Sync>;
    let pick = |v: &Arc<Vec<Prepared>>| -> Make {
        let v = v.clone();
        Arc::new(move |n| v[n as usize % v.len()].clone())
    };
    // Sistema TS's intake with an `Idempotency-Key` on every request, as a SAR
    // sends it: each key new (a repeated one would be a cheap replay), unique across
    // rounds. Its echo gets the same header, so both sides pay the same to make it.
    let keyed = |v: &Arc<Vec<Prepared>>| -> Make {
        let (v, next) = (v.clone(), Arc::new(std::sync::atomic::AtomicU64::new(0)));
        Arc::new(move |n| {
            let key = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            v[n as usize % v.len()].with_header("idempotency-key", &format!("bench-{key}"))
        })
    };
    let one = |p: &Prepared| -> Make {
        let p = p.clone();
        Arc::new(move |_| p.clone())
    };
    let cases: Vec<(&'static str, &'static str, std::net::SocketAddr, u16, Make, u16, Make)> = vec![
        ("GET /_admin/health (Sistema TS)", "GET /health", ts, 200, one(&health), 200, one(&bare_health)),
        ("POST /ts/v1/test-results", "POST /echo", ts, 201, keyed(&ts_intake), 200, keyed(&echo)),
        ("POST /sar/v1/esiti", "POST /echo", sar, 202, pick(&sar_intake), 200, pick(&echo)),
        ("POST /v1/ingestion/check-otp", "POST /echo", immuni, 204, one(&check_otp), 200, one(&check_echo)),
    ];
    let mut routes = Vec::new();
    for (name, bare_route, addr, expect, make, bare_expect, bare_make) in cases {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut row = RouteRatio { name, bare_route, ecosim: Vec::new(), bare: Vec::new() };
        for round in 0..rounds.max(1) {
            let run = |addr, expect, make: Make| {
                client.block_on(saturate(addr, connections, duration, expect, move |n| make(n)))
            };
            // Alternate which goes first, so neither always runs on a warmer machine.
            if round % 2 == 0 {
                row.bare.push(run(bare, bare_expect, bare_make.clone())?);
                row.ecosim.push(run(addr, expect, make.clone())?);
            } else {
                row.ecosim.push(run(addr, expect, make.clone())?);
                row.bare.push(run(bare, bare_expect, bare_make.clone())?);
            }
            // What the run set off (the SAR's deliveries) finishes before the next.
            client.block_on(ctx.activity().settle(Duration::from_secs(300)));
            eprintln!(
                "  ({name}, round {}: ecosim {:.0}/s, bare {:.0}/s)",
                round + 1,
                row.ecosim.last().map_or(0.0, |s| s.per_second()),
                row.bare.last().map_or(0.0, |s| s.per_second())
            );
        }
        routes.push(row);
    }
    eco_runtime.block_on(eco.shutdown());
    Ok(HttpRatios { routes, seconds: duration.as_secs(), connections, thread_per_system })
}

/// What a dashboard run measured, in headless Chromium.
#[derive(Debug, Clone)]
pub struct DashboardFollow {
    /// From the navigation's start to the page's `load` event.
    pub load: Duration,
    /// From the navigation's start to the live stream being open.
    pub connected: Duration,
    /// Exchanges sent per second, and for how long.
    pub rate: u32,
    /// Seconds of sending.
    pub seconds: u32,
    /// Exchanges the systems journaled during the run.
    pub sent: u64,
    /// Exchanges the page received and drew (one arrow row each: folding off).
    pub rendered: u64,
    /// After the last exchange was sent, until the page had drawn it.
    pub trail: Duration,
    /// The longest gap between two animation frames while it ran (a frozen page shows here).
    pub worst_frame_gap_ms: f64,
    /// The page's JavaScript heap at the end, if Chromium says.
    pub js_heap: Option<u64>,
}

impl DashboardFollow {
    /// Prints the figures.
    pub fn print(&self) {
        println!("workshop dashboard in headless Chromium (folding off: an arrow row per exchange)");
        println!(
            "  page load {:.0} ms, live stream open {:.0} ms after the navigation started",
            self.load.as_secs_f64() * 1000.0,
            self.connected.as_secs_f64() * 1000.0
        );
        println!(
            "  {} exchanges/s for {} s: {} journaled, {} drawn, the last drawn {:.0} ms after it was sent",
            self.rate,
            self.seconds,
            self.sent,
            self.rendered,
            self.trail.as_secs_f64() * 1000.0
        );
        println!("  longest gap between frames {:.0} ms", self.worst_frame_gap_ms);
        if let Some(heap) = self.js_heap {
            println!("  JavaScript heap at the end {:.1} MiB", heap as f64 / (1024.0 * 1024.0));
        }
    }
}

/// Opens the dashboard in headless Chromium, then makes `rate` exchanges a second
/// for `seconds` (anonymous requests to Sistema TS, each journaled) and measures
/// whether the page keeps up: what it drew, how late, and its longest frame gap.
pub async fn dashboard_follow(rate: u32, seconds: u32) -> anyhow::Result<DashboardFollow> {
    let eco = Ecosystem::start(Config::for_tests(42)).await?;
    let browser = crate::webdriver::Browser::start(1500, 1000).await?;
    browser.goto(&eco.url(System::ControlPlane)).await?;
    browser
        .wait_for("window.ecosimStats && window.ecosimStats.connected", Duration::from_secs(10), "the stream")
        .await?;
    let timing = browser
        .script(
            "const n = performance.getEntriesByType('navigation')[0]; \
             const c = performance.getEntriesByName('ecosim-connected')[0]; \
             return [n.loadEventEnd, c ? c.startTime : null];",
            vec![],
        )
        .await?;
    let ms = |v: &Value| Duration::from_secs_f64(v.as_f64().unwrap_or(0.0).max(0.0) / 1000.0);
    let (load, connected) = (ms(&timing[0]), ms(&timing[1]));
    browser
        .script(
            "document.querySelector('#fold').checked = false; window.ecosimStats.maxFrameGapMs = 0; return true;",
            vec![],
        )
        .await?;
    let before = eco.context().journal().last_seq();
    let http = reqwest::Client::new();
    let url = format!("{}/ts/v1/test-results", eco.url(System::SistemaTs));
    let total = u64::from(rate) * u64::from(seconds);
    let started = Instant::now();
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / f64::from(rate.max(1)));
        tokio::time::sleep_until(due.into()).await;
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move { http.post(url).json(&json!({})).send().await });
    }
    let last_sent = Instant::now();
    let target = before + total;
    let mut sent = 0;
    while Instant::now() - last_sent < Duration::from_secs(30) {
        sent = eco.context().journal().last_seq() - before;
        let drawn = browser.script("return window.ecosimStats.lastDrawn;", vec![]).await?.as_u64().unwrap_or(0);
        if sent >= total && drawn >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let trail = last_sent.elapsed();
    let stats = browser.script("return [window.ecosimStats.rendered, window.ecosimStats.maxFrameGapMs, performance.memory ? performance.memory.usedJSHeapSize : null];", vec![]).await?;
    // What the page drew before the run began (the tail it opened with) is not counted.
    let rendered_before = before.min(200);
    drop(browser);
    eco.shutdown().await;
    Ok(DashboardFollow {
        load,
        connected,
        rate,
        seconds,
        sent,
        rendered: stats[0].as_u64().unwrap_or(0).saturating_sub(rendered_before),
        trail,
        worst_frame_gap_ms: stats[1].as_f64().unwrap_or(0.0),
        js_heap: stats[2].as_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn a_benchmark_refuses_a_data_dir_that_holds_something() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(super::fresh_dir(&dir.path().join("absent")).is_ok());
        assert!(super::fresh_dir(dir.path()).is_ok(), "empty");
        std::fs::write(dir.path().join("sar.sqlite"), b"").expect("file");
        let e = super::fresh_dir(dir.path()).expect_err("not empty");
        assert!(
            e.to_string().contains("is not empty") && e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn a_spread_is_the_median_and_the_extremes_whatever_the_order() {
        let s = Spread::of([9_100.0, 8_400.0, 10_200.0, 8_900.0, 9_600.0]).expect("figures");
        assert_eq!(s, Spread { median: 9_100.0, min: 8_400.0, max: 10_200.0 });
        assert_eq!(Spread::of([2.0, 1.0]).expect("two").median, 1.5, "of two, their mean");
        assert_eq!(Spread::of([]), None);
        assert_eq!(s.to_string(), "9100/s (lowest 8400, highest 10200)");
    }
}
