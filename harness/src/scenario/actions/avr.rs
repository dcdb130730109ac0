//! `avr.vaccinate`: a vaccinator registers a dose at the AVR (or the system under
//! test).

use ecosim_core::System;
use reqwest::Method;
use serde_json::json;

use crate::scenario::model::{AvrVaccinate, Expect};
use crate::scenario::runner::{Runner, StepError, StepResult};

/// Registers the dose (`vaccinatore-<region>` unless named), everything but the
/// citizen and the vaccine defaulted; saves its id as `<citizen>.dose`.
pub(super) async fn vaccinate(runner: &mut Runner<'_>, v: &AvrVaccinate, expect: Option<&Expect>) -> StepResult {
    let expect = runner.rendered(expect)?;
    let c = runner.citizen(&v.citizen)?.clone();
    let account = match &v.account {
        Some(a) => runner.render(a)?,
        None => format!("vaccinatore-{}", c.region().code),
    };
    let day = runner
        .eco
        .context()
        .clock()
        .today()
        .checked_sub(jiff::Span::new().days(v.days_ago.unwrap_or(0)))
        .map_err(|e| StepError::Scenario(format!("days_ago: {e}")))?;
    let mut body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "data_somministrazione": day.to_string(),
        "aic": runner.render(&v.aic)?,
    });
    if let Some(country) = &v.estero {
        body["estero"] = json!({"paese": country});
    } else {
        let mobile = match &v.cellulare {
            Some(m) => Some(runner.render(m)?),
            None => c.mobile().map(|m| m.to_string()),
        };
        if let Some(o) = body.as_object_mut() {
            o.extend([
                ("ora".into(), json!("10:00")),
                ("lotto".into(), json!("SCENARIO")),
                ("categoria_rischio".into(), json!(v.categoria_rischio.as_deref().unwrap_or("altro"))),
                ("condizione_sanitaria".into(), json!(v.condizione_sanitaria.as_deref().unwrap_or("nessuna"))),
                ("via".into(), json!("IM")),
                ("sito".into(), json!("deltoide_sx")),
                ("struttura".into(), json!("HUB-SCENARIO")),
                ("contatti_dgc".into(), json!({"cellulare": mobile, "email": c.email().map(|e| e.to_string())})),
                ("conferma_contatti".into(), json!(v.conferma_contatti.unwrap_or(true))),
            ]);
        }
    }
    for (key, value) in [
        ("tipo_dose", v.tipo_dose.as_ref().map(|t| json!(t))),
        ("numero_dose_forzato", v.numero_dose_forzato.map(|n| json!(n))),
        ("forza", v.forza.map(|f| json!(f))),
    ] {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    let (status, answer) =
        runner.send(System::Sar, Method::POST, "/avr/v1/vaccinazioni", Some(&account), Some(body)).await?;
    if let Some(id) = answer["id"].as_str() {
        runner.vars.insert(format!("{}.dose", v.citizen), id.to_owned());
    }
    Runner::check(expect.as_ref(), 201, status, &answer)
}
