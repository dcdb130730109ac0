//! `ecosim codes check|gen`: small tools vendors use to make their own fixtures.

use std::io::Write;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use ecosim_domain::codes::{Authcode, CardNumber, Cuev, Cun, Nrfe, Nucg, Otp, identify};
use ecosim_domain::population::Population;
use ecosim_domain::regions::regions;
use ecosim_domain::rng::SeededRng;

/// `ecosim codes` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Say which kind of code CODE is and whether it is valid (exit 0 valid, 1 invalid).
    Check {
        /// The code: codice fiscale, CUN (with or without CUN-), OTP, AUTHCODE, NUCG,
        /// CUEV, NRFE, health card number or last 8 digits, mobile number, e-mail.
        code: String,
        /// The day a codice fiscale's two-digit year is read against (the latest year
        /// not after it); default: the day the virtual clock starts (`[clock] start`),
        /// not the wall clock, so the registry's people born in 1922 are not "born 2022".
        #[arg(long, value_name = "YYYY-MM-DD")]
        today: Option<jiff::civil::Date>,
    },
    /// Generate valid codes, one per line.
    Gen {
        /// Which kind.
        kind: Kind,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Seed: the same seed gives the same codes.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// Kinds `codes gen` makes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// Codice fiscale of a random person (consistent with name, birth date and place).
    Cf,
    /// Immuni OTP.
    Otp,
    /// CUN, written CUN-XXXXXXXXXX.
    Cun,
    /// AUTHCODE.
    Authcode,
    /// NUCG (recovery certificate number).
    Nucg,
    /// CUEV (exemption code).
    Cuev,
    /// NRFE (antigen-test report number).
    Nrfe,
    /// 20-digit health card number of a random region.
    Card,
}

pub(crate) fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { code, today } => Ok(check(&code, today.unwrap_or_else(clock_start))),
        Command::Gen { kind, count, seed } => {
            let mut rng = SeededRng::derive(seed, "codes-gen");
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written =
                (0..count).try_for_each(|_| writeln!(out, "{}", generate(kind, &mut rng))).and_then(|()| out.flush());
            super::stdout_result(written)
        }
    }
}

fn generate(kind: Kind, rng: &mut SeededRng) -> String {
    match kind {
        Kind::Cf => Population::random_codice_fiscale(rng).to_string(),
        Kind::Otp => Otp::generate(rng).to_string(),
        Kind::Cun => Cun::generate(rng).to_string(),
        Kind::Authcode => Authcode::generate(rng).to_string(),
        Kind::Nucg => Nucg::generate(rng).to_string(),
        Kind::Cuev => Cuev::generate(rng).to_string(),
        Kind::Nrfe => Nrfe::generate(rng).to_string(),
        Kind::Card => {
            let region = rng.pick(regions());
            CardNumber::generate(rng, region).to_string()
        }
    }
}

/// The day the virtual clock starts by default, in Rome.
fn clock_start() -> jiff::civil::Date {
    let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap_or(jiff::tz::TimeZone::UTC);
    tz.to_datetime(ecosim_core::config::Config::default().clock.start).date()
}

fn check(code: &str, today: jiff::civil::Date) -> ExitCode {
    let readings = identify(code, today);
    if readings.is_empty() {
        println!(
            "{code}: not a code ecosim knows (codice fiscale, CUN, OTP, AUTHCODE, NUCG, CUEV, NRFE, health card, mobile, e-mail)"
        );
        return ExitCode::from(1);
    }
    let valid: Vec<_> = readings.iter().filter_map(|r| r.verdict.as_ref().ok().map(|d| (r.kind, d))).collect();
    if valid.is_empty() {
        for r in &readings {
            if let Err(e) = &r.verdict {
                println!("{code}: invalid {}: {e}", r.kind);
            }
        }
        ExitCode::from(1)
    } else {
        for (kind, details) in valid {
            println!("{code}: valid {kind}: {details}");
        }
        ExitCode::SUCCESS
    }
}
