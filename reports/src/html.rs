//! The HTML report: one self-contained page (no external assets), for workshops and
//! reviews. Per scenario: its steps, and a sequence diagram of the messages between
//! systems drawn as inline SVG. Then the requirement coverage table, "not covered"
//! in its own colour.

use crate::{ExchangeReport, Outcome, RunReport, ScenarioReport, Verdict, coverage};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.passed{background:#e6f4ea}\
.failed{background:#fce8e6}.skipped{color:#888}.not-covered{background:#fff4ce}.not-applicable{color:#888}pre{white-space:pre-wrap;margin:0}\
svg text{font-size:11px;font-family:monospace}";

/// The participant a journal name stands for: a region's SAR and AVR accounts
/// (`sar-160`, `avr-160`, used by the reference SAR/AVR) and the SAR's mail sender are
/// the SAR; Sistema TS's mail sender is Sistema TS; an
/// unauthenticated reader (inboxes, the harness) is the observer.
fn actor(name: &str) -> &str {
    if name.starts_with("sar-") || name.starts_with("avr-") || name.starts_with("cun@sar-") {
        "sar"
    } else if name == "cun@sistemats.test" {
        "sistema-ts"
    } else if name == "anonymous" {
        "observer"
    } else {
        name
    }
}

/// One arrow of a diagram: a run of identical exchanges folded into one.
struct Arrow<'a> {
    e: &'a ExchangeReport,
    times: usize,
    /// Made while answering an earlier arrow's request (drawn nested under it).
    caused: bool,
}

/// Folds repeats (the same call with the same answer, one after the other) and marks
/// calls a system made while it was answering another.
fn arrows(exchanges: &[ExchangeReport]) -> Vec<Arrow<'_>> {
    let mut order: Vec<&ExchangeReport> = exchanges.iter().collect();
    // Journalled when answered: draw them in the order they were asked.
    if order.iter().all(|e| e.wall_ms > 0.0) {
        order.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms).then(a.seq.cmp(&b.seq)));
    }
    let same = |a: &ExchangeReport, b: &ExchangeReport| {
        actor(&a.from) == actor(&b.from)
            && a.to == b.to
            && a.method == b.method
            && a.path.split('?').next() == b.path.split('?').next()
            && a.status == b.status
    };
    let mut out: Vec<Arrow<'_>> = Vec::new();
    for (i, e) in order.iter().enumerate() {
        if let Some(last) = out.last_mut()
            && same(last.e, e)
        {
            last.times += 1;
            continue;
        }
        let caused = e.wall_ms > 0.0
            && order[..i].iter().any(|p| {
                actor(&p.to) == actor(&e.from) && p.wall_ms <= e.wall_ms && e.wall_ms <= p.wall_ms + p.duration_ms
            });
        out.push(Arrow { e, times: 1, caused });
    }
    out
}

/// The sequence diagram of a scenario's exchanges, as inline SVG that shrinks to the
/// page's width.
fn sequence(s: &ScenarioReport) -> String {
    let mut actors: Vec<&str> = Vec::new();
    for e in &s.exchanges {
        for a in [actor(&e.from), actor(&e.to)] {
            if !actors.contains(&a) {
                actors.push(a);
            }
        }
    }
    if actors.is_empty() {
        return "<p>No exchanges.</p>".into();
    }
    let arrows = arrows(&s.exchanges);
    let col = 170;
    let row = 26;
    let width = col * actors.len() + 40;
    let height = 60 + row * arrows.len() + 20;
    let x = |a: &str| 20 + col * actors.iter().position(|b| *b == a).unwrap_or(0) + col / 2;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px\" role=\"img\" aria-label=\"sequence diagram\">\
         <defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#333\"/></marker></defs>"
    );
    for a in &actors {
        let cx = x(a);
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"10\" width=\"{}\" height=\"24\" fill=\"#eef\" stroke=\"#99c\"/><text x=\"{cx}\" y=\"26\" text-anchor=\"middle\">{}</text>\
             <line x1=\"{cx}\" y1=\"34\" x2=\"{cx}\" y2=\"{}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>",
            cx - col / 2 + 10,
            col - 20,
            esc(a),
            height - 10
        ));
    }
    for (i, arrow) in arrows.iter().enumerate() {
        let e = arrow.e;
        let y = 54 + row * i;
        let (x1, x2) = (x(actor(&e.from)), x(actor(&e.to)));
        let colour = if e.status == 0 || e.status >= 500 {
            "#c00"
        } else if e.status >= 400 {
            "#b60"
        } else {
            "#333"
        };
        let label = format!(
            "{}{} {} {}{}",
            if arrow.caused { "\u{21b3} " } else { "" },
            e.method,
            e.path.split('?').next().unwrap_or(""),
            if e.status == 0 { "dropped".to_owned() } else { e.status.to_string() },
            if arrow.times > 1 { format!(" \u{00d7}{}", arrow.times) } else { String::new() }
        );
        let dash = if arrow.caused { " stroke-dasharray=\"6 2\"" } else { "" };
        svg.push_str(&format!(
            "<g><title>{}</title><line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{colour}\"{dash} marker-end=\"url(#arrow)\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{colour}\">{}</text></g>",
            esc(&format!("{} -> {} at {}: {}", e.from, e.to, e.time, e.request_body.chars().take(300).collect::<String>())),
            (x1 + x2) / 2,
            y - 4,
            esc(&label)
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn class(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
    }
}

/// The whole page.
pub fn html(run: &RunReport) -> String {
    let (passed, failed) = run.counts();
    let title = if run.certification.is_some() { "ecosim certification" } else { "ecosim run" };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style></head><body>\
         <h1>{title}</h1><p>{passed} passed, {failed} failed (seed {}).</p>",
        run.seed
    );
    if let Some(c) = &run.certification {
        let rows = coverage(run);
        let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
        out.push_str(&format!(
            "<p class=\"certification\">Profile <b>{}</b>; system under test: {}. Requirements: {} passed, {} failed, \
             {} not covered, {} not applicable.</p>",
            esc(c.profile.name()),
            esc(&crate::sut_line(c)),
            count(Verdict::Passed),
            count(Verdict::Failed),
            count(Verdict::NotCovered),
            count(Verdict::NotApplicable)
        ));
    }
    out.push_str("<table><tr><th>scenario</th><th>suite</th><th>result</th><th>requirements</th><th>ms</th></tr>");
    for s in &run.scenarios {
        out.push_str(&format!(
            "<tr class=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
            class(s.outcome),
            esc(&s.id),
            esc(&s.id),
            esc(&s.suite),
            class(s.outcome),
            esc(&s.requirements.join(", ")),
            s.duration_ms
        ));
    }
    out.push_str("</table>");
    for s in &run.scenarios {
        out.push_str(&format!(
            "<h2 id=\"{}\">{}</h2><p>{}</p><table><tr><th>step</th><th>result</th><th>ms</th><th>message</th></tr>",
            esc(&s.id),
            esc(&s.id),
            esc(&s.title)
        ));
        for st in &s.steps {
            out.push_str(&format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{:.0}</td><td><pre>{}</pre></td></tr>",
                class(st.outcome),
                esc(&st.name),
                class(st.outcome),
                st.duration_ms,
                esc(st.message.as_deref().unwrap_or(""))
            ));
        }
        out.push_str("</table>");
        out.push_str(&sequence(s));
    }
    let rows = coverage(run);
    let covered = rows.iter().filter(|r| matches!(r.verdict, Verdict::Passed | Verdict::Failed)).count();
    let judged = rows.iter().filter(|r| r.verdict != Verdict::NotApplicable).count();
    out.push_str(&format!(
        "<h2 id=\"coverage\">Requirement verdicts</h2><p>{covered} of {judged} requirements covered.</p>\
         <table><tr><th>id</th><th>actor</th><th>requirement</th><th>verified by</th><th>verdict</th></tr>"
    ));
    for r in rows {
        let cls = match r.verdict {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::NotCovered => "not-covered",
            Verdict::NotApplicable => "not-applicable",
        };
        let names: Vec<String> = r
            .steps
            .iter()
            .map(|st| {
                let label = if st.step == 0 { st.scenario.clone() } else { format!("{} #{}", st.scenario, st.step) };
                format!("<a href=\"#{}\">{}</a>", esc(&st.scenario), esc(&label))
            })
            .collect();
        out.push_str(&format!(
            "<tr class=\"{cls}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.requirement.id),
            esc(r.requirement.actor_text),
            esc(r.requirement.text),
            names.join(", "),
            r.verdict.label()
        ));
    }
    out.push_str("</table></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{actor, arrows};
    use crate::ExchangeReport;

    fn exchange(seq: u64, from: &str, to: &str, path: &str, wall_ms: f64, duration_ms: f64) -> ExchangeReport {
        ExchangeReport {
            seq,
            time: String::new(),
            from: from.into(),
            to: to.into(),
            method: "POST".into(),
            path: path.into(),
            status: 200,
            wall_ms,
            duration_ms,
            request_body: String::new(),
            response_body: String::new(),
        }
    }

    #[test]
    fn repeats_fold_and_calls_made_while_answering_nest_in_asking_order() {
        let list = vec![
            // Journalled when answered: the SAR's call to Sistema TS comes out first.
            exchange(1, "sar-160", "sistema-ts", "/ts/v1/test-results", 1_010.0, 5.0),
            exchange(2, "lab-160", "sar", "/sar/v1/esiti", 1_000.0, 50.0),
            exchange(3, "anonymous", "sms-gateway", "/sms/v1/inbox/x?a=1", 1_100.0, 1.0),
            exchange(4, "anonymous", "sms-gateway", "/sms/v1/inbox/x?a=2", 1_200.0, 1.0),
        ];
        let drawn = arrows(&list);
        assert_eq!(drawn.iter().map(|a| a.e.seq).collect::<Vec<_>>(), vec![2, 1, 3]);
        assert!(!drawn[0].caused && drawn[1].caused, "the SAR called Sistema TS while answering the lab");
        assert_eq!(drawn[2].times, 2);
    }

    #[test]
    fn regional_accounts_of_the_reference_system_are_the_sar() {
        assert_eq!(actor("sar-160"), "sar");
        assert_eq!(actor("avr-030"), "sar");
        assert_eq!(actor("cun@sar-160.test"), "sar");
        assert_eq!(actor("vaccinatore-160"), "vaccinatore-160");
        assert_eq!(actor("avn"), "avn");
        assert_eq!(actor("anonymous"), "observer");
    }
}
