//! What each action of a step does, one file per actor: the lab, Sistema TS's
//! regional users, the citizen's phone and mailbox, the Immuni app, the call-centre
//! and ASL operators, the vaccinator, the green-pass verifier, the clock, faults, the
//! journal, and any HTTP call.

mod app;
mod avr;
mod clock;
mod dgc;
mod fault;
mod http;
mod inbox;
mod journal;
mod lab;
mod operators;
mod ts;

use super::model::{Action, Step};
use super::runner::{Runner, StepResult};

impl Action {
    /// A step that only looks (no request that changes state, no variable captured):
    /// a failure of it does not stop the scenario.
    pub fn is_pure_check(&self) -> bool {
        match self {
            Self::JournalExpect(_) | Self::JournalAbsent(_) | Self::SmsAbsent(_) | Self::MailAbsent(_) => true,
            Self::SmsExpect(e) | Self::MailExpect(e) => !e.text.contains("(?P<"),
            _ => false,
        }
    }

    /// Whom the action concerns (a citizen, a recipient, a system), for reports.
    fn whom(&self) -> Option<&str> {
        match self {
            Self::LabReport(r) | Self::TsSubmit(r) => Some(&r.citizen),
            Self::AvrVaccinate(v) => Some(&v.citizen),
            Self::SmsExpect(e) | Self::MailExpect(e) => Some(&e.to),
            Self::SmsAbsent(a) | Self::MailAbsent(a) => Some(&a.to),
            Self::JournalExpect(j) => Some(&j.matching.to),
            Self::JournalAbsent(j) => Some(&j.matching.to),
            _ => None,
        }
    }
}

/// The step's action and whom it concerns (`lab.report teo`), for reports.
pub(super) fn describe(step: &Step) -> String {
    match step.action.whom() {
        Some(w) => format!("{} {w}", step.action.name()),
        None => step.action.name().to_owned(),
    }
}

/// Runs one step.
pub(super) async fn run(runner: &mut Runner<'_>, step: &Step) -> StepResult {
    let expect = step.expect.as_ref();
    match &step.action {
        Action::LabReport(r) => lab::report(runner, r, expect).await,
        Action::TsSubmit(r) => ts::submit(runner, r, expect).await,
        Action::TsGet(g) => ts::get(runner, g, expect).await,
        Action::TsCorrect(c) => ts::correct(runner, c, expect).await,
        Action::SmsExpect(e) => inbox::expect(runner, e, inbox::Box::Sms).await,
        Action::MailExpect(e) => inbox::expect(runner, e, inbox::Box::Mail).await,
        Action::SmsAbsent(a) => inbox::absent(runner, a, inbox::Box::Sms).await,
        Action::MailAbsent(a) => inbox::absent(runner, a, inbox::Box::Mail).await,
        Action::JournalExpect(j) => journal::expect(runner, j).await,
        Action::JournalAbsent(j) => journal::absent(runner, j).await,
        Action::ClockAdvance(d) => clock::advance(runner, d).await,
        Action::Fault(f) => fault::add(runner, f).await,
        Action::AppNewOtp(n) => app::new_otp(runner, n),
        Action::AppCheckOtp(o) => app::check_otp(runner, o, expect).await,
        Action::AppCheckCun(c) => app::check_cun(runner, c, expect).await,
        Action::AppUpload(u) => app::upload(runner, u, expect).await,
        Action::AppGetDgc(g) => app::get_dgc(runner, g, expect).await,
        Action::CallCenterUnlock(u) => operators::callcenter_unlock(runner, u, expect).await,
        Action::AslUnlock(u) => operators::asl_unlock(runner, u, expect).await,
        Action::AvrVaccinate(v) => avr::vaccinate(runner, v, expect).await,
        Action::Http(h) => http::call(runner, h, expect).await,
        Action::DgcVerify(v) => dgc::verify(runner, v, expect).await,
    }
}
