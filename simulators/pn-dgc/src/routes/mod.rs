//! PN-DGC's HTTP routes, one file per resource: thin handlers over
//! [`crate::domain`] and [`crate::store`].

pub(crate) mod dgc;
pub(crate) mod eventi;
