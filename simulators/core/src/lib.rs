//! `ecosim-core`: the infrastructure every ecosim simulator shares (the domain it
//! simulates, codes, citizens, vaccines, is `ecosim-domain`).
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
//! | [`ids`] | deterministic UUIDs, sorted in the order they are drawn |
//! | [`mail`] | a minimal SMTP client |
//! | [`mask`] | the journal's identifiers masked |
//! | [`openapi`] | answers checked against their OpenAPI schema (tests) |
//! | [`store`] | SQLite per simulator, in memory or on disk, versioned migrations, group commit |
//! | [`config`] | the TOML configuration |
//! | [`context`] | the shared context |
//! | [`systems`] | system names and default ports |
//! | [`server`] | serving a router with clean shutdown |
//! | [`simulator`] | the trait every simulator implements, so the ecosystem starts them all alike |
//! | [`duration`] | human durations (`15d`, `150ms`) |
//! | [`telemetry`] | logging set-up |

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod app;
pub mod boundary;
pub mod client;
pub mod clock;
pub mod config;
pub mod context;
pub mod duration;
pub mod faults;
pub mod idempotency;
pub mod ids;
pub mod journal;
pub mod mail;
pub mod mask;
pub mod openapi;
pub mod outbox;
pub mod problem;
pub mod server;
pub mod simulator;
pub mod store;
pub mod systems;
pub mod telemetry;

pub use context::Context;
pub use problem::Problem;
pub use systems::System;
