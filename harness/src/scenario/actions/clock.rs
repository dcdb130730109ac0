//! `clock.advance`: the shared virtual clock moves forward, through the control
//! plane's admin API as any tool would move it.

use ecosim_core::System;
use ecosim_core::duration::parse_duration;
use reqwest::Method;
use serde_json::json;

use crate::scenario::runner::{Runner, StepError, StepResult};

/// Moves the clock by `by` (`15d`, `151s`).
pub(super) async fn advance(runner: &Runner<'_>, by: &str) -> StepResult {
    let by = runner.render(by)?;
    parse_duration(&by).map_err(|e| StepError::Scenario(format!("clock.advance: {e}")))?;
    let (status, v) =
        runner.send(System::ControlPlane, Method::POST, "/_admin/clock", None, Some(json!({"advance": by}))).await?;
    Runner::check(None, 200, status, &v)
}
