//! The citizen's Immuni app: `app.new_otp`, `app.check_otp`, `app.check_cun`,
//! `app.upload`, `app.get_dgc`.

use std::time::Duration;

use ecosim_domain::codes::{Cun, Otp};

use crate::app::AppAnswer;
use crate::app::VirtualApp;
use crate::scenario::model::{AppCheckCun, AppGetDgc, AppOtp, AppUpload, Expect, KeyBatch, NewOtp};
use crate::scenario::runner::{Look, Runner, StepError, StepResult, poll_until};

fn otp(runner: &Runner<'_>, text: &str) -> Result<Otp, StepError> {
    Otp::parse(&runner.render(text)?).map_err(|e| StepError::Scenario(format!("otp: {e}")))
}

fn cun(runner: &Runner<'_>, text: &str) -> Result<Cun, StepError> {
    Cun::parse(&runner.render(text)?).map_err(|e| StepError::Scenario(format!("cun: {e}")))
}

fn date(runner: &Runner<'_>, text: &str, field: &str) -> Result<jiff::civil::Date, StepError> {
    runner.render(text)?.parse().map_err(|_| StepError::Scenario(format!("{field} {text:?} is not a date")))
}

/// Checks an app answer: status, body, and `expect.warning` against its
/// `Ecosim-Warning` header.
fn check(expect: Option<&Expect>, default_status: u16, a: &AppAnswer) -> StepResult {
    Runner::check(expect, default_status, a.status, &a.body)?;
    if let Some(want) = expect.and_then(|e| e.warning.as_deref()) {
        match &a.warning {
            Some(w) if w.contains(want) => {}
            Some(w) => return Err(StepError::Unexpected(format!("expected a warning with {want:?}, got {w:?}"))),
            None => return Err(StepError::Unexpected(format!("expected a warning with {want:?}, got none"))),
        }
    }
    Ok(())
}

/// The app makes a new OTP, saved as `otp` (or the name given).
pub(super) fn new_otp(runner: &mut Runner<'_>, n: &NewOtp) -> StepResult {
    let otp = runner.app.get_mut().new_otp();
    runner.vars.insert(n.save.clone().unwrap_or_else(|| "otp".into()), otp.to_string());
    Ok(())
}

/// The app checks its OTP (`/v1/ingestion/check`).
pub(super) async fn check_otp(runner: &Runner<'_>, o: &AppOtp, expect: Option<&Expect>) -> StepResult {
    let a = runner.app.lock().await.check_otp(&otp(runner, &o.otp)?, o.dummy).await;
    check(expect, 204, &a)
}

/// The app unlocks with the CUN and the citizen's card digits (`/v1/ingestion/cun`).
pub(super) async fn check_cun(runner: &Runner<'_>, c: &AppCheckCun, expect: Option<&Expect>) -> StepResult {
    let citizen = runner.citizen(&c.citizen)?.clone();
    let cun = cun(runner, &c.cun)?;
    let symptoms = c.symptoms_started_on.as_deref().map(|d| date(runner, d, "symptoms_started_on")).transpose()?;
    let a = runner.app.lock().await.check_cun(&cun, &citizen.card().last8(), symptoms, false).await;
    check(expect, 204, &a)
}

/// The app uploads its keys with the OTP, or after a CUN unlock.
pub(super) async fn upload(runner: &Runner<'_>, u: &AppUpload, expect: Option<&Expect>) -> StepResult {
    let token = match (&u.otp, &u.cun) {
        (Some(o), None) => otp(runner, o)?.sha256(),
        (None, Some(c)) => VirtualApp::cun_token(&cun(runner, c)?),
        _ => return Err(StepError::Scenario("app.upload needs exactly one of otp and cun".into())),
    };
    let now = runner.eco.context().clock().now();
    let mut app = runner.app.lock().await;
    let teks = match u.keys {
        KeyBatch::Consistent => app.teks(now),
        KeyBatch::Inconsistent => app.inconsistent_teks(now),
    };
    let a = app.upload(&token, teks, u.province.as_deref().unwrap_or("RM"), now, false).await;
    check(expect, 204, &a)
}

/// The app retrieves a green certificate (`get-dgc`); with `expect.within` it asks
/// again while the certificate may still be on its way.
pub(super) async fn get_dgc(runner: &Runner<'_>, g: &AppGetDgc, expect: Option<&Expect>) -> StepResult {
    let c = runner.citizen(&g.citizen)?.clone();
    let code = runner.render(&g.code)?;
    let hash = VirtualApp::code_hash(&g.token_type, &code).map_err(|e| StepError::Scenario(format!("code: {e}")))?;
    let expiry = match &g.card_expiry {
        Some(d) => date(runner, d, "card_expiry")?,
        None => c.card().expiry,
    };
    let within = runner.real_time(expect.and_then(|e| e.within.as_deref()), "0s")?;
    let (hash, last8) = (&hash, &c.card().last8());
    poll_until(within, Duration::from_millis(50), || async move {
        let a = runner.app.lock().await.get_dgc(&g.token_type, hash, last8, expiry, false).await;
        Ok(match check(expect, 200, &a) {
            Ok(()) => Look::Done(()),
            Err(e) => Look::NotYet(e),
        })
    })
    .await
}
