//! `http`: any call to any system, for the interfaces without a step of their own.

use std::time::Duration;

use ecosim_core::System;
use reqwest::Method;
use serde_json::Value;

use crate::scenario::model::{Expect, HttpCall};
use crate::scenario::runner::{Look, Runner, StepError, StepResult, poll_until};

/// Makes the call (again, with `expect.within`, until the answer is as expected) and
/// saves the variables `save` points at.
pub(super) async fn call(runner: &mut Runner<'_>, h: &HttpCall, expect: Option<&Expect>) -> StepResult {
    let expect = runner.rendered(expect)?;
    let system =
        System::from_name(&h.system).ok_or_else(|| StepError::Scenario(format!("http: no system {:?}", h.system)))?;
    let method = Method::from_bytes(h.method.as_deref().unwrap_or("GET").to_ascii_uppercase().as_bytes())
        .map_err(|e| StepError::Scenario(format!("method: {e}")))?;
    let path = runner.render(&h.path)?;
    let account = h.account.as_deref().map(|a| runner.render(a)).transpose()?;
    let body = h.body.as_ref().map(|b| runner.render(&b.to_string())).transpose()?;
    let body = body
        .map(|b| serde_json::from_str::<Value>(&b))
        .transpose()
        .map_err(|e| StepError::Scenario(format!("body: {e}")))?;
    let within = runner.real_time(expect.as_ref().and_then(|e| e.within.as_deref()), "0s")?;
    let this = &*runner;
    let (method, path, account, body, expect) = (&method, &path, account.as_deref(), &body, expect.as_ref());
    let answer = poll_until(within, Duration::from_millis(20), || async move {
        let (status, answer) = this.send(system, method.clone(), path, account, body.clone()).await?;
        Ok(match Runner::check(expect, h.status.unwrap_or(200), status, &answer) {
            Ok(()) => Look::Done(answer),
            Err(e) => Look::NotYet(e),
        })
    })
    .await?;
    for (name, pointer) in &h.save {
        let value =
            answer.pointer(pointer).ok_or_else(|| StepError::Unexpected(format!("no {pointer} in {answer}")))?;
        let text = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        runner.vars.insert(name.clone(), text);
    }
    Ok(())
}
