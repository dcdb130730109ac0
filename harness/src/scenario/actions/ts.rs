//! Sistema TS's regional users: `ts.submit`, `ts.get`, `ts.correct`.

use ecosim_core::System;
use reqwest::Method;

use super::lab::result_body;
use crate::scenario::model::{Expect, LabReport, TsCorrect, TsGet};
use crate::scenario::runner::{Runner, StepResult};

/// A region (`sar-<region>` unless named) sends a result straight to Sistema TS; the
/// CUN is saved as `cun`.
pub(super) async fn submit(runner: &mut Runner<'_>, r: &LabReport, expect: Option<&Expect>) -> StepResult {
    let c = runner.citizen(&r.citizen)?.clone();
    let account = match &r.account {
        Some(a) => runner.render(a)?,
        None => format!("sar-{}", c.region().code),
    };
    let today = runner.eco.context().clock().today().to_string();
    let body = result_body(runner, &c, r, today, false)?;
    let (status, v) =
        runner.send(System::SistemaTs, Method::POST, "/ts/v1/test-results", Some(&account), Some(body)).await?;
    if let Some(cun) = v["cun"].as_str() {
        runner.vars.insert("cun".into(), cun.to_owned());
    }
    Runner::check(expect, 201, status, &v)
}

/// A region reads a record.
pub(super) async fn get(runner: &Runner<'_>, g: &TsGet, expect: Option<&Expect>) -> StepResult {
    let path = format!("/ts/v1/test-results/{}", runner.render(&g.cun)?);
    let account = runner.render(&g.account)?;
    let (status, v) = runner.send(System::SistemaTs, Method::GET, &path, Some(&account), None).await?;
    Runner::check(expect, 200, status, &v)
}

/// A region corrects a record.
pub(super) async fn correct(runner: &Runner<'_>, c: &TsCorrect, expect: Option<&Expect>) -> StepResult {
    let path = format!("/ts/v1/test-results/{}", runner.render(&c.cun)?);
    let account = runner.render(&c.account)?;
    let (status, v) =
        runner.send(System::SistemaTs, Method::PATCH, &path, Some(&account), Some(c.changes.clone())).await?;
    Runner::check(expect, 200, status, &v)
}
