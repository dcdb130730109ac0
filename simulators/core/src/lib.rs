//! `ecosim-core`: what every ecosim simulator shares.
//!
//! | module | what lives there |
//! |---|---|
//! | [`codes`] | national codes (CF, health card, OTP, CUN, AUTHCODE, NUCG, CUEV, NRFE, contacts) |
//! | [`rng`] | the seeded generator behind every generated value |
//! | [`population`] | the seeded national registry of citizens |
//! | [`regions`] | region codes and their ASLs |

pub mod codes;
pub mod population;
pub mod regions;
pub mod rng;
