//! `ecosim bench`: throughput and memory figures, as the README reports them.

use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;
use ecosim_domain::population::Population;

/// `ecosim bench` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a population and report time and memory (target: 1,000,000 in < 3 s, < 600 MB).
    Population {
        /// How many citizens.
        #[arg(long, default_value_t = 1_000_000)]
        size: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Start and stop the in-process ecosystem a scenario runs in (target: well under 100 ms).
    Start {
        /// How many times.
        #[arg(long, default_value_t = 20)]
        times: usize,
    },
    /// Memory under anonymous load: POSTs without credentials to Sistema TS (each
    /// refused 401, each journaled), with resident memory and the journal's size
    /// (target: bounded by the journal budget, whatever the count or the body size).
    Memory {
        /// How many requests.
        #[arg(long, default_value_t = 1_000_000)]
        requests: usize,
        /// Bytes in each body.
        #[arg(long, default_value_t = 200)]
        body_bytes: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Sistema TS's intake over virtual days: results straight to Sistema TS, the
    /// clock moved a day after each day's, throughput per day (target: the last
    /// day within 20% of the first, as purges keep the tables at 14 days' worth).
    Intake {
        /// Virtual days.
        #[arg(long, default_value_t = 20)]
        days: usize,
        /// Results per day.
        #[arg(long, default_value_t = 50_000)]
        per_day: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The workshop dashboard in headless Chromium (needs `chromium` and
    /// `chromium-driver`): page load time, and whether the live diagram keeps up with
    /// a steady stream of exchanges (target: loads in under a second, follows 100/s).
    Dashboard {
        /// Exchanges per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// Idle connections: sockets that send half a request (or nothing) and wait, on
    /// Sistema TS's port, while health is checked (target: health answers; the
    /// ecosystem holds no more than its cap).
    Connections {
        /// How many idle sockets (this process holds them too: mind `ulimit -n`).
        #[arg(long, default_value_t = 15_000)]
        idle: usize,
    },
    /// Requests per second on a few routes against a bare axum server in the same
    /// process, and their ratio (target: Sistema TS's intake at >= 0.5 of bare axum),
    /// with latency percentiles. Sistema TS's intake requests each carry a new
    /// `Idempotency-Key`, as a SAR sends them.
    Http {
        /// Seconds per run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds (each route: one ecosim run and one bare run per round); medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Give each system its own thread and runtime (`thread_per_system`).
        #[arg(long)]
        thread_per_system: bool,
        /// Only the routes whose name contains this (e.g. `test-results`).
        #[arg(long)]
        only: Option<String>,
    },
    /// End-to-end CUN journeys (lab -> SAR -> Sistema TS -> SMS delivered), in process
    /// over loopback HTTP, a thread per system (target: 5,000 journeys/s in memory).
    Cun {
        /// How many journeys.
        #[arg(long, default_value_t = 20_000)]
        journeys: usize,
        /// Lab reports in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Keep the databases on disk here, a new or empty directory (default: in memory).
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Percent of negative results (each also yields a green-pass test certificate).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
        negatives: u8,
        /// Runs, each in a fresh ecosystem (on disk, in `run-N` under --data-dir); with
        /// more than one, their median, lowest and highest (the target is a median of 5).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        runs: u16,
    },
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Start { times } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let mut samples = Vec::with_capacity(times);
            runtime.block_on(async {
                for i in 0..times.max(1) {
                    let t0 = Instant::now();
                    let eco =
                        crate::ecosystem::Ecosystem::start(ecosim_core::config::Config::for_tests(i as u64)).await?;
                    samples.push(t0.elapsed());
                    eco.shutdown().await;
                }
                anyhow::Ok(())
            })?;
            samples.sort();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            println!("ecosystem start (7 systems, 2,000 citizens, in-memory stores), {} runs:", samples.len());
            println!(
                "  median {:.1} ms, worst {:.1} ms",
                ms(samples[samples.len() / 2]),
                ms(samples[samples.len() - 1])
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Cun { journeys, concurrency, data_dir, negatives, runs } => {
            // The ecosystem runs a thread per system; the lab client gets one of its own.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let mut done = Vec::with_capacity(usize::from(runs));
            for n in 1..=runs {
                let dir = match &data_dir {
                    Some(d) if runs > 1 => Some(d.join(format!("run-{n}"))),
                    other => other.clone(),
                };
                let run = runtime.block_on(crate::bench::cun_journeys(journeys, concurrency, dir, negatives))?;
                run.print();
                done.push(run);
            }
            if runs > 1
                && let Some(spread) = crate::bench::Spread::of(done.iter().map(crate::bench::CunJourneys::per_second))
            {
                println!("{runs} runs: median {spread}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Http { seconds, rounds, connections, thread_per_system, only } => {
            crate::bench::http_ratios(seconds, rounds, connections, thread_per_system, only.as_deref())?.print();
            Ok(ExitCode::SUCCESS)
        }
        Command::Memory { requests, body_bytes, concurrency } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(crate::bench::memory_under_anonymous_load(requests, body_bytes, concurrency))?.print();
            Ok(ExitCode::SUCCESS)
        }
        Command::Intake { days, per_day, concurrency } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(crate::bench::intake_over_time(days, per_day, concurrency))?.print();
            Ok(ExitCode::SUCCESS)
        }
        Command::Dashboard { rate, seconds } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(crate::bench::dashboard_follow(rate, seconds))?.print();
            Ok(ExitCode::SUCCESS)
        }
        Command::Connections { idle } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(crate::bench::idle_connections(idle))?.print();
            Ok(ExitCode::SUCCESS)
        }
        Command::Population { size, seed } => {
            let rss_before = resident_bytes();
            let started = Instant::now();
            let population = Population::generate(seed, size);
            let elapsed = started.elapsed();
            let rss_after = resident_bytes();
            let omocodes = population.iter().filter(|c| c.codice_fiscale().is_omocode()).count();
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            println!("population: {} citizens (seed {seed})", population.len());
            println!(
                "  generated in {:.2} s ({:.0} citizens/s)",
                elapsed.as_secs_f64(),
                population.len() as f64 / elapsed.as_secs_f64().max(1e-9)
            );
            println!("  estimated heap {:.0} MiB", mib(population.heap_bytes() as u64));
            match (rss_before, rss_after) {
                (Some(b), Some(a)) => {
                    println!("  resident memory grew {:.0} MiB (now {:.0} MiB)", mib(a.saturating_sub(b)), mib(a))
                }
                _ => println!("  resident memory: not available on this platform"),
            }
            println!("  omocode variants: {omocodes}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resident set size from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
