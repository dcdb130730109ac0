//! `ecosim-harness`: the `ecosim` binary and what it drives.
//!
//! | module | what lives there |
//! |---|---|
//! | [`cli`] | the command line: `up`, `codes`, `population`, `bench` |
//! | [`app`] | a virtual Immuni app |
//! | [`bench`] | benchmarks behind `ecosim bench` |
//! | [`dashboard`] | the workshop dashboard on the control plane: the page and its API |
//! | [`certify`] | certification of a vendor's SAR/AVR: the suite, verdicts, the signed bundle |
//! | [`scenario`] | scenario files: grammar, loading, running |
//! | [`ecosystem`] | booting the simulated systems on listeners, sharing one context |
//! | [`webdriver`] | a small WebDriver client for headless Chromium (the dashboard's browser tests) |
//! | [`verifier`] | an EU DCC verifier with the Italian validity rules |

pub mod app;
pub mod bench;
pub mod certify;
pub mod cli;
pub mod dashboard;
pub mod ecosystem;
pub mod load;
pub mod loadgen;
pub mod mutants;
pub mod scenario;
pub mod verifier;
pub mod webdriver;
