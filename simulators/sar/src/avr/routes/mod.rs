//! The AVR's HTTP routes, one file per resource: thin handlers over
//! [`super::domain`], [`super::knowledge`] and [`super::store`].

pub(crate) mod assistiti;
pub(crate) mod vaccinazioni;

use ecosim_core::Problem;
use ecosim_core::accounts::{Regional, roles};
use ecosim_core::config::SarDefect;
use ecosim_core::store::StoreError;
use ecosim_domain::vaccination::{ContattiDgc, TipoId};

use super::domain::rules::Avviso;
use super::knowledge::{self, Person};
use super::store;
use crate::state::Sar;

/// A vaccinator of a region: who may use the AVR's routes.
pub(crate) type Vaccinator = Regional<roles::Vaccinatore>;

/// The person a path names: a codice fiscale or a Sistema TS identifier.
pub(crate) async fn person_at(sar: &Sar, region: &str, id: &str, avvisi: &mut Vec<Avviso>) -> Result<Person, Problem> {
    let tipo = if ecosim_domain::vaccination::check_ts_id(id.trim()).is_ok() { TipoId::Ts } else { TipoId::Cf };
    knowledge::resolve(sar, region, tipo, id, "cf", avvisi).await
}

/// The green-pass contacts held for `person` and where they came from (none with
/// the defect that does not keep them, AVR-5c).
pub(crate) fn held_contacts(
    sar: &Sar,
    region: &str,
    person: &str,
) -> Result<Option<(ContattiDgc, String)>, StoreError> {
    if sar.ctx.config().sar.has(SarDefect::Avr5c) {
        return Ok(None);
    }
    sar.store.with(|c| store::contacts(c, region, person))
}
