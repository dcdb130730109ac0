//! The configuration of an ecosystem, loadable from TOML with defaults for everything.
//!
//! ```toml
//! seed = 42
//! population = 10000
//! base_port = 8080
//! data_dir = "ecosim-data"        # omit for in-memory state
//!
//! [clock]
//! start = "2021-10-01T06:00:00Z"
//!
//! [urls]                          # systems that run elsewhere (`up` does not start them); the
//!                                 # others listen on 127.0.0.1 + base port and reach them here
//! sar = "http://10.0.0.5:9000"    # e.g. a vendor's SAR in place of the reference one
//!                                 # (also sistema_ts, immuni, avn, pn_dgc, sms_gateway; smtp =
//!                                 # "host:port" with an external gateway)
//!
//! [retention]
//! test_results = "14d"
//! otp_ttl = "150s"
//! idempotency_keys = "14d"        # how long a retry with the same key replays
//! uploads = "14d"                 # how long Immuni keeps uploads and their keys
//!
//! [timing]
//! fast = false                    # true: no artificial waits (Immuni's ~150 ms)
//! immuni_wait_mean = "150ms"
//! immuni_wait_sigma = "20ms"
//! avn_forwarding = "daily"        # or "immediate"
//! settle_limit = "5s"             # a clock move waits this long at most for each job's work
//!
//! [journal]
//! cap = 100000                    # most exchanges kept
//! budget = "64MiB"                # most bytes kept (entries and bodies)
//! body_cap = "64KiB"              # most bytes kept of one body
//!
//! [admin]                         # the /_admin API (all but health) and the journal
//! token = "a-long-secret"         # required as `Authorization: Bearer`; default: none on
//!                                 # loopback, a random one printed by `up` beyond it
//! mask_journal = true             # mask CFs, CUNs, OTPs, card digits; default: on beyond loopback
//!
//! [connections]                   # each system's listener
//! max = 1024                      # open at once; beyond, the oldest idle one is closed (or 503)
//! header_timeout = "10s"          # to send a request's headers; also the idle keep-alive wait
//! body_timeout = "30s"            # to send a request's body (then 408)
//!
//! [retry]                         # outboxes: backoff between attempts
//! base = "200ms"
//! cap = "30s"
//! concurrency = 64
//!
//! [sms]
//! unreachable = ["+393330000000"] # messages to these numbers fail
//!
//! thread_per_system = false      # (top level) one thread + runtime per system
//!
//! [immuni]                        # the Immuni backend's own settings (its config.py)
//! strict_teks = false             # true: an inconsistent key batch is refused 400/1001
//! max_keys_per_upload = 30        # MAX_KEYS_PER_UPLOAD
//! dummy_error_percent = 1         # DUMMY_DATA_TOKEN_ERROR_CHANCE_PERCENT
//! failed_checks_per_client = 60   # failed app checks (401) per client address...
//! failed_checks_window = "1m"     # ...within this real time; then 429 (0: no limit)
//!
//! [brute_force]                   # CUN + card checks at Sistema TS
//! max_failures = 5
//! window = "1h"
//!
//! [sar]                           # the reference SAR/AVR, broken on purpose (certify's own tests)
//! defects = ["no-retry"]          # see `SarDefect`
//!
//! [[accounts]]                    # add an account or change a password
//! name = "sar-160"
//! password = "another-secret"
//! role = "sar"
//! region = "160"
//! ```
//!
//! Unknown keys are refused, so a typo does not silently fall back to a default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::accounts::{Account, Accounts};
use crate::duration::HumanDuration;
use crate::systems::{SMTP_PORT_OFFSET, System};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has a wrong key or value.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml says, with line and column.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Drives the population, every generated code and every probabilistic fault.
    pub seed: u64,
    /// How many citizens the registry has.
    pub population: usize,
    /// Address to listen on.
    pub bind: IpAddr,
    /// First port; each system adds its offset (APIS.md).
    pub base_port: u16,
    /// Where on-disk databases live; `None` keeps state in memory.
    pub data_dir: Option<PathBuf>,
    /// The virtual clock.
    pub clock: ClockConfig,
    /// Base URL overrides.
    pub urls: Urls,
    /// Retention and expiry periods.
    pub retention: Retention,
    /// Artificial waits and schedules.
    pub timing: Timing,
    /// Journal bounds.
    pub journal: JournalConfig,
    /// Who may use the admin API, and what the journal shows.
    pub admin: AdminConfig,
    /// How each listener bounds its connections.
    pub connections: Connections,
    /// Retries of calls between systems (outboxes).
    pub retry: RetryConfig,
    /// The SMS gateway.
    pub sms: SmsConfig,
    /// Brute-force protection of CUN + card checks at Sistema TS.
    pub brute_force: BruteForce,
    /// The Immuni backend's own settings.
    pub immuni: ImmuniConfig,
    /// Give each system its own thread and single-threaded async runtime instead of
    /// sharing one multi-threaded runtime (less cross-thread wake-up traffic: faster
    /// under load on few cores; what `ecosim up` and the benchmarks use).
    pub thread_per_system: bool,
    /// The reference SAR/AVR.
    pub sar: SarConfig,
    /// A national requirement broken on purpose (its REQUIREMENTS.md id): the
    /// simulator that owns the rule breaks exactly that rule, so `ecosim mutants`
    /// can show the scenarios catch it. Never set otherwise.
    pub mutant: Option<String>,
    /// Accounts added to (or replacing) the defaults.
    pub accounts: Vec<Account>,
}

/// Settings of the reference SAR/AVR.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SarConfig {
    /// Defects to switch on: the reference SAR/AVR then breaks one requirement on
    /// purpose, so `ecosim certify` can be shown to catch it. Never on by default.
    pub defects: Vec<SarDefect>,
}

impl Config {
    /// Whether the journal is shown masked (see [`AdminConfig::mask_journal`]).
    pub fn masks_journal(&self) -> bool {
        self.admin.mask_journal.unwrap_or(!self.bind.is_loopback())
    }

    /// Whether the national requirement `id` is broken on purpose (see [`Config::mutant`]).
    pub fn mutant(&self, id: &str) -> bool {
        self.mutant.as_deref() == Some(id)
    }
}

impl SarConfig {
    /// Whether `defect` is switched on.
    pub fn has(&self, defect: SarDefect) -> bool {
        self.defects.contains(&defect)
    }
}

/// A way to break the reference SAR/AVR on purpose, and the requirement it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SarDefect {
    /// Gives up on a 5xx, 429, dropped connection or timeout (IFC-RETRY).
    NoRetry,
    /// Retries at once, ignoring `Retry-After` (IFC-RETRY).
    IgnoreRetryAfter,
    /// A new `Idempotency-Key` on every attempt (IFC-IDEMP).
    NewIdempotencyKey,
    /// Retries a 4xx as it is, forever (IFC-4XX).
    Retry4xx,
    /// Texts a minor's CUN to the minor's own mobile (ORD-6.1a).
    MinorOwnPhone,
    /// Puts the codice fiscale in the SMS and e-mail (IFC-MINIMISE).
    CfInMessage,
    /// Sends the contacts to Sistema TS although it does not send the CUN (ORD-3.1a5).
    ContactsToTs,
    /// Never sends the e-mail (ORD-6.1b).
    NoEmail,
    /// Sends the CUN only for positive results (ORD-3.1c).
    PositiveOnly,
    /// Forgets the CUN Sistema TS returned (ORD-3.1b).
    ForgetCun,
    /// Accepts a test dated in the future (ORD-3.1a).
    AcceptFutureDate,
    /// Holds results back for 90 s before sending them to Sistema TS (ORD-3.1t).
    LateSend,
    /// The AVR registers an infection after a first dose and counts it (AVR-3b).
    #[serde(rename = "avr-3b")]
    Avr3b,
    /// The AVR registers a COVID dose without the contacts confirmation (AVR-5a).
    #[serde(rename = "avr-5a")]
    Avr5a,
    /// The AVR takes a mobile number with spaces or separators (AVR-5b).
    #[serde(rename = "avr-5b")]
    Avr5b,
    /// The AVR keeps no green-pass contacts and proposes none (AVR-5c).
    #[serde(rename = "avr-5c")]
    Avr5c,
    /// The AVR gives an additional dose to anyone (AVR-6b).
    #[serde(rename = "avr-6b")]
    Avr6b,
    /// The AVR gives a booster to anyone (AVR-6c).
    #[serde(rename = "avr-6c")]
    Avr6c,
    /// The AVR treats a non-EMA cycle abroad like any other and gives non-EMA vaccines (AVR-6d).
    #[serde(rename = "avr-6d")]
    Avr6d,
    /// The AVR ignores the paediatric formulation rule (AVR-7).
    #[serde(rename = "avr-7")]
    Avr7,
}

impl SarDefect {
    /// Every defect.
    pub const ALL: [SarDefect; 20] = [
        Self::NoRetry,
        Self::IgnoreRetryAfter,
        Self::NewIdempotencyKey,
        Self::Retry4xx,
        Self::MinorOwnPhone,
        Self::CfInMessage,
        Self::ContactsToTs,
        Self::NoEmail,
        Self::PositiveOnly,
        Self::ForgetCun,
        Self::AcceptFutureDate,
        Self::LateSend,
        Self::Avr3b,
        Self::Avr5a,
        Self::Avr5b,
        Self::Avr5c,
        Self::Avr6b,
        Self::Avr6c,
        Self::Avr6d,
        Self::Avr7,
    ];

    /// Whether the defect is the AVR's (else the SAR's, or both for the IFC ones).
    pub fn is_avr(self) -> bool {
        self.breaks().starts_with("AVR-")
    }

    /// The requirement the defect breaks.
    pub fn breaks(self) -> &'static str {
        match self {
            Self::NoRetry | Self::IgnoreRetryAfter => "IFC-RETRY",
            Self::NewIdempotencyKey => "IFC-IDEMP",
            Self::Retry4xx => "IFC-4XX",
            Self::MinorOwnPhone => "ORD-6.1a",
            Self::CfInMessage => "IFC-MINIMISE",
            Self::ContactsToTs => "ORD-3.1a5",
            Self::NoEmail => "ORD-6.1b",
            Self::PositiveOnly => "ORD-3.1c",
            Self::ForgetCun => "ORD-3.1b",
            Self::AcceptFutureDate => "ORD-3.1a",
            Self::LateSend => "ORD-3.1t",
            Self::Avr3b => "AVR-3b",
            Self::Avr5a => "AVR-5a",
            Self::Avr5b => "AVR-5b",
            Self::Avr5c => "AVR-5c",
            Self::Avr6b => "AVR-6b",
            Self::Avr6c => "AVR-6c",
            Self::Avr6d => "AVR-6d",
            Self::Avr7 => "AVR-7",
        }
    }
}

/// Clock settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// Virtual time when the ecosystem starts.
    pub start: Timestamp,
}

/// Base URLs of the systems; unset ones are `http://<bind>:<base_port + offset>`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Urls {
    /// The control plane.
    pub control_plane: Option<String>,
    /// Sistema TS.
    pub sistema_ts: Option<String>,
    /// Immuni backend.
    pub immuni: Option<String>,
    /// AVN.
    pub avn: Option<String>,
    /// PN-DGC.
    pub pn_dgc: Option<String>,
    /// SMS gateway.
    pub sms_gateway: Option<String>,
    /// The SMTP listener, `host:port`.
    pub smtp: Option<String>,
    /// SAR/AVR (the reference one, or a vendor's).
    pub sar: Option<String>,
}

impl Urls {
    /// The key of `system` in `[urls]` (`sistema_ts`, `pn_dgc`...).
    pub fn key(system: System) -> String {
        system.name().replace('-', "_")
    }

    fn slot(&self, system: System) -> &Option<String> {
        match system {
            System::ControlPlane => &self.control_plane,
            System::SistemaTs => &self.sistema_ts,
            System::Immuni => &self.immuni,
            System::Avn => &self.avn,
            System::PnDgc => &self.pn_dgc,
            System::SmsGateway => &self.sms_gateway,
            System::Sar => &self.sar,
        }
    }

    fn slot_mut(&mut self, system: System) -> &mut Option<String> {
        match system {
            System::ControlPlane => &mut self.control_plane,
            System::SistemaTs => &mut self.sistema_ts,
            System::Immuni => &mut self.immuni,
            System::Avn => &mut self.avn,
            System::PnDgc => &mut self.pn_dgc,
            System::SmsGateway => &mut self.sms_gateway,
            System::Sar => &mut self.sar,
        }
    }
}

/// Retention and expiry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// How long Sistema TS keeps test results (ORD-3.2).
    pub test_results: HumanDuration,
    /// How long an authorised OTP lives at Immuni (IMM-OTP).
    pub otp_ttl: HumanDuration,
    /// How long an `Idempotency-Key` is remembered (Sistema TS forgets a key sooner,
    /// with the test result it made).
    pub idempotency_keys: HumanDuration,
    /// How long Immuni keeps an upload and its exposure keys.
    pub uploads: HumanDuration,
}

/// How AVN forwards doses to Sistema TS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forwarding {
    /// Once a day at midnight (the default, DPCM 17-6-2021 art. 5).
    Daily,
    /// As soon as a dose arrives.
    Immediate,
}

/// Artificial waits and schedules.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// No artificial waits at all (tests, scenario runs).
    pub fast: bool,
    /// Mean of Immuni's anti-brute-force wait.
    pub immuni_wait_mean: HumanDuration,
    /// Standard deviation of that wait.
    pub immuni_wait_sigma: HumanDuration,
    /// AVN to Sistema TS forwarding.
    pub avn_forwarding: Forwarding,
    /// Longest a clock move waits (real time), after each scheduled job, for the
    /// ecosystem to handle what the job set off.
    pub settle_limit: HumanDuration,
}

/// The admin API's protection and the journal's masking.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The token every `/_admin` call but `GET /_admin/health` must carry as
    /// `Authorization: Bearer <token>`; `None`: open (`ecosim up` makes one up when
    /// it listens beyond loopback and none is given).
    pub token: Option<String>,
    /// Whether the journal masks codici fiscali, CUNs, OTPs, card numbers and
    /// digits, AUTHCODEs; `None`: masked when listening beyond loopback.
    pub mask_journal: Option<bool>,
}

/// How each system's listener bounds its connections (see [`crate::server`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connections {
    /// Most connections open at once per listener.
    pub max: usize,
    /// Time a client has to send a request's headers, and the longest idle wait of a
    /// kept-alive connection between requests.
    pub header_timeout: HumanDuration,
    /// Time a client has to send a request's body once its headers are in (then 408).
    pub body_timeout: HumanDuration,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            max: 1024,
            header_timeout: HumanDuration(SignedDuration::from_secs(10)),
            body_timeout: HumanDuration(SignedDuration::from_secs(30)),
        }
    }
}

impl Connections {
    /// The listener's limits.
    pub fn limits(&self) -> crate::server::Limits {
        crate::server::Limits { max_connections: self.max.max(1), header_timeout: self.header_timeout.to_std() }
    }
}

/// Retry policy of the outboxes: exponential backoff with seeded jitter, never giving
/// up on a transient failure (nothing acknowledged is lost).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait.
    pub base: HumanDuration,
    /// Longest wait.
    pub cap: HumanDuration,
    /// How many deliveries an outbox runs at once.
    pub concurrency: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            base: HumanDuration(SignedDuration::from_millis(200)),
            cap: HumanDuration(SignedDuration::from_secs(30)),
            concurrency: 64,
        }
    }
}

/// After `max_failures` failed CUN + card checks for the same card digits within
/// `window`, Sistema TS answers 429 until the window has passed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForce {
    /// Failures allowed in the window.
    pub max_failures: u32,
    /// The window, on the shared clock.
    pub window: HumanDuration,
}

impl Default for BruteForce {
    fn default() -> Self {
        Self { max_failures: 5, window: HumanDuration(SignedDuration::from_hours(1)) }
    }
}

/// The Immuni backend's settings, named after the real backend's (`config.py`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImmuniConfig {
    /// Refuse an inconsistent TEK batch with 400/1001 instead of answering 204 and
    /// dropping its keys, as the real backend did (IMM-UPLOAD).
    pub strict_teks: bool,
    /// Most keys in one upload (`MAX_KEYS_PER_UPLOAD`).
    pub max_keys_per_upload: usize,
    /// Chance, in percent, that a dummy check (check-otp, check-cun, get-dgc)
    /// answers 401 (`DUMMY_DATA_TOKEN_ERROR_CHANCE_PERCENT`), so dummy traffic looks
    /// like real traffic.
    pub dummy_error_percent: u8,
    /// Most failed app checks (any app call answered 401: a wrong OTP or CUN) one
    /// client address may make within `failed_checks_window`; beyond, its app calls
    /// answer 429 until the window passes. 0: no limit. (ecosim's own: the real
    /// backend left this to the infrastructure in front of it.)
    pub failed_checks_per_client: u32,
    /// The window of `failed_checks_per_client`, real time.
    pub failed_checks_window: HumanDuration,
}

impl Default for ImmuniConfig {
    fn default() -> Self {
        Self {
            strict_teks: false,
            max_keys_per_upload: 30,
            dummy_error_percent: 1,
            failed_checks_per_client: 60,
            failed_checks_window: HumanDuration(SignedDuration::from_mins(1)),
        }
    }
}

/// SMS gateway settings.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// Numbers (E.164) whose messages fail to deliver.
    pub unreachable: Vec<String>,
}

/// Journal settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// Most exchanges kept in memory; older ones are dropped and counted.
    pub cap: usize,
    /// Most bytes kept in memory (entries, their strings and kept bodies); past it
    /// the oldest are dropped and counted.
    pub budget: ByteSize,
    /// Most bytes kept of one body (the rest is cut, with a note of how much).
    pub body_cap: ByteSize,
}

/// A number of bytes written as `64MiB`, `512KiB`, `1GiB` or a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(format!("`{s}` is not a size: write e.g. \"64MiB\", \"512KiB\" or a number of bytes")),
        };
        digits
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .map(Self)
            .ok_or_else(|| format!("`{s}` is not a size: write e.g. \"64MiB\", \"512KiB\" or a number of bytes"))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            n if n > 0 && n % (1 << 30) == 0 => write!(f, "{}GiB", n >> 30),
            n if n > 0 && n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            n if n > 0 && n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}"),
        }
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 42,
            population: 10_000,
            bind: IpAddr::from([127, 0, 0, 1]),
            base_port: 8080,
            data_dir: None,
            clock: ClockConfig::default(),
            urls: Urls::default(),
            retention: Retention::default(),
            timing: Timing::default(),
            journal: JournalConfig::default(),
            admin: AdminConfig::default(),
            connections: Connections::default(),
            retry: RetryConfig::default(),
            sms: SmsConfig::default(),
            brute_force: BruteForce::default(),
            immuni: ImmuniConfig::default(),
            thread_per_system: false,
            sar: SarConfig::default(),
            mutant: None,
            accounts: Vec::new(),
        }
    }
}

impl Default for ClockConfig {
    fn default() -> Self {
        // 08:00 in Rome on 1 October 2021, the middle of the period the flows describe.
        Self { start: Timestamp::from_second(1_633_068_000).unwrap_or(Timestamp::UNIX_EPOCH) }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            test_results: HumanDuration(SignedDuration::from_hours(14 * 24)),
            otp_ttl: HumanDuration(SignedDuration::from_secs(150)),
            idempotency_keys: HumanDuration(SignedDuration::from_hours(14 * 24)),
            uploads: HumanDuration(SignedDuration::from_hours(14 * 24)),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            fast: false,
            immuni_wait_mean: HumanDuration(SignedDuration::from_millis(150)),
            immuni_wait_sigma: HumanDuration(SignedDuration::from_millis(20)),
            avn_forwarding: Forwarding::Daily,
            settle_limit: HumanDuration(SignedDuration::from_secs(5)),
        }
    }
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self { cap: 100_000, budget: ByteSize(crate::journal::BUDGET), body_cap: ByteSize(crate::journal::BODY_LIMIT) }
    }
}

impl Config {
    /// Reads a TOML file; every key is optional.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The configuration for in-process test ecosystems: small, fast, in memory.
    pub fn for_tests(seed: u64) -> Self {
        Self {
            seed,
            population: 2_000,
            base_port: 0,
            timing: Timing { fast: true, ..Timing::default() },
            ..Self::default()
        }
    }

    /// The port a system listens on by default (0 when the base port is 0).
    pub fn port_of(&self, system: System) -> u16 {
        if self.base_port == 0 { 0 } else { self.base_port.saturating_add(system.port_offset()) }
    }

    /// Where e-mail is sent: `urls.smtp`, or `<bind>:<base_port + 25>`.
    pub fn smtp_addr(&self) -> String {
        self.urls.smtp.clone().unwrap_or_else(|| format!("{}:{}", self.bind, self.smtp_port()))
    }

    /// The SMTP port (base + 25).
    pub fn smtp_port(&self) -> u16 {
        if self.base_port == 0 { 0 } else { self.base_port.saturating_add(SMTP_PORT_OFFSET) }
    }

    /// The base URL other systems use to reach `system`.
    pub fn url_of(&self, system: System) -> String {
        match self.configured_url(system) {
            Some(url) => url.to_owned(),
            None => format!("http://{}:{}", self.bind, self.port_of(system)),
        }
    }

    /// The URL `[urls]` gives `system` (without a trailing `/`), if any.
    pub fn configured_url(&self, system: System) -> Option<&str> {
        self.urls.slot(system).as_deref().map(|url| url.trim_end_matches('/'))
    }

    /// Sets the base URL of `system` (used once listeners are bound on port 0).
    pub fn set_url(&mut self, system: System, url: String) {
        *self.urls.slot_mut(system) = Some(url);
    }

    /// The default accounts with this configuration's additions applied.
    pub fn accounts(&self) -> Accounts {
        let mut a = Accounts::defaults();
        for extra in &self.accounts {
            a.insert(extra.clone());
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml(""), Ok(Config::default()));
    }

    #[test]
    fn every_documented_key_parses() {
        let c = Config::from_toml(
            r#"
            seed = 7
            population = 500
            base_port = 9000
            data_dir = "data"
            [clock]
            start = "2021-06-01T08:00:00Z"
            [urls]
            sar = "http://10.0.0.5:9000/"
            [retention]
            test_results = "14d"
            otp_ttl = "150s"
            [timing]
            fast = true
            immuni_wait_mean = "150ms"
            immuni_wait_sigma = "20ms"
            avn_forwarding = "immediate"
            [journal]
            cap = 10
            budget = "8MiB"
            body_cap = 4096
            [immuni]
            strict_teks = true
            max_keys_per_upload = 14
            dummy_error_percent = 0
            [[accounts]]
            name = "sar-160"
            password = "changed"
            role = "sar"
            region = "160"
            "#,
        )
        .expect("valid");
        assert_eq!(c.seed, 7);
        assert_eq!(c.url_of(System::Sar), "http://10.0.0.5:9000");
        assert_eq!(c.url_of(System::SistemaTs), "http://127.0.0.1:9001");
        assert_eq!(c.smtp_port(), 9025);
        assert_eq!(c.timing.avn_forwarding, Forwarding::Immediate);
        assert_eq!(
            c.immuni,
            ImmuniConfig {
                strict_teks: true,
                max_keys_per_upload: 14,
                dummy_error_percent: 0,
                ..ImmuniConfig::default()
            }
        );
        assert_eq!(c.accounts().get("sar-160").map(|a| a.password.as_str()), Some("changed"));
        assert_eq!((c.journal.budget, c.journal.body_cap), (ByteSize(8 << 20), ByteSize(4096)));
    }

    #[test]
    fn sizes_read_as_written_and_refuse_what_is_not_one() {
        for (text, bytes) in [("64MiB", 64 << 20), ("512KiB", 512 << 10), ("1GiB", 1 << 30), ("100", 100)] {
            let size: ByteSize = text.parse().expect(text);
            assert_eq!(size, ByteSize(bytes));
            assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
        }
        for bad in ["", "MiB", "64MB", "-1", "1.5GiB", "99999999999999999999GiB"] {
            let e = bad.parse::<ByteSize>().expect_err(bad);
            assert!(e.contains("write e.g."), "{e}");
        }
    }

    #[test]
    fn a_misspelt_key_is_refused_with_its_position() {
        let err = Config::from_toml("seeed = 1").unwrap_err();
        assert!(err.contains("seeed") && err.contains("line 1"), "{err}");
        let err = Config::from_toml("[retention]\notp_ttl = \"150\"").unwrap_err();
        assert!(err.contains("not a duration"), "{err}");
    }
}
