//! `ecosim-reports`: what a scenario run produced, written for machines and people.
//!
//! | writer | for |
//! |---|---|
//! | [`junit`] | CI systems: one `<testsuite>` per scenario folder, one `<testcase>` per scenario |
//! | [`json`] | tools: every scenario, every step, with its messages |
//! | [`markdown`] | people: the summary and the requirement coverage table |
//! | [`coverage`] | every requirement of the catalogue, the scenarios citing it, its verdict |
//! | [`html`] | workshops and reviews: one self-contained page with steps, a sequence diagram per scenario (inline SVG) and the coverage table |
//!
//! The certification report comes next; it reads the same [`RunReport`].

mod html;
mod requirements;

use std::collections::BTreeMap;

pub use html::html;
pub use requirements::{Requirement, catalogue};

/// One step of a scenario, as it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepReport {
    /// The step's kind and a short description (`lab.report mario POSITIVO`).
    pub name: String,
    /// `passed`, `failed` or `skipped` (after a failure).
    pub outcome: Outcome,
    /// Why it failed: expected and actual, and the last exchanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Real time taken, in milliseconds.
    pub duration_ms: f64,
}

/// A step's or scenario's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything expected happened.
    Passed,
    /// Something expected did not happen.
    Failed,
    /// Not run because an earlier step failed.
    Skipped,
}

/// One scenario, as it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioReport {
    /// The scenario's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The folder it came from (`flows`), the JUnit suite.
    pub suite: String,
    /// The file.
    pub file: String,
    /// Requirement ids it verifies.
    pub requirements: Vec<String>,
    /// Passed only if every step passed.
    pub outcome: Outcome,
    /// The steps.
    pub steps: Vec<StepReport>,
    /// Every exchange between systems during the scenario, in order.
    pub exchanges: Vec<ExchangeReport>,
    /// Real time taken, in milliseconds.
    pub duration_ms: f64,
}

/// One exchange between two systems (from the journal).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExchangeReport {
    /// Journal sequence number.
    pub seq: u64,
    /// Virtual time.
    pub time: String,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// Method (or `SMTP`).
    pub method: String,
    /// Path.
    pub path: String,
    /// Status (0: dropped connection).
    pub status: u16,
    /// Request body (cut).
    pub request_body: String,
    /// Response body (cut).
    pub response_body: String,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunReport {
    /// The seed every ecosystem of the run used.
    pub seed: u64,
    /// Every scenario, in file order.
    pub scenarios: Vec<ScenarioReport>,
}

impl RunReport {
    /// How many scenarios passed and failed.
    pub fn counts(&self) -> (usize, usize) {
        let passed = self.scenarios.iter().filter(|s| s.outcome == Outcome::Passed).count();
        (passed, self.scenarios.len() - passed)
    }
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one `<testsuite>` per folder, one `<testcase>` per scenario.
pub fn junit(run: &RunReport) -> String {
    let mut suites: BTreeMap<&str, Vec<&ScenarioReport>> = BTreeMap::new();
    for s in &run.scenarios {
        suites.entry(s.suite.as_str()).or_default().push(s);
    }
    let (_, failed) = run.counts();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ecosim\" tests=\"{}\" failures=\"{failed}\">\n",
        run.scenarios.len()
    );
    for (suite, scenarios) in suites {
        let failures = scenarios.iter().filter(|s| s.outcome != Outcome::Passed).count();
        let time: f64 = scenarios.iter().map(|s| s.duration_ms).sum::<f64>() / 1000.0;
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
            xml_escape(suite),
            scenarios.len()
        ));
        for s in scenarios {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
                xml_escape(suite),
                xml_escape(&s.id),
                xml_escape(&s.file),
                s.duration_ms / 1000.0
            ));
            let failure = s.steps.iter().find(|st| st.outcome == Outcome::Failed);
            match failure {
                None => out.push_str("/>\n"),
                Some(step) => {
                    let message = step.message.clone().unwrap_or_default();
                    out.push_str(&format!(
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(&format!("{}: {}", step.name, message.lines().next().unwrap_or(""))),
                        xml_escape(&message)
                    ));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A requirement's verdict in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Cited by at least one scenario, and every one of them passed.
    Passed,
    /// Cited by a scenario that failed.
    Failed,
    /// No scenario cites it.
    NotCovered,
}

/// One row of the coverage table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoverageRow {
    /// The requirement.
    pub requirement: Requirement,
    /// Scenarios citing it, with their outcome.
    pub scenarios: Vec<(String, Outcome)>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Every requirement of the catalogue with the scenarios that cite it.
pub fn coverage(run: &RunReport) -> Vec<CoverageRow> {
    catalogue()
        .iter()
        .map(|r| {
            let scenarios: Vec<(String, Outcome)> = run
                .scenarios
                .iter()
                .filter(|s| s.requirements.iter().any(|id| id == r.id))
                .map(|s| (s.id.clone(), s.outcome))
                .collect();
            let verdict = if scenarios.is_empty() {
                Verdict::NotCovered
            } else if scenarios.iter().all(|(_, o)| *o == Outcome::Passed) {
                Verdict::Passed
            } else {
                Verdict::Failed
            };
            CoverageRow { requirement: *r, scenarios, verdict }
        })
        .collect()
}

/// Requirement ids cited by scenarios that the catalogue does not know (typos).
pub fn unknown_requirements(run: &RunReport) -> Vec<(String, String)> {
    run.scenarios
        .iter()
        .flat_map(|s| s.requirements.iter().map(move |id| (s.id.clone(), id.clone())))
        .filter(|(_, id)| !catalogue().iter().any(|r| r.id == id))
        .collect()
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown: the scenarios, then the requirement coverage.
pub fn markdown(run: &RunReport) -> String {
    let (passed, failed) = run.counts();
    let mut out = format!("# ecosim run\n\n{passed} passed, {failed} failed (seed {}).\n\n", run.seed);
    out.push_str("| scenario | suite | result | requirements |\n|---|---|---|---|\n");
    for s in &run.scenarios {
        let result = if s.outcome == Outcome::Passed { "passed" } else { "**failed**" };
        out.push_str(&format!(
            "| {} | {} | {result} | {} |\n",
            md_cell(&s.id),
            md_cell(&s.suite),
            s.requirements.join(", ")
        ));
    }
    let rows = coverage(run);
    let covered = rows.iter().filter(|r| r.verdict != Verdict::NotCovered).count();
    out.push_str(&format!("\n## Requirement coverage\n\n{covered} of {} requirements covered.\n\n", rows.len()));
    out.push_str("| id | requirement | scenarios | verdict |\n|---|---|---|---|\n");
    for r in rows {
        let verdict = match r.verdict {
            Verdict::Passed => "passed",
            Verdict::Failed => "**failed**",
            Verdict::NotCovered => "_not covered_",
        };
        let names: Vec<&str> = r.scenarios.iter().map(|(n, _)| n.as_str()).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {verdict} |\n",
            r.requirement.id,
            md_cell(r.requirement.text),
            names.join(", ")
        ));
    }
    let unknown = unknown_requirements(run);
    if !unknown.is_empty() {
        out.push_str("\n## Unknown requirement ids\n\n");
        for (scenario, id) in unknown {
            out.push_str(&format!("- `{id}` in {scenario}\n"));
        }
    }
    out
}

/// JSON: the whole run.
pub fn json(run: &RunReport) -> String {
    serde_json::to_string_pretty(run).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunReport {
        let step = |outcome, message: Option<&str>| StepReport {
            name: "app.check_cun <mario>".into(),
            outcome,
            message: message.map(str::to_owned),
            duration_ms: 1.0,
        };
        RunReport {
            seed: 42,
            scenarios: vec![
                ScenarioReport {
                    id: "ok".into(),
                    title: "A & B".into(),
                    suite: "flows".into(),
                    file: "scenarios/flows/ok.yaml".into(),
                    requirements: vec!["ORD-4".into()],
                    outcome: Outcome::Passed,
                    steps: vec![step(Outcome::Passed, None)],
                    exchanges: vec![ExchangeReport {
                        seq: 1,
                        time: "2021-10-01T06:00:00Z".into(),
                        from: "lab-160".into(),
                        to: "sar".into(),
                        method: "POST".into(),
                        path: "/sar/v1/esiti".into(),
                        status: 202,
                        request_body: "{}".into(),
                        response_body: "{}".into(),
                    }],
                    duration_ms: 12.0,
                },
                ScenarioReport {
                    id: "ko".into(),
                    title: "broken".into(),
                    suite: "rules".into(),
                    file: "scenarios/rules/ko.yaml".into(),
                    requirements: vec![],
                    outcome: Outcome::Failed,
                    steps: vec![
                        step(Outcome::Failed, Some("expected status 401, got <204>")),
                        step(Outcome::Skipped, None),
                    ],
                    exchanges: vec![],
                    duration_ms: 3.0,
                },
            ],
        }
    }

    #[test]
    fn junit_has_a_suite_per_folder_and_escapes_text() {
        let xml = junit(&run());
        assert!(xml.contains("<testsuites name=\"ecosim\" tests=\"2\" failures=\"1\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"flows\" tests=\"1\" failures=\"0\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"rules\" tests=\"1\" failures=\"1\""), "{xml}");
        assert!(xml.contains("got &lt;204&gt;"), "{xml}");
        assert_eq!(xml.matches("<testcase").count(), 2);
    }

    #[test]
    fn coverage_lists_every_requirement_and_marks_the_uncovered() {
        let rows = coverage(&run());
        assert_eq!(rows.len(), catalogue().len());
        let ord4 = rows.iter().find(|r| r.requirement.id == "ORD-4").expect("ORD-4");
        assert_eq!(ord4.verdict, Verdict::Passed);
        let avr = rows.iter().find(|r| r.requirement.id == "AVR-5a").expect("AVR-5a");
        assert_eq!(avr.verdict, Verdict::NotCovered);
        let md = markdown(&run());
        assert!(md.contains("| ORD-4 |") && md.contains("_not covered_"), "{md}");
    }

    #[test]
    fn html_is_self_contained_with_a_diagram_and_coverage() {
        let page = html(&run());
        assert!(page.starts_with("<!DOCTYPE html>"));
        // No external assets: the only URL is the SVG namespace.
        assert_eq!(page.replace("http://www.w3.org/2000/svg", "").matches("http").count(), 0);
        assert!(page.contains("<svg") && page.contains("POST /sar/v1/esiti 202"), "{page}");
        assert!(page.contains("class=\"not-covered\""));
        assert!(page.contains("A &amp; B"));
    }

    #[test]
    fn json_carries_every_step() {
        let v: serde_json::Value = serde_json::from_str(&json(&run())).expect("valid json");
        assert_eq!(v["scenarios"][1]["steps"][1]["outcome"], "skipped");
        assert_eq!(v["seed"], 42);
    }
}
