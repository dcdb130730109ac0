//! `ecosim-domain`: the Italian health-IT domain every ecosim simulator shares, with
//! no HTTP, storage or clock in it (those are `ecosim-core`'s).
//!
//! | module | what lives there |
//! |---|---|
//! | [`codes`] | national codes (CF, health card, OTP, CUN, AUTHCODE, NUCG, CUEV, NRFE, contacts) and their check algorithms |
//! | [`population`] | the seeded national registry of citizens, and the one age rule |
//! | [`regions`] | region codes and their ASLs |
//! | [`rng`] | the seeded generator behind every generated value |
//! | [`vaccines`] | the COVID-19 vaccine catalogue (AIC, EMA, cycle, intervals, DCC codes) |
//! | [`vaccination`] | a dose as AVRs, AVN and Sistema TS exchange it |
//! | [`test_result`] | a test result as labs, SARs and Sistema TS exchange it |
//! | [`green_pass`] | the events Sistema TS sends PN-DGC (a dose, a test, a recovery) |
//! | [`messages`] | the texts citizens receive (the CUN SMS, the AUTHCODE...) |
//! | [`base45`] | Base45 (RFC 9285), for EU DCC payloads |
//! | [`validation`] | every bad field of a request at once ([`validation::Invalid`]) |

pub mod base45;
pub mod codes;
pub mod green_pass;
pub mod messages;
pub mod population;
pub mod regions;
pub mod rng;
pub mod test_result;
pub mod vaccination;
pub mod vaccines;
pub mod validation;
