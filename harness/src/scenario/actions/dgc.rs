//! `dgc.verify`: a green-pass verifier checks an `HC1:` string.

use ecosim_core::System;
use serde_json::Value;

use crate::scenario::model::{DgcVerify, Expect};
use crate::scenario::runner::{Runner, StepError, StepResult};
use crate::verifier::Verifier;

/// Checks against PN-DGC's published signer and the Italian rules at the clock's
/// time; `expect.json` points into the DCC.
pub(super) async fn verify(runner: &Runner<'_>, v: &DgcVerify, expect: Option<&Expect>) -> StepResult {
    let expect = runner.rendered(expect)?;
    let verifier = Verifier::fetch(&runner.eco.url(System::PnDgc))
        .await
        .map_err(|e| StepError::NoAnswer(format!("no signer from PN-DGC: {e}")))?;
    let hc1 = runner.render(&v.hc1)?;
    let status = verifier.status(&hc1, runner.eco.context().clock().now());
    if status.as_str() != v.status {
        return Err(StepError::Unexpected(format!("expected {}, the verifier says {}", v.status, status.as_str())));
    }
    let dcc = verifier.decode(&hc1).map(|d| d.dcc).unwrap_or(Value::Null);
    for (pointer, want) in expect.iter().flat_map(|e| &e.json) {
        let got = dcc.pointer(pointer).unwrap_or(&Value::Null);
        if got != want {
            return Err(StepError::Unexpected(format!("expected {pointer} = {want} in the DCC, got {got}: {dcc}")));
        }
    }
    Ok(())
}
