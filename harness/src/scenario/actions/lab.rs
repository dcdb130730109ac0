//! `lab.report`: a lab reports a result to the SAR (or the system under test).

use ecosim_core::System;
use ecosim_domain::population::Citizen;
use reqwest::Method;
use serde_json::{Value, json};

use crate::scenario::model::{Expect, LabReport};
use crate::scenario::runner::{Runner, StepResult};

/// A test result for `c` as a lab sends it to the SAR (`to_sar`: the parent's mobile
/// goes separately) or as a region sends it to Sistema TS (the number to text).
/// The result's body; `data_esecuzione` rendered (`{{today-2}}`), default today.
pub(super) fn result_body(
    runner: &Runner<'_>,
    c: &Citizen,
    r: &LabReport,
    today: String,
    to_sar: bool,
) -> Result<Value, crate::scenario::runner::StepError> {
    let date = r.data_esecuzione.as_deref().map(|d| runner.render(d)).transpose()?;
    let r = &LabReport { data_esecuzione: date, ..r.clone() };
    let mut body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "esito": r.esito,
        "tipo_test": r.tipo_test.clone().unwrap_or_else(|| "MOLECOLARE".into()),
        "data_esecuzione": r.data_esecuzione.clone().unwrap_or(today), "struttura": "LAB-SCENARIO",
        "contatti": {"email": c.email().map(|e| e.to_string())},
    });
    if to_sar {
        body["contatti"]["cellulare"] = json!(c.mobile().map(|m| m.to_string()));
        body["contatti"]["cellulare_genitore"] = json!(c.parent_mobile().map(|m| m.to_string()));
    } else {
        body["contatti"]["cellulare"] = json!(c.mobile().or(c.parent_mobile()).map(|m| m.to_string()));
        body["invio_cun_da_ts"] = json!(r.invio_cun_da_ts.unwrap_or(false));
    }
    Ok(body)
}

/// The lab (`lab-<region>` unless named) posts the result; its id is saved as
/// `<citizen>.esito`.
pub(super) async fn report(runner: &mut Runner<'_>, r: &LabReport, expect: Option<&Expect>) -> StepResult {
    let c = runner.citizen(&r.citizen)?.clone();
    let account = match &r.account {
        Some(a) => runner.render(a)?,
        None => format!("lab-{}", c.region().code),
    };
    let today = runner.eco.context().clock().today().to_string();
    let body = result_body(runner, &c, r, today, true)?;
    let (status, v) = runner.send(System::Sar, Method::POST, "/sar/v1/esiti", Some(&account), Some(body)).await?;
    if let Some(id) = v["id"].as_str() {
        runner.vars.insert(format!("{}.esito", r.citizen), id.to_owned());
    }
    Runner::check(expect, 202, status, &v)
}
