//! The journal of exchanges between systems: `journal.expect`, `journal.absent`.

use std::collections::BTreeMap;
use std::time::Duration;

use ecosim_core::journal::Exchange;
use serde_json::Value;

use crate::scenario::model::{JournalAbsent, JournalExpect, JournalMatch};
use crate::scenario::runner::{Look, Runner, StepError, StepResult, poll_until, watch};

/// The journal's exchanges since the scenario began that `m` matches.
fn matching(runner: &Runner<'_>, m: &JournalMatch) -> Result<Vec<Exchange>, StepError> {
    let from = m.from.as_deref().map(|f| runner.render(f)).transpose()?;
    let path = m.path.as_deref().map(|p| runner.render(p)).transpose()?;
    let render_map = |map: &BTreeMap<String, Value>| -> Result<Vec<(String, Value)>, StepError> {
        map.iter()
            .map(|(k, v)| {
                let v = serde_json::from_str(&runner.render(&v.to_string())?)
                    .map_err(|e| StepError::Scenario(format!("{k}: {e}")))?;
                Ok((k.clone(), v))
            })
            .collect()
    };
    let (request, response) = (render_map(&m.request)?, render_map(&m.response)?);
    let request_text = m.request_text.as_deref().map(|r| runner.regex(r, "request_text")).transpose()?;
    let json_has = |body: &str, want: &[(String, Value)]| {
        if want.is_empty() {
            return true;
        }
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        want.iter().all(|(p, w)| v.pointer(p).unwrap_or(&Value::Null) == w)
    };
    let page = runner.eco.context().journal().since(runner.first_seq);
    Ok(page
        .exchanges
        .into_iter()
        .filter(|e| match from.as_deref() {
            None => true,
            Some(kind @ ("sar" | "avr")) => e.from == kind || e.from.starts_with(&format!("{kind}-")),
            Some(f) => e.from == f,
        })
        .filter(|e| e.to == m.to)
        .filter(|e| m.method.as_deref().is_none_or(|x| e.method.eq_ignore_ascii_case(x)))
        .filter(|e| path.as_deref().is_none_or(|p| e.path.contains(p)))
        .filter(|e| m.status.is_none_or(|s| e.status == s))
        .filter(|e| request_text.as_ref().is_none_or(|r| r.is_match(&e.request_body.text())))
        .filter(|e| json_has(&e.request_body.text(), &request))
        .filter(|e| json_has(&e.response_body.text(), &response))
        .collect())
}

/// `m` in words, for failures.
fn describe(runner: &Runner<'_>, m: &JournalMatch) -> String {
    let r = |t: &str| runner.render(t).unwrap_or_else(|_| t.to_owned());
    let mut out = format!(
        "{} -> {} {} {} {}",
        m.from.as_deref().map(r).unwrap_or_else(|| "*".into()),
        m.to,
        m.method.as_deref().unwrap_or("*"),
        m.path.as_deref().map(r).unwrap_or_else(|| "*".into()),
        m.status.map(|s| s.to_string()).unwrap_or_else(|| "*".into())
    );
    for (p, v) in m.request.iter() {
        out.push_str(&format!(" request{p}={}", r(&v.to_string())));
    }
    if let Some(t) = &m.request_text {
        out.push_str(&format!(" request~/{}/", r(t)));
    }
    for (p, v) in m.response.iter() {
        out.push_str(&format!(" response{p}={}", r(&v.to_string())));
    }
    out
}

/// The exchanges must be there within `within` (`count`: exactly that many, none more
/// by the end of `settle`), with `min_gap`, `same_value` and `same_key` holding.
pub(super) async fn expect(runner: &Runner<'_>, j: &JournalExpect) -> StepResult {
    // An exchange is journalled when its answer is sent, which can be a moment after
    // its effects are visible elsewhere: look again for a while.
    let within = runner.real_time(j.within.as_deref(), "5s")?;
    let what = describe(runner, &j.matching);
    let what_ref = &what;
    let found = poll_until(within, Duration::from_millis(25), || async move {
        let found = matching(runner, &j.matching)?;
        let enough = match j.count {
            Some(n) => found.len() == n,
            None => !found.is_empty(),
        };
        if enough {
            return Ok(Look::Done(found));
        }
        let error = StepError::Unexpected(format!(
            "expected {} exchange(s) {what_ref} within {}, found {}",
            j.count.map(|n| n.to_string()).unwrap_or_else(|| "some".into()),
            runner.render(j.within.as_deref().unwrap_or("5s"))?,
            found.len()
        ));
        // Too many already: waiting cannot mend it.
        if j.count.is_some_and(|n| found.len() > n) { Err(error) } else { Ok(Look::NotYet(error)) }
    })
    .await?;
    let found = match j.count {
        Some(n) => {
            tokio::time::sleep(runner.real_time(j.settle.as_deref(), "2s")?).await;
            let later = matching(runner, &j.matching)?;
            if later.len() > n {
                return Err(StepError::Unexpected(format!(
                    "expected exactly {n} exchange(s) {what}; {} by the end of the {} settle window",
                    later.len(),
                    j.settle.as_deref().unwrap_or("2s")
                )));
            }
            later
        }
        None => found,
    };
    if let Some(gap) = &j.min_gap {
        let least = runner.real_time(Some(gap), "0s")?;
        for pair in found.windows(2) {
            let between = pair[1].wall_time.duration_since(pair[0].wall_time);
            if between.as_secs_f64() < least.as_secs_f64() {
                return Err(StepError::Unexpected(format!(
                    "expected at least {gap} of real time between attempts {what}; exchange {} came {:.3} s after exchange {}",
                    pair[1].seq,
                    between.as_secs_f64(),
                    pair[0].seq
                )));
            }
        }
    }
    for pointer in &j.same_value {
        let values: Vec<Value> = found
            .iter()
            .map(|e| {
                let body: Value = serde_json::from_str(&e.request_body.text()).unwrap_or(Value::Null);
                body.pointer(pointer).cloned().unwrap_or(Value::Null)
            })
            .collect();
        if values.first().is_some_and(Value::is_null) || values.windows(2).any(|w| w[0] != w[1]) {
            return Err(StepError::Unexpected(format!(
                "expected every attempt {what} to carry the same {pointer}; they carried {}",
                Value::Array(values)
            )));
        }
    }
    if j.same_key {
        let keys: Vec<Option<&str>> = found.iter().map(|e| e.idempotency_key.as_deref()).collect();
        let first = keys.first().copied().flatten();
        if first.is_none() || keys.iter().any(|k| *k != first) {
            let shown: Vec<&str> = keys.iter().map(|k| k.unwrap_or("(none)")).collect();
            return Err(StepError::Unexpected(format!(
                "expected every attempt {what} to carry the same Idempotency-Key; they carried {}",
                shown.join(", ")
            )));
        }
    }
    Ok(())
}

/// No such exchange may happen, from the scenario's start to the window's end.
pub(super) async fn absent(runner: &Runner<'_>, j: &JournalAbsent) -> StepResult {
    let window = runner.real_time(j.window.as_deref(), "3s")?;
    watch(window, Duration::from_millis(50), || async move {
        let found = matching(runner, &j.matching)?;
        match found.first() {
            None => Ok(()),
            Some(e) => Err(StepError::Unexpected(format!(
                "expected no exchange {}, found {}: {} -> {} {} {} {}: {}",
                describe(runner, &j.matching),
                found.len(),
                e.from,
                e.to,
                e.method,
                e.path,
                e.status,
                e.request_body.text().chars().take(300).collect::<String>()
            ))),
        }
    })
    .await
}
