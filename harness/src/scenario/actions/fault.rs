//! `fault`: a fault rule added through the system's admin API.

use ecosim_core::System;
use reqwest::Method;
use serde_json::{Value, json};

use crate::scenario::model::Fault;
use crate::scenario::runner::{Runner, StepError, StepResult};

/// Adds the rule at `f.system`.
pub(super) async fn add(runner: &Runner<'_>, f: &Fault) -> StepResult {
    let system = System::from_name(&f.system)
        .ok_or_else(|| StepError::Scenario(format!("fault: unknown system {:?}", f.system)))?;
    let mut rule = json!({"match": f.matcher, "action": f.action});
    if f.matcher.is_null() {
        rule["match"] = json!({});
    }
    if let Some(t) = f.times {
        rule["times"] = json!(t);
    }
    let rule: Value = serde_json::from_str(&runner.render(&rule.to_string())?)
        .map_err(|e| StepError::Scenario(format!("fault: {e}")))?;
    let (status, v) = runner.send(system, Method::POST, "/_admin/faults", None, Some(rule)).await?;
    Runner::check(None, 201, status, &v)
}
