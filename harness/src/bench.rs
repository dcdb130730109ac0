//! Benchmarks behind `ecosim bench`: figures the README reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecosim_core::System;
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
    /// Share of negative results, in percent (each also yields a test certificate and its AUTHCODE SMS).
    pub negatives: u8,
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
    }
}

/// Runs `journeys` CUN journeys with `concurrency` lab reports in flight, in a fresh
/// in-process ecosystem on loopback (no artificial waits, no fault rules).
/// `negatives` percent of the results are negative: Sistema TS then also sends
/// PN-DGC a test event, which becomes a signed certificate and an AUTHCODE SMS, work
/// that shares the same two cores (only the CUN SMS are counted).
pub async fn cun_journeys(
    journeys: usize,
    concurrency: usize,
    data_dir: Option<PathBuf>,
    negatives: u8,
) -> anyhow::Result<CunJourneys> {
    let negatives = negatives.min(100);
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
    let people: Vec<(String, String, String)> = ctx
        .population()
        .iter()
        .filter(|c| c.mobile().is_some() && !c.is_minor_on(today))
        .map(|c| {
            (
                c.codice_fiscale().to_string(),
                c.mobile().map(|m| m.to_string()).unwrap_or_default(),
                format!("lab-{}", c.region().code),
            )
        })
        .collect();
    anyhow::ensure!(!people.is_empty(), "no citizen with a mobile number");
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build()?;
    let sar = eco.url(System::Sar);
    let gateway = eco.url(System::SmsGateway);
    let before = delivered(&http, &gateway).await?;
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..journeys {
        let (cf, mobile, lab) = people[i % people.len()].clone();
        let permit = gate.clone().acquire_owned().await?;
        let (http, sar) = (http.clone(), sar.clone());
        let day = today.to_string();
        tasks.spawn(async move {
            let body = json!({
                "codice_fiscale": cf, "esito": if i % 100 < usize::from(negatives) { "NEGATIVO" } else { "POSITIVO" },
                "tipo_test": "MOLECOLARE", "data_esecuzione": day, "struttura": "BENCH-LAB",
                "contatti": {"cellulare": mobile},
            });
            let res = http
                .post(format!("{sar}/sar/v1/esiti"))
                .basic_auth(&lab, Some(format!("{lab}-secret")))
                .json(&body)
                .send()
                .await;
            drop(permit);
            match res {
                Ok(r) if r.status().as_u16() == 202 => Ok(()),
                Ok(r) => Err(anyhow::anyhow!("the SAR answered {}", r.status())),
                Err(e) => Err(e.into()),
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = delivered(&http, &gateway).await? - before;
        if n >= journeys as u64 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {n} of {journeys} SMS delivered after 2 minutes");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed();
    eco.shutdown().await;
    Ok(CunJourneys { journeys, elapsed, storage, negatives })
}

async fn delivered(http: &reqwest::Client, gateway: &str) -> anyhow::Result<u64> {
    let state: Value = http.get(format!("{gateway}/_admin/state")).send().await?.json().await?;
    // Only the CUN SMS: negative results also bring green-pass AUTHCODEs (`Min Salute`).
    anyhow::ensure!(state["simulator"]["per_mittente"].is_object(), "the gateway's state has no counts by sender");
    Ok(state["simulator"]["per_mittente"][ecosim_domain::messages::CUN_SMS_SENDER].as_u64().unwrap_or(0))
}
