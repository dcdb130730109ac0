//! `ecosim up`: the whole ecosystem on fixed ports until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ecosim_core::System;
use ecosim_core::config::{Config, Urls};
use ecosim_domain::regions::regions;

use crate::ecosystem::Ecosystem;

/// `ecosim up` arguments; each overrides the configuration file.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A TOML configuration file (every key optional; see the ecosim-core `config` docs).
    #[arg(long)]
    config: Option<PathBuf>,
    /// First port: the control plane; Sistema TS +1, Immuni +2, AVN +3, PN-DGC +4,
    /// SMS gateway +5 (SMTP +25), SAR/AVR +6.
    #[arg(long)]
    base_port: Option<u16>,
    /// Seed for the population, codes and faults.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of citizens in the registry.
    #[arg(long)]
    population: Option<usize>,
    /// Keep state in SQLite files here, so a restart loses nothing (default: in memory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    ecosim_core::telemetry::init();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(p) = args.base_port {
        config.base_port = p;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(n) = args.population {
        config.population = n;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = Some(d);
    }
    if let Some(b) = args.bind {
        config.bind = b;
    }
    if let Some(warning) = bind_warning(config.bind) {
        eprintln!("{warning}");
    }
    if !config.bind.is_loopback() && config.admin.token.is_none() {
        config.admin.token = Some(fresh_token());
    }
    let external = external_systems(&config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let eco = Ecosystem::start_without(config, &external).await?;
        print_banner(&eco, &external);
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        eprintln!("stopping...");
        eco.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The systems the configuration's `[urls]` places elsewhere: `up` does not start
/// them, and the systems it runs reach them there (a vendor's SAR in place of the
/// reference one, say). The control plane is always `up`'s own, and the SMTP
/// listener the local gateway's.
fn external_systems(config: &Config) -> anyhow::Result<Vec<System>> {
    let mut external = Vec::new();
    for system in System::ALL {
        let Some(url) = config.configured_url(system) else { continue };
        let key = Urls::key(system);
        anyhow::ensure!(
            system != System::ControlPlane,
            "[urls] {key}: the control plane is always this ecosystem's own (it serves the dashboard and the \
             shared admin API); remove the key"
        );
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "[urls] {key} = {url:?}: write the system's base URL, starting with http:// or https://"
        );
        external.push(system);
    }
    anyhow::ensure!(
        config.urls.smtp.is_none() || external.contains(&System::SmsGateway),
        "[urls] smtp: e-mail goes to the SMS gateway's own SMTP listener when `up` runs the gateway; set smtp \
         only with [urls] sms_gateway"
    );
    Ok(external)
}

/// A warning when the systems listen beyond this machine: the APIs are open to
/// whoever can connect; the admin API (clock, faults, reset, journal) needs the
/// token `up` prints, and the journal is masked.
fn bind_warning(bind: std::net::IpAddr) -> Option<String> {
    (!bind.is_loopback()).then(|| {
        format!(
            "warning: listening on {bind}: anyone who can reach this machine can call the systems. The admin \
             API (clock, faults, reset, journal) needs the admin token printed below ([admin] token to choose \
             it), and the journal masks codici fiscali, CUNs, OTPs and card digits ([admin] mask_journal). \
             Use synthetic data only, and a firewall; the default --bind 127.0.0.1 keeps it local."
        )
    })
}

/// A fresh admin token: 128 bits from the operating system's random keys (those
/// `std` seeds its hash maps with), as hex.
fn fresh_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let half = || std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", half(), half())
}

fn print_banner(eco: &Ecosystem, external: &[System]) {
    let ctx = eco.context();
    let c = ctx.config();
    println!("ecosim {} is up", env!("CARGO_PKG_VERSION"));
    println!(
        "  seed {}, {} citizens, clock at {}, state {}",
        c.seed,
        ctx.population().len(),
        ctx.clock().now(),
        match &c.data_dir {
            Some(d) => format!("in {}", d.display()),
            None => "in memory".to_owned(),
        }
    );
    println!();
    println!("endpoints:");
    for (system, addr) in eco.endpoints() {
        let api = if *system == System::ControlPlane { "" } else { ", API: /openapi.json" };
        println!("  {:<14} http://{addr}   (health: /_admin/health{api})", system.name());
    }
    for &system in external {
        println!(
            "  {:<14} {}   (elsewhere, from [urls]: not started here)",
            system.name(),
            ctx.config().url_of(system)
        );
    }
    if !external.contains(&System::SmsGateway) {
        println!("  {:<14} smtp://{}", "smtp", eco.smtp_addr());
    }
    println!();
    let dashboard = eco.url(System::ControlPlane);
    match &c.admin.token {
        Some(token) => {
            println!("dashboard (open in a browser): {dashboard}/#token={token}");
            println!("admin API (all but health): Authorization: Bearer {token}");
        }
        None => println!("dashboard (open in a browser): {dashboard}/"),
    }
    if c.masks_journal() {
        println!("journal: identifiers masked (codici fiscali, CUNs, OTPs, card digits)");
    }
    println!();
    println!("accounts (HTTP Basic; Bearer <password> where tokens are used):");
    let codes: Vec<&str> = regions().iter().map(|r| r.code).collect();
    println!("  per region R in {}:", codes.join(" "));
    println!("    sar-R, avr-R, lab-R, vaccinatore-R, asl-R   password: <account>-secret");
    println!("  callcenter-1, supervisore-1                  password: <account>-secret");
    println!("  immuni, sistema-ts, avn, pn-dgc, sar         password: <account>-secret (service accounts)");
    println!("  sms-client                                   password: sms-client-secret");
    for extra in &c.accounts {
        println!("  {} (from the configuration)               password: {}", extra.name, extra.password);
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

#[cfg(test)]
mod tests {
    #[test]
    fn binding_beyond_loopback_warns_and_loopback_does_not() {
        assert!(super::bind_warning([127, 0, 0, 1].into()).is_none());
        assert!(super::bind_warning(std::net::Ipv6Addr::LOCALHOST.into()).is_none());
        let w = super::bind_warning([0, 0, 0, 0].into()).expect("a warning");
        assert!(w.contains("0.0.0.0") && w.contains("admin token"), "{w}");
        let (a, b) = (super::fresh_token(), super::fresh_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
