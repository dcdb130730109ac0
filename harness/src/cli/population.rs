//! `ecosim population`: the seeded registry as JSON Lines or CSV.

use std::io::Write;
use std::process::ExitCode;

use clap::ValueEnum;
use ecosim_domain::population::{CitizenRecord, Population};

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line.
    Json,
    /// Comma-separated, with a header line.
    Csv,
}

/// `ecosim population` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seed: the same seed and size give the same people.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many citizens.
    #[arg(long, default_value_t = 10_000)]
    size: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let population = Population::generate(args.seed, args.size);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = write_all(&population, args.format, &mut out).and_then(|()| out.flush());
    super::stdout_result(written)
}

fn write_all(population: &Population, format: Format, out: &mut impl Write) -> std::io::Result<()> {
    if let Format::Csv = format {
        writeln!(out, "{}", CitizenRecord::FIELDS.join(","))?;
    }
    for citizen in population.iter() {
        let record = citizen.record();
        match format {
            Format::Json => {
                serde_json::to_writer(&mut *out, &record)?;
                writeln!(out)?;
            }
            Format::Csv => {
                let cells: Vec<String> = record.values().iter().map(|v| csv_cell(v)).collect();
                writeln!(out, "{}", cells.join(","))?;
            }
        }
    }
    Ok(())
}

/// Quotes a CSV cell when it holds a comma, quote or line break (RFC 4180).
fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}
