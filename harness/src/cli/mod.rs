//! The `ecosim` command line.
//!
//! One file per command; each exposes `run(args) -> anyhow::Result<ExitCode>`.

mod app;
mod bench;
mod certify;
mod codes;
mod load;
mod mutants;
mod population;
mod run;
mod up;

pub(crate) use run::sut_config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A simulated Italian national health-IT ecosystem for integration testing.
#[derive(Debug, Parser)]
#[command(name = "ecosim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the ecosystem on fixed ports; Ctrl-C stops it cleanly.
    Up(up::Args),
    /// Check or generate national codes (codice fiscale, CUN, OTP, AUTHCODE...).
    #[command(subcommand)]
    Codes(codes::Command),
    /// Run scenario files or folders; exit 0 only if every scenario passed.
    Run(run::Args),
    /// Certify a vendor's SAR and/or AVR: the certification suite, a verdict per
    /// requirement, a signed bundle; exit 0 only if every requirement of the profile passed.
    Certify(certify::Args),
    /// Check a certification bundle's signature and file hashes; exit 1 on any change.
    Verify(certify::VerifyArgs),
    /// Print the JSON Schema of scenario files (shipped as scenarios/schema.json).
    Schema,
    /// Print the seeded synthetic population, one citizen a line.
    Population(population::Args),
    /// Break each requirement in turn (a mutant in the system that owns it) and run
    /// the scenarios citing it: which scenario catches it; exit 0 only if all are caught.
    Mutants(mutants::Args),
    /// Drive lab results at a constant rate (open loop) through the reference SAR or a
    /// vendor's, and check every acknowledged result got one CUN and one SMS; exit 0
    /// only if nothing was lost, duplicated or refused.
    Load(load::Args),
    /// The citizen's virtual Immuni app against a running ecosystem: new-otp,
    /// check-otp, check-cun, upload, get-dgc (hashes, padding and keys done for you).
    App(app::Args),
    /// Measure throughput and memory.
    #[command(subcommand)]
    Bench(bench::Command),
}

/// Parses the arguments and runs the command; errors are printed, exit code 2.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args),
        Command::Codes(cmd) => codes::run(cmd),
        Command::Population(args) => population::run(args),
        Command::Run(args) => run::run(args),
        Command::Certify(args) => certify::run(args),
        Command::Verify(args) => certify::verify(args),
        Command::Schema => {
            print!("{}", crate::scenario::schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Mutants(args) => mutants::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Load(args) => load::run(args),
        Command::App(args) => app::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ecosim: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes to stdout, treating a closed pipe (`ecosim population | head`) as success.
fn stdout_result(r: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}
