//! The reference AVR (Anagrafe Vaccinale Regionale): Flow 3 of DOMAIN.md, with the
//! rules of the GIAVA manual (v1.62, Regione Puglia).
//!
//! | route | what | requirements |
//! |---|---|---|
//! | `POST /avr/v1/vaccinazioni` | a vaccinator registers a dose (or declares one given abroad, `estero`) | AVR-1.3a, 2.1, 2.2, 2.3, 5a, 5b, 6a-d, 7 |
//! | `GET /avr/v1/vaccinazioni/{id}` | the dose, its number (proposed, forced), its delivery to AVN | AVR-1.3a, 6a |
//! | `PUT /avr/v1/vaccinazioni/{id}/numero-dose` | force the dose number; sent to AVN as a new version | AVR-6a |
//! | `GET /avr/v1/assistiti/{cf}/vaccinazioni` | doses the region knows: own, abroad, mobility from AVN | AVR-1.3c |
//! | `GET /avr/v1/assistiti/{cf}/verifica-nazionale` | Sistema TS's check in all regions, the number it suggests | AVR-1.3d |
//! | `POST/GET /avr/v1/assistiti/{cf}/infezioni` | prior infections, with the date rules; not after a first dose | AVR-3, 3b |
//! | `GET/PUT/DELETE /avr/v1/assistiti/{cf}/contatti-dgc` | the green-pass contacts held apart, proposed for the next dose; changed or deleted at the citizen's request | AVR-5c |
//!
//! Registering a dose: the request is validated (400 naming each field; a mobile
//! with anything but digits and a leading `+` is 422 AVR-5b; a COVID dose without
//! `conferma_contatti: true` is 422 AVR-5a; without `contatti_dgc` the held
//! green-pass contacts are used, AVR-5c). The person is looked up on Sistema TS
//! as the region's `sar-R` account: a person of another region is imported
//! (AVR-2.2), a Sistema TS identifier names people outside the SSN (AVR-2.3), an
//! obsolete codice fiscale resolves to the current one and the doses held under the
//! old code move to it (AVR-2.1). The doses known (the region's own, AVN's mobility
//! feed for residents, Sistema TS's national check) feed the rules of [`domain::rules`]:
//! dose number and kind, or a 422 naming the rule (`"regola"`) with what to change
//! in Italian (`messaggio`) and English (`detail`). The dose is stored with an
//! outbox item in one transaction and answered 201; the outbox sends it to AVN as
//! the region's `avr-R` account, retrying until AVN has it (AVN is idempotent on the
//! regional id and version: nothing lost, nothing duplicated).

pub(crate) mod delivery;
pub(crate) mod domain;
pub(crate) mod knowledge;
pub(crate) mod routes;
pub(crate) mod store;
