//! One ecosystem's shared context: configuration, population, clock, journal, faults, accounts.
//!
//! In one process every simulator holds a clone of the same [`Context`]; across
//! processes the admin API exposes the same controls.

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::clock::Clock;
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
            journal: Journal::new(config.journal.cap),
            faults: Faults::new(config.seed),
            accounts: config.accounts(),
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
