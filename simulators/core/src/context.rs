//! One ecosystem's shared context: configuration, population, clock, journal, faults, accounts.
//!
//! In one process every simulator holds a clone of the same [`Context`]; across
//! processes the admin API exposes the same controls.

use std::sync::Arc;

use jiff::Timestamp;

use crate::accounts::Accounts;
use crate::activity::Activity;
use crate::clock::{Clock, ClockError};
use crate::config::Config;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::store::{Store, StoreError, StoreLocation};
use crate::systems::System;
use ecosim_domain::population::Population;
use ecosim_domain::rng::SeededRng;

struct Inner {
    config: Config,
    population: Arc<Population>,
    clock: Clock,
    journal: Journal,
    faults: Faults,
    accounts: Accounts,
    activity: Activity,
    /// One clock move at a time.
    moving: tokio::sync::Mutex<()>,
}

/// A cheaply cloneable handle to the shared context.
#[derive(Clone)]
pub struct Context(Arc<Inner>);

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("seed", &self.0.config.seed)
            .field("population", &self.0.population.len())
            .field("clock", &self.0.clock)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context from `config`, generating its population.
    pub fn new(config: Config) -> Self {
        let clock = Clock::new(config.clock.start);
        let population = Arc::new(Population::generate_on(config.seed, config.population, clock.today()));
        Self::with_population(config, population)
    }

    /// A context sharing an already generated population (it must match the config's
    /// seed and size to keep runs reproducible; tests use this to generate once).
    pub fn with_population(config: Config, population: Arc<Population>) -> Self {
        // On disk, the clock's time is state like any other: it survives a restart.
        let clock = match &config.data_dir {
            Some(dir) if std::fs::create_dir_all(dir).is_ok() => {
                Clock::persistent(config.clock.start, dir.join("clock"))
            }
            _ => Clock::new(config.clock.start),
        };
        Self(Arc::new(Inner {
            clock,
            journal: Journal::with_limits(crate::journal::Limits {
                cap: config.journal.cap,
                budget: config.journal.budget.0,
                body_cap: config.journal.body_cap.0,
            }),
            faults: Faults::new(config.seed),
            accounts: config.accounts(),
            activity: Activity::default(),
            moving: tokio::sync::Mutex::new(()),
            population,
            config,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    /// The national registry.
    pub fn population(&self) -> &Arc<Population> {
        &self.0.population
    }
    /// The shared clock.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }
    /// The shared journal.
    pub fn journal(&self) -> &Journal {
        &self.0.journal
    }
    /// The shared fault rules.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }
    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.0.accounts
    }
    /// What may still be working (see [`Activity`]).
    pub fn activity(&self) -> &Activity {
        &self.0.activity
    }

    /// Moves the shared clock to `target` as a discrete-event scheduler: waits until
    /// the ecosystem is quiet, then runs each job due by `target` at its own time, in
    /// time order, waiting after each until everything it set off has been handled
    /// (stamped with that time) before the next; returns once the clock is at
    /// `target` and the ecosystem is quiet again. So moving 3 days at once gives the
    /// same journal, codes and certificates as three moves of a day. The wait is at
    /// most `timing.settle_limit` (real time) each time.
    pub async fn move_clock(&self, target: Timestamp) -> Result<Timestamp, ClockError> {
        let _one_at_a_time = self.0.moving.lock().await;
        let limit = self.0.config.timing.settle_limit.to_std();
        self.settle(limit).await;
        loop {
            let clock = self.clock().clone();
            let stepped = tokio::task::spawn_blocking(move || clock.step(target))
                .await
                .map_err(|e| ClockError::Job(e.to_string()))??;
            self.settle(limit).await;
            if stepped.is_none() {
                return Ok(target);
            }
        }
    }

    async fn settle(&self, limit: std::time::Duration) {
        if !self.0.activity.settle(limit).await {
            tracing::warn!(?limit, "the ecosystem is still busy; the clock moves on");
        }
    }

    /// A generator for `label`, fixed by the seed alone.
    pub fn rng(&self, label: &str) -> SeededRng {
        SeededRng::derive(self.0.config.seed, label)
    }

    /// Where stores live: the data directory, or memory.
    pub fn store_location(&self) -> StoreLocation {
        match &self.0.config.data_dir {
            Some(dir) => StoreLocation::Dir(dir.clone()),
            None => StoreLocation::Memory,
        }
    }

    /// Opens the store of `system` with its migrations.
    pub fn open_store(&self, system: System, migrations: &'static [&'static str]) -> Result<Store, StoreError> {
        Store::open(&self.store_location(), system.name(), migrations)
    }
}
