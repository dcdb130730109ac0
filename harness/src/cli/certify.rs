//! `ecosim certify`: the certification suite against a vendor's SAR and/or AVR, a
//! verdict per requirement, a signed bundle; `ecosim verify`: checks a bundle.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ecosim_core::System;
use ecosim_reports::Profile;

use super::run::{parse_sut, progress_bar, sut_config, suts_of};
use crate::certify::{self, Subject};
use crate::ecosystem::Ecosystem;

/// `ecosim certify` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The vendor's system under test: sar=URL and/or avr=URL (repeatable).
    #[arg(long, value_parser = parse_sut, required = true)]
    sut: Vec<(String, String)>,
    /// What to certify: sar, avr or sar+avr (default: what --sut gives).
    #[arg(long, value_parser = parse_profile)]
    profile: Option<Profile>,
    /// The first port of the national simulators the vendor's systems call (as `ecosim up`).
    #[arg(long, default_value_t = 8080)]
    base_port: u16,
    /// Seed of the ecosystem.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The vendor's name, for the bundle.
    #[arg(long)]
    vendor: Option<String>,
    /// The product's name.
    #[arg(long)]
    product: Option<String>,
    /// The product's version.
    #[arg(long)]
    version: Option<String>,
    /// Where the bundle goes.
    #[arg(long, default_value = "ecosim-certification")]
    out: PathBuf,
    /// The Ed25519 key that signs the manifest (64 hex characters); created when
    /// the file does not exist. Without it a new key signs, and its public key is
    /// printed and stored in the bundle.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// How long a result may take to reach Sistema TS, in seconds of real time
    /// (ORD-3.1t); the CUN may take 10 s more to reach the citizen.
    #[arg(long, default_value_t = crate::scenario::run::DEFAULT_SEND_BOUND_SECS)]
    send_bound: u64,
    /// The region your system serves (Ministry code): the suite's citizens live there
    /// and its labs and vaccinators use that region's accounts.
    #[arg(long, default_value = crate::scenario::run::DEFAULT_REGION, value_parser = parse_region)]
    region: String,
    /// Certification scenarios to use instead of the built-in suite (a folder with
    /// `sar/` and `avr/`).
    #[arg(long)]
    suite: Option<PathBuf>,
}

fn parse_region(s: &str) -> Result<String, String> {
    match ecosim_domain::regions::region_by_code(s) {
        Some(r) => Ok(r.code.to_owned()),
        None => Err(format!(
            "unknown region {s:?}: one of {}",
            ecosim_domain::regions::regions().iter().map(|r| r.code).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("unknown profile {s:?}: sar, avr or sar+avr"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut suts = suts_of(&args.sut)?;
    suts.send_bound = Some(args.send_bound);
    suts.region = Some(args.region.clone());
    let implied = Subject::implied_profile(&suts).context("give --sut sar=URL and/or --sut avr=URL")?;
    let profile = args.profile.unwrap_or(implied);
    if profile == Profile::SarAvr || profile == Profile::Sar {
        anyhow::ensure!(suts.sar.is_some(), "profile {} needs --sut sar=URL", profile.name());
    }
    if profile == Profile::Avr && suts.avr.is_none() && suts.sar.is_none() {
        anyhow::bail!("profile avr needs --sut avr=URL");
    }
    let files = certify::suite(profile, args.suite.as_deref())?;
    let (key, created) = match &args.signing_key {
        Some(file) => certify::load_or_create_key(file)?,
        None => (certify::generate_key()?, false),
    };
    if created && let Some(file) = &args.signing_key {
        println!("created a new signing key in {}", file.display());
    }
    let subject =
        Subject { suts: suts.clone(), profile, vendor: args.vendor, product: args.product, version: args.version };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let config = sut_config(args.seed, args.base_port);
    let clock_start = config.clock.start;
    let (done, manifest) = runtime.block_on(async {
        let mut config = config;
        config.urls.sar = suts.sar.clone().or(suts.avr.clone());
        let eco = Ecosystem::start_without(config, &[System::Sar]).await?;
        println!(
            "ecosim {} certifying profile {} ({} scenarios)",
            env!("CARGO_PKG_VERSION"),
            profile.name(),
            files.len()
        );
        for (system, addr) in eco.endpoints() {
            println!("  {:<14} http://{addr}", system.name());
        }
        println!("  {:<14} {}", "smtp", eco.smtp_addr());
        println!("  virtual clock starts at {clock_start} (wall-clock now; it does not move)");
        for (k, v) in suts.map() {
            println!("  under test: {k} {v}");
        }
        let done = certify::run(&eco, &subject, files, progress_bar()).await?;
        let manifest = certify::write_bundle(&eco, &done, &args.out, &key)?;
        eco.shutdown().await;
        anyhow::Ok((done, manifest))
    })?;
    for s in &done.report.scenarios {
        if let Some(step) = s.steps.iter().find(|st| st.outcome == ecosim_reports::Outcome::Failed) {
            println!(
                "FAIL {} (step {}): {}",
                s.id,
                step.name,
                step.message.as_deref().unwrap_or("").replace('\n', "\n     ")
            );
        }
    }
    print!("\n{}", certify::verdict_table(&done.report));
    println!("\nbundle: {} (signed by {})", args.out.display(), manifest.public_key);
    println!("result: {}", manifest.result);
    Ok(if done.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `ecosim verify` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The bundle folder.
    dir: PathBuf,
    /// The public key (hex) the bundle must be signed by.
    #[arg(long)]
    public_key: Option<String>,
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    match certify::verify(&args.dir, args.public_key.as_deref()) {
        Ok(m) => {
            println!(
                "{}: signature and {} file hashes verified; profile {}, result {}, signed by {}",
                args.dir.display(),
                m.files.len(),
                m.certification.profile.name(),
                m.result,
                m.public_key
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}: does not verify: {e}", args.dir.display());
            Ok(ExitCode::from(1))
        }
    }
}
