//! Scenario files: the YAML grammar, loading with precise errors, and running.
//!
//! ```yaml
//! id: cun-positive-sms
//! title: Positive molecular test, CUN by SMS
//! requirements: [ORD-3.1a, ORD-3.1b, ORD-3.1c, ORD-4, ORD-6.1a]
//! given:
//!   citizens:
//!     mario: { region: "160", mobile: true, minor: false }
//! steps:
//!   - lab.report: { citizen: mario, esito: POSITIVO }
//!   - sms.expect: { to: mario, within: 10s, text: 'CUN-(?P<cun>[AEFHIJKLQRSUWXYZ1-9]{10})' }
//!   - clock.advance: 15d
//!   - app.check_cun: { citizen: mario, cun: "{{cun}}" }
//!     expect: { status: 401, error_code: 1101 }
//! ```
//! A step is a map with exactly one action (see [`model::STEP_NAMES`], the
//! [`model::Action`] enum) and an optional `expect`. `{{name}}` in a string is a variable captured earlier (named
//! regex groups of `sms.expect`/`mail.expect`, the `cun` of `ts.submit`, the OTP of
//! `app.new_otp`). Always set: `{{today}}` (the clock's date), `{{today-N}}` /
//! `{{today+N}}` (N days from it), `{{region}}` (the region certified, default 160) and
//! `{{other_region}}` (another one), `{{send_bound}}` and `{{delivery_bound}}` (how long a
//! system under test may take to reach Sistema TS, and the citizen: 60 s and 70 s
//! unless `ecosim certify --send-bound` says otherwise), and for each citizen `mario`
//! `{{mario.cf}}`, `{{mario.region}}`, `{{mario.card8}}`, `{{mario.card_expiry}}`.
//!
//! A step may list the requirement ids it `verifies`; a requirement's verdict comes
//! from those steps. A failed check that only looks (`journal.*`, `*.absent`, an
//! `sms.expect`/`mail.expect` without captures) does not stop the scenario, so each
//! requirement is judged by its own steps. Loading errors name the file, line and
//! column, and suggest the closest valid step or field name.

mod actions;
pub mod model;
pub mod play;
pub mod run;
mod runner;

use std::path::{Path, PathBuf};

pub use model::Scenario;
pub use runner::StepError;

/// The JSON Schema of scenario files (for editors: `scenarios/schema.json`).
pub fn schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a valid scenario.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, where, and a hint.
        message: String,
    },
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Adds "did you mean `x`?" to serde's "unknown field `y`, expected one of ..." messages.
fn with_hint(message: &str) -> String {
    let Some(rest) = message.split("unknown field `").nth(1) else { return message.to_owned() };
    let Some((unknown, after)) = rest.split_once('`') else { return message.to_owned() };
    let candidates: Vec<String> = after
        .split("expected one of")
        .nth(1)
        .map(|list| {
            list.lines()
                .next()
                .unwrap_or("")
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let best = candidates.iter().min_by_key(|c| edit_distance(unknown, c));
    match best {
        Some(b) if edit_distance(unknown, b) <= 3 => format!("{message}\nhint: did you mean `{b}`?"),
        _ => message.to_owned(),
    }
}

/// Parses scenario text (`path` only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let invalid = |message: String| LoadError::Invalid { path: path.to_owned(), message };
    let mut scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| invalid(with_hint(&e.to_string())))?;
    scenario.lines = step_lines(text);
    Ok(scenario)
}

/// The line (from 1) of each item of the top-level `steps:` list.
fn step_lines(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        if depth == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('-') {
            in_steps = trimmed.starts_with("steps:");
            continue;
        }
        if !in_steps || !trimmed.starts_with("- ") {
            continue;
        }
        if *indent.get_or_insert(depth) == depth {
            out.push(i + 1);
        }
    }
    out
}

/// Reads and parses one file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// Every `.yaml`/`.yml` file under `paths` (files as given, folders recursively), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|source| LoadError::Io { path: dir.clone(), source })?;
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if matches!(path.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                        out.push(path);
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_step_points_at_its_line_and_suggests_the_right_name() {
        let text = "id: x\ntitle: t\nsteps:\n  - lab.reprot: { citizen: a, esito: POSITIVO }\n";
        let err = parse(Path::new("s.yaml"), text).unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("did you mean `lab.report`?"), "{err}");
    }

    #[test]
    fn a_step_with_two_actions_is_refused() {
        let text = "id: x\ntitle: t\nsteps:\n  - clock.advance: 1d\n    app.new_otp: {}\n";
        let err = parse(Path::new("s.yaml"), text).unwrap_err().to_string();
        assert!(err.contains("a step has exactly one action; this one has clock.advance and app.new_otp"), "{err}");
        assert!(err.contains("line 4") || err.contains("line 5"), "{err}");
    }

    #[test]
    fn a_step_without_an_action_is_refused_and_one_with_two_expects_too() {
        let text = "id: x\ntitle: t\nsteps:\n  - expect: { status: 200 }\n";
        let err = parse(Path::new("s.yaml"), text).unwrap_err().to_string();
        assert!(err.contains("a step needs an action, one of: lab.report"), "{err}");
        let text = "id: x\ntitle: t\nsteps:\n  - app.new_otp: {}\n    expect: {}\n    expect: {}\n";
        assert!(parse(Path::new("s.yaml"), text).is_err());
    }

    #[test]
    fn a_step_reads_as_its_action_with_expect_and_verifies() {
        let text = "id: x\ntitle: t\nsteps:\n  - clock.advance: 15d\n    verifies: [ORD-4]\n  - app.new_otp: { save: o }\n    expect: { status: 204 }\n";
        let s = parse(Path::new("s.yaml"), text).expect("valid");
        assert!(matches!(&s.steps[0].action, model::Action::ClockAdvance(d) if d == "15d"));
        assert_eq!(s.steps[0].verifies, ["ORD-4"]);
        assert_eq!(s.steps[1].action.name(), "app.new_otp");
        assert_eq!(s.steps[1].expect.as_ref().and_then(|e| e.status), Some(204));
        assert!(s.moves_the_clock());
    }

    #[test]
    fn each_step_knows_its_line() {
        let text = "id: x\ntitle: t\nsteps:\n  # a comment\n  - clock.advance: 1d\n  - fault:\n      system: avn\n      action: { drop: true }\n\n  - app.new_otp: {}\n";
        let s = parse(Path::new("s.yaml"), text).expect("valid");
        assert_eq!(s.lines, vec![5, 6, 10]);
    }

    #[test]
    fn edit_distance_counts_changes() {
        assert_eq!(edit_distance("lab.reprot", "lab.report"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
