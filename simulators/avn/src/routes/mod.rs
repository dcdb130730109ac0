//! AVN's HTTP routes, one file per resource: thin handlers over [`crate::domain`]
//! and [`crate::store`].

pub(crate) mod mobilita;
pub(crate) mod somministrazioni;
