//! `ecosim-core`: what every ecosim simulator shares.
//!
//! A simulator is a library with a thin entry: it implements
//! [`simulator::Simulator`] (open on the context, `router()`, background workers) and
//! is served by [`server::serve`]. It keeps state in its own [`store::Store`],
//! reads time from the shared [`clock::Clock`], mounts the [`admin`] routes and the
//! [`boundary`] layer (identity, [`faults`], [`journal`]) and answers errors as
//! [`problem::Problem`]s. All of it hangs off one [`context::Context`] per ecosystem.
//!
//! | module | what lives there |
//! |---|---|
//! | [`base45`] | Base45 (RFC 9285), for EU DCC payloads |
//! | [`codes`] | national codes (CF, health card, OTP, CUN, AUTHCODE, NUCG, CUEV, NRFE, contacts) |
//! | [`population`] | the seeded national registry of citizens |
//! | [`regions`] | region codes and their ASLs |
//! | [`rng`] | the seeded generator behind every generated value |
//! | [`clock`] | the shared virtual clock and its scheduled jobs |
//! | [`journal`] | the bounded record of every exchange between systems |
//! | [`faults`] | fault rules (status, delay, dropped connection, timeout) |
//! | [`boundary`] | the layer at each simulator's edge: identity, faults, journal |
//! | [`app`] | a simulator's app: routes + admin + OpenAPI behind the boundary |
//! | [`idempotency`] | `Idempotency-Key` replay and conflict |
//! | [`admin`] | the `/_admin` API |
//! | [`accounts`] | default accounts, Basic/Bearer authentication, roles |
//! | [`problem`] | RFC 9457 problem+json errors and the JSON extractor that makes them |
//! | [`outbox`] | durable work for other systems, retried with backoff until delivered |
//! | [`client`] | the HTTP client one system uses to call another |
//! | [`ids`] | deterministic UUIDs |
//! | [`mail`] | a minimal SMTP client |
//! | [`messages`] | the texts citizens receive (the CUN SMS...) |
//! | [`test_result`] | a test result as labs, SARs and Sistema TS exchange it |
//! | [`vaccines`] | the COVID-19 vaccine catalogue (AIC, EMA, cycle, intervals, DCC codes) |
//! | [`vaccination`] | a dose as AVRs, AVN and Sistema TS exchange it |
//! | [`store`] | SQLite per simulator, in memory or on disk, versioned migrations |
//! | [`config`] | the TOML configuration |
//! | [`context`] | the shared context |
//! | [`systems`] | system names and default ports |
//! | [`server`] | serving a router with clean shutdown |
//! | [`simulator`] | the trait every simulator implements, so the ecosystem starts them all alike |
//! | [`duration`] | human durations (`15d`, `150ms`) |
//! | [`telemetry`] | logging set-up |

pub mod accounts;
pub mod admin;
pub mod app;
pub mod base45;
pub mod boundary;
pub mod client;
pub mod clock;
pub mod codes;
pub mod config;
pub mod context;
pub mod duration;
pub mod faults;
pub mod idempotency;
pub mod ids;
pub mod journal;
pub mod mail;
pub mod messages;
pub mod outbox;
pub mod population;
pub mod problem;
pub mod regions;
pub mod rng;
pub mod server;
pub mod simulator;
pub mod store;
pub mod systems;
pub mod telemetry;
pub mod test_result;
pub mod vaccination;
pub mod vaccines;

pub use context::Context;
pub use problem::Problem;
pub use systems::System;
