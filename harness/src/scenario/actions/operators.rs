//! Health operators at Sistema TS: `callcenter.unlock` (under a supervisor) and
//! `asl.unlock`.

use ecosim_core::System;
use reqwest::Method;
use serde_json::json;

use crate::scenario::model::{AslUnlock, CallCenterUnlock, Expect};
use crate::scenario::runner::{Runner, StepResult};

/// A call-centre operator (`callcenter-1`) unlocks with the CUN and card digits the
/// citizen reads and the OTP their app shows.
pub(super) async fn callcenter_unlock(
    runner: &Runner<'_>,
    u: &CallCenterUnlock,
    expect: Option<&Expect>,
) -> StepResult {
    let c = runner.citizen(&u.citizen)?.clone();
    let card8 = match &u.ultime_8_cifre_ts {
        Some(d) => runner.render(d)?,
        None => c.card().last8().to_string(),
    };
    let mut body = json!({
        "cun": runner.render(&u.cun)?, "otp": runner.render(&u.otp)?, "ultime_8_cifre_ts": card8,
        "supervisore": u.supervisore.clone().unwrap_or_else(|| "supervisore-1".into()),
    });
    if let Some(d) = &u.data_inizio_sintomi {
        body["data_inizio_sintomi"] = json!(runner.render(d)?);
    }
    let (status, v) = runner
        .send(System::SistemaTs, Method::POST, "/ts/v1/sblocchi/call-center", Some("callcenter-1"), Some(body))
        .await?;
    Runner::check(expect, 204, status, &v)
}

/// An ASL operator (`asl-<region>` unless named) unlocks with the codice fiscale.
pub(super) async fn asl_unlock(runner: &Runner<'_>, u: &AslUnlock, expect: Option<&Expect>) -> StepResult {
    let c = runner.citizen(&u.citizen)?.clone();
    let account = match &u.account {
        Some(a) => runner.render(a)?,
        None => format!("asl-{}", c.region().code),
    };
    let body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "otp": runner.render(&u.otp)?,
        "data_inizio_sintomi": runner.render(&u.data_inizio_sintomi)?,
    });
    let (status, v) =
        runner.send(System::SistemaTs, Method::POST, "/ts/v1/sblocchi/asl", Some(&account), Some(body)).await?;
    Runner::check(expect, 204, status, &v)
}
