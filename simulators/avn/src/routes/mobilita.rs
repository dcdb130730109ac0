//! `/avn/v1/regioni/{codice}/mobilita`: doses given elsewhere to a region's residents
//! (AVR-1.3c).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use ecosim_core::accounts::{Regional, roles};
use ecosim_core::problem::{Problem, parse_date};
use ecosim_domain::vaccination::Somministrazione;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::state::Avn;
use crate::store;

#[derive(Debug, Deserialize)]
pub(crate) struct MobilityQuery {
    dal: Option<String>,
}

/// The feed.
#[derive(Debug, Serialize)]
pub(crate) struct Feed {
    regione: String,
    dal: Option<Date>,
    somministrazioni: Vec<MobilityDose>,
    requirement: &'static str,
}

/// A dose of the feed, with when AVN received it.
#[derive(Debug, Serialize)]
pub(crate) struct MobilityDose {
    #[serde(flatten)]
    dose: Somministrazione,
    ricevuta_il: String,
}

/// `GET /avn/v1/regioni/{codice}/mobilita?dal=YYYY-MM-DD` (the region's AVR): doses
/// given in other regions to its residents, received from `dal` on, in the order AVN
/// received them.
pub(crate) async fn feed(
    State(avn): State<Arc<Avn>>,
    caller: Regional<roles::Avr>,
    Path(codice): Path<String>,
    Query(q): Query<MobilityQuery>,
) -> Result<Json<Feed>, Problem> {
    if caller.region != codice {
        return Err(Problem::forbidden(format!("{} reads only region {codice}'s mobility feed", caller.account.name)));
    }
    let dal = match &q.dal {
        None => None,
        Some(d) => Some(parse_date(d).map_err(|why| Problem::invalid_field("dal", why))?),
    };
    let from = dal.map(|d| d.to_string()).unwrap_or_default();
    let mut rows = avn.store.with(|c| store::mobility(c, &codice, &from))?;
    if avn.ctx.config().mutant("AVR-1.3c") {
        rows.clear();
    }
    let somministrazioni = rows
        .into_iter()
        .map(|(record, ricevuta_il)| {
            serde_json::from_str(&record)
                .map(|dose| MobilityDose { dose, ricevuta_il })
                .map_err(|e| Problem::internal(format!("a dose is stored unreadable: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(Feed { regione: codice, dal, somministrazioni, requirement: "AVR-1.3c" }))
}
