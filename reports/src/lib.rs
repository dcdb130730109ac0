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
//! A certification run ([`RunReport::certification`] set, `ecosim certify`) judges only
//! the requirements of its [`Profile`]: the others are "not applicable", never passed
//! or failed; every writer shows the profile and the system under test.

mod html;
mod requirements;

use std::collections::BTreeMap;

pub use html::html;
pub use requirements::{Actor, Profile, Requirement, catalogue, requirement};

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
    /// Requirement ids this step verifies (`verifies:` in the file): their verdicts
    /// come from these steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verifies: Vec<String>,
    /// The step's line in its file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl StepReport {
    /// A step named `name` with `outcome`, no message, verifying nothing.
    pub fn new(name: impl Into<String>, outcome: Outcome) -> Self {
        Self { name: name.into(), outcome, message: None, duration_ms: 0.0, verifies: Vec::new(), line: None }
    }
}

/// A step's or scenario's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything expected happened.
    Passed,
    /// Something expected did not happen.
    Failed,
    /// Not run: an earlier step failed, or the scenario cannot run in this setting
    /// (a scenario that moves the clock against a system under test).
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
    /// Real time the request arrived, milliseconds since the Unix epoch (0: unknown).
    #[serde(default)]
    pub wall_ms: f64,
    /// Real time spent answering, in milliseconds.
    #[serde(default)]
    pub duration_ms: f64,
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
    /// Set when the run certifies a vendor's system (`ecosim certify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certification: Option<Certification>,
}

/// What a certification run certified, and with what.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Certification {
    /// The profile: which vendor systems.
    pub profile: Profile,
    /// The systems under test: `sar` / `avr` -> base URL.
    pub sut: BTreeMap<String, String>,
    /// Vendor, product and version, as declared.
    pub vendor: Option<String>,
    /// Product name.
    pub product: Option<String>,
    /// Product version.
    pub version: Option<String>,
}

impl RunReport {
    /// How many scenarios passed and failed (a skipped scenario is neither).
    pub fn counts(&self) -> (usize, usize) {
        let passed = self.scenarios.iter().filter(|s| s.outcome == Outcome::Passed).count();
        let failed = self.scenarios.iter().filter(|s| s.outcome == Outcome::Failed).count();
        (passed, failed)
    }

    /// The profile judged, if this is a certification run.
    pub fn profile(&self) -> Option<Profile> {
        self.certification.as_ref().map(|c| c.profile)
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
            out.push_str(">\n      <properties>\n");
            for id in &s.requirements {
                out.push_str(&format!("        <property name=\"requirement\" value=\"{}\"/>\n", xml_escape(id)));
            }
            out.push_str("      </properties>\n");
            let failure = s.steps.iter().find(|st| st.outcome == Outcome::Failed);
            if let Some(step) = failure {
                let message = step.message.clone().unwrap_or_default();
                out.push_str(&format!(
                    "      <failure message=\"{}\">{}</failure>\n",
                    xml_escape(&format!("{}: {}", step.name, message.lines().next().unwrap_or(""))),
                    xml_escape(&message)
                ));
            } else if s.outcome == Outcome::Skipped {
                let why = s.steps.iter().find_map(|st| st.message.clone()).unwrap_or_default();
                out.push_str(&format!("      <skipped message=\"{}\"/>\n", xml_escape(&why)));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A requirement's verdict in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every step that verifies it passed (or, with no step naming it, every
    /// scenario citing it passed).
    Passed,
    /// A step that verifies it failed or was not reached.
    Failed,
    /// No scenario of the run verifies it.
    NotCovered,
    /// A certification run whose profile does not judge it (another actor's).
    NotApplicable,
}

impl Verdict {
    /// `passed`, `failed`, `not covered`, `not applicable`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::NotCovered => "not covered",
            Self::NotApplicable => "not applicable",
        }
    }
}

/// A step that decided a requirement's verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecidingStep {
    /// The scenario's id.
    pub scenario: String,
    /// Its file.
    pub file: String,
    /// The step's number in the scenario, from 1 (0: the scenario as a whole).
    pub step: usize,
    /// The step's line in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The step's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// One row of the coverage table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoverageRow {
    /// The requirement.
    pub requirement: Requirement,
    /// Scenarios citing it, with their outcome.
    pub scenarios: Vec<(String, Outcome)>,
    /// The steps its verdict comes from.
    pub steps: Vec<DecidingStep>,
    /// The verdict.
    pub verdict: Verdict,
}

/// The steps that verify `id`: those naming it in `verifies`; where a scenario cites
/// the id but no step of it names it, the scenario as a whole (step 0).
fn deciding_steps(run: &RunReport, id: &str) -> Vec<DecidingStep> {
    let mut out = Vec::new();
    for s in run.scenarios.iter().filter(|s| s.outcome != Outcome::Skipped) {
        let named: Vec<(usize, &StepReport)> =
            s.steps.iter().enumerate().filter(|(_, st)| st.verifies.iter().any(|v| v == id)).collect();
        if named.is_empty() {
            if s.requirements.iter().any(|r| r == id) {
                out.push(DecidingStep {
                    scenario: s.id.clone(),
                    file: s.file.clone(),
                    step: 0,
                    line: None,
                    name: "(whole scenario)".into(),
                    outcome: s.outcome,
                });
            }
            continue;
        }
        for (i, st) in named {
            out.push(DecidingStep {
                scenario: s.id.clone(),
                file: s.file.clone(),
                step: i + 1,
                line: st.line,
                name: st.name.clone(),
                outcome: st.outcome,
            });
        }
    }
    out
}

/// Every requirement of the catalogue with the scenarios and steps that verify it and
/// its verdict; in a certification run, ids outside its profile are not applicable.
pub fn coverage(run: &RunReport) -> Vec<CoverageRow> {
    let profile = run.profile();
    catalogue()
        .iter()
        .map(|r| {
            let scenarios: Vec<(String, Outcome)> = run
                .scenarios
                .iter()
                .filter(|s| {
                    s.requirements.iter().any(|id| id == r.id)
                        || s.steps.iter().any(|st| st.verifies.iter().any(|v| v == r.id))
                })
                .map(|s| (s.id.clone(), s.outcome))
                .collect();
            let steps = deciding_steps(run, r.id);
            let verdict = if profile.is_some_and(|p| !r.applies_to(p)) {
                Verdict::NotApplicable
            } else if steps.is_empty() {
                Verdict::NotCovered
            } else if steps.iter().all(|st| st.outcome == Outcome::Passed) {
                Verdict::Passed
            } else {
                Verdict::Failed
            };
            CoverageRow { requirement: r.clone(), scenarios, steps, verdict }
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
    let title = if run.certification.is_some() { "ecosim certification" } else { "ecosim run" };
    let mut out = format!("# {title}\n\n{passed} passed, {failed} failed (seed {}).\n\n", run.seed);
    if let Some(c) = &run.certification {
        out.push_str(&format!("Profile **{}**; system under test: {}.\n\n", c.profile.name(), sut_line(c)));
    }
    out.push_str("| scenario | suite | result | requirements |\n|---|---|---|---|\n");
    for s in &run.scenarios {
        let result = match s.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "**failed**",
            Outcome::Skipped => "_skipped_",
        };
        out.push_str(&format!(
            "| {} | {} | {result} | {} |\n",
            md_cell(&s.id),
            md_cell(&s.suite),
            s.requirements.join(", ")
        ));
    }
    let failures: Vec<(&ScenarioReport, &StepReport)> = run
        .scenarios
        .iter()
        .flat_map(|s| s.steps.iter().filter(|st| st.outcome == Outcome::Failed).map(move |st| (s, st)))
        .collect();
    if !failures.is_empty() {
        out.push_str("\n## Failures\n");
        for (s, st) in failures {
            let at = st.line.map(|l| format!(":{l}")).unwrap_or_default();
            out.push_str(&format!(
                "\n### {} (`{}{at}`), step {}\n\n```\n{}\n```\n",
                s.id,
                s.file,
                st.name,
                st.message.as_deref().unwrap_or("").trim_end()
            ));
        }
    }
    let rows = coverage(run);
    let covered = rows.iter().filter(|r| matches!(r.verdict, Verdict::Passed | Verdict::Failed)).count();
    let judged = rows.iter().filter(|r| r.verdict != Verdict::NotApplicable).count();
    out.push_str(&format!("\n## Requirement verdicts\n\n{covered} of {judged} requirements covered.\n\n"));
    out.push_str("| id | actor | requirement | verified by | verdict |\n|---|---|---|---|---|\n");
    for r in rows {
        let verdict = match r.verdict {
            Verdict::Failed => "**failed**".to_owned(),
            Verdict::NotCovered | Verdict::NotApplicable => format!("_{}_", r.verdict.label()),
            Verdict::Passed => "passed".to_owned(),
        };
        let by: Vec<String> = r
            .steps
            .iter()
            .map(|st| if st.step == 0 { st.scenario.clone() } else { format!("{} #{}", st.scenario, st.step) })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {verdict} |\n",
            r.requirement.id,
            r.requirement.actor_text,
            md_cell(r.requirement.text),
            by.join(", ")
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

/// The systems under test of a certification, one line (`sar http://...`).
pub fn sut_line(c: &Certification) -> String {
    let mut parts: Vec<String> = c.sut.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let identity: Vec<&str> = [&c.vendor, &c.product, &c.version].into_iter().filter_map(|x| x.as_deref()).collect();
    if !identity.is_empty() {
        parts.insert(0, identity.join(" "));
    }
    parts.join(", ")
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
            verifies: Vec::new(),
            line: None,
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
                        wall_ms: 0.0,
                        duration_ms: 0.0,
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
            certification: None,
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
    fn a_verdict_comes_from_the_steps_that_verify_the_id() {
        let mut r = run();
        // The scenario cites ORD-4, but one step verifies ORD-3.1b and it failed.
        r.scenarios[0].steps.push(StepReport {
            verifies: vec!["ORD-3.1b".into()],
            line: Some(9),
            ..StepReport::new("sms.expect", Outcome::Failed)
        });
        let rows = coverage(&r);
        let row = |id: &str| rows.iter().find(|x| x.requirement.id == id).expect("row").clone();
        assert_eq!(row("ORD-3.1b").verdict, Verdict::Failed);
        assert_eq!(row("ORD-3.1b").steps[0].step, 2);
        assert_eq!(row("ORD-3.1b").steps[0].line, Some(9));
        // ORD-4 has no step of its own: the scenario as a whole decides (failed now).
        assert_eq!(row("ORD-4").steps[0].step, 0);
    }

    #[test]
    fn a_certification_judges_only_its_profile() {
        let mut r = run();
        r.certification = Some(Certification {
            profile: Profile::Sar,
            sut: [("sar".to_owned(), "http://sar.test".to_owned())].into(),
            vendor: Some("ACME".into()),
            product: Some("SAR".into()),
            version: Some("1.0".into()),
        });
        let rows = coverage(&r);
        for row in &rows {
            let national = !row.requirement.is_vendor_side();
            let avr_only = !row.requirement.applies_to(Profile::Sar);
            if national || avr_only {
                assert_eq!(row.verdict, Verdict::NotApplicable, "{}", row.requirement.id);
            }
        }
        assert_eq!(rows.iter().find(|x| x.requirement.id == "ORD-4").map(|x| x.verdict), Some(Verdict::NotApplicable));
        let md = markdown(&r);
        assert!(md.contains("Profile **sar**; system under test: ACME SAR 1.0, sar http://sar.test"), "{md}");
        let page = html(&r);
        assert!(page.contains("ACME SAR 1.0") && page.contains("not applicable"), "{page}");
    }

    #[test]
    fn junit_carries_the_requirement_ids_as_properties() {
        let xml = junit(&run());
        assert!(xml.contains("<property name=\"requirement\" value=\"ORD-4\"/>"), "{xml}");
    }

    #[test]
    fn json_carries_every_step() {
        let v: serde_json::Value = serde_json::from_str(&json(&run())).expect("valid json");
        assert_eq!(v["scenarios"][1]["steps"][1]["outcome"], "skipped");
        assert_eq!(v["seed"], 42);
    }
}
