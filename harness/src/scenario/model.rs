//! The scenario grammar, as Rust types (YAML files deserialise into these).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One scenario file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Stable id (the JUnit test name).
    pub id: String,
    /// What it shows, in a sentence.
    pub title: String,
    /// Requirement ids it verifies (REQUIREMENTS.md).
    #[serde(default)]
    pub requirements: Vec<String>,
    /// The people and set-up it needs.
    #[serde(default)]
    pub given: Given,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// The line of each step in its file (filled in when loaded).
    #[serde(skip)]
    #[schemars(skip)]
    pub lines: Vec<usize>,
}

impl Scenario {
    /// Whether a step moves the shared virtual clock: such a scenario cannot run
    /// against a system under test, which keeps real time (the clock contract).
    pub fn moves_the_clock(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.action, Action::ClockAdvance(_)))
    }

    /// Why the scenario cannot run on an ecosystem configured as `config`, if it cannot.
    pub fn cannot_run_on(&self, config: &ecosim_core::config::Config) -> Option<String> {
        match self.given.avn_forwarding.map(ecosim_core::config::Forwarding::from) {
            Some(f) if f != config.timing.avn_forwarding => Some(format!(
                "this scenario needs AVN forwarding {f:?}; the ecosystem forwards {:?}",
                config.timing.avn_forwarding
            )),
            _ => None,
        }
    }
}

/// The set-up.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Given {
    /// Citizens by the name the steps use, chosen from the seeded registry.
    #[serde(default)]
    pub citizens: BTreeMap<String, CitizenSpec>,
    /// How AVN forwards doses to Sistema TS for this scenario: `daily` (at midnight,
    /// the default) or `immediate`. Against a system under test the clock never
    /// reaches midnight and AVN forwards at once: a scenario that needs `daily` is
    /// skipped there.
    pub avn_forwarding: Option<AvnForwarding>,
}

/// `given.avn_forwarding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AvnForwarding {
    /// At midnight on the shared clock.
    Daily,
    /// As soon as a dose arrives.
    Immediate,
}

impl From<AvnForwarding> for ecosim_core::config::Forwarding {
    fn from(f: AvnForwarding) -> Self {
        match f {
            AvnForwarding::Daily => Self::Daily,
            AvnForwarding::Immediate => Self::Immediate,
        }
    }
}

/// Which citizen to pick: the first of the registry (in order) with these properties
/// not already picked.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CitizenSpec {
    /// Region of residence (`"160"`, or `"{{region}}"`: the region under certification);
    /// `"!160"`: any other region.
    pub region: Option<String>,
    /// Under 18 today (true) or not (false).
    pub minor: Option<bool>,
    /// Has (true) or lacks (false) an own mobile number.
    pub mobile: Option<bool>,
    /// Has (true) or lacks (false) an e-mail.
    pub email: Option<bool>,
    /// Age band today, inclusive: `"18-64"`, `"65-"`, `"-11"`.
    pub age: Option<String>,
}

/// What a step must produce; absent fields are not checked.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// HTTP status.
    pub status: Option<u16>,
    /// Any of these statuses (where the requirement allows more than one answer).
    #[serde(default)]
    pub status_any: Vec<u16>,
    /// Immuni's `error_code`.
    pub error_code: Option<u64>,
    /// problem+json `requirement`.
    pub requirement: Option<String>,
    /// problem+json first field named.
    pub field: Option<String>,
    /// Values at JSON pointers of the answer (`/numero_dose: 2`, `/0/regione: "160"`).
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    /// Retry the call until the expectation holds, up to this long (real time: `5s`).
    pub within: Option<String>,
    /// Text the answer's `Ecosim-Warning` header must contain: what the simulator did
    /// beyond its answer (Immuni dropping an inconsistent key batch behind a 204).
    /// App steps only.
    pub warning: Option<String>,
}

/// One step: exactly one action, plus an optional expectation and the requirement
/// ids it verifies. In YAML a map: the action's name as the key (`lab.report: {...}`),
/// beside `expect` and `verifies`.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// What must follow.
    pub expect: Option<Expect>,
    /// Requirement ids this step verifies: their verdicts come from the steps that
    /// name them (a scenario's `requirements` with no step naming them are judged by
    /// the whole scenario).
    pub verifies: Vec<String>,
    /// A narration line for an audience: what the step shows, in plain words
    /// (`{{variables}}` filled in). The dashboard's player shows it; reports do not
    /// need it.
    pub say: Option<String>,
}

/// Declares the actions once: the enum, the names the grammar knows, reading one
/// from its YAML key and its JSON Schema.
macro_rules! actions {
    ($($(#[doc = $doc:literal])+ $name:literal => $variant:ident($ty:ty),)+) => {
        /// A step's action.
        #[derive(Debug, Clone)]
        pub enum Action {
            $($(#[doc = $doc])+ $variant($ty),)+
        }

        /// Every step name the grammar knows.
        pub const STEP_NAMES: &[&str] = &[$($name),+];

        /// Every key a step may have.
        const STEP_KEYS: &[&str] = &[$($name,)+ "expect", "verifies", "say"];

        impl Action {
            /// The action's name in scenario files (`lab.report`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// Reads the action named `name` from the map's next value; `None` if no
            /// action has that name.
            fn read<'de, A: serde::de::MapAccess<'de>>(name: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
                Ok(Some(match name {
                    $($name => Self::$variant(map.next_value()?),)+
                    _ => return Ok(None),
                }))
            }

            /// `(name, description, schema)` of each action.
            fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, String, schemars::Schema)> {
                vec![$(($name, [$($doc.trim()),+].join("\n"), generator.subschema_for::<$ty>()),)+]
            }
        }
    };
}

actions! {
    /// A lab reports a result to the SAR.
    "lab.report" => LabReport(LabReport),
    /// A region (or lab) sends a result straight to Sistema TS; captures `cun`.
    "ts.submit" => TsSubmit(LabReport),
    /// A region reads a record at Sistema TS.
    "ts.get" => TsGet(TsGet),
    /// A region corrects a record at Sistema TS.
    "ts.correct" => TsCorrect(TsCorrect),
    /// An SMS must arrive; the regex's named groups become variables.
    "sms.expect" => SmsExpect(InboxExpect),
    /// An e-mail must arrive; the regex's named groups become variables.
    "mail.expect" => MailExpect(InboxExpect),
    /// The journal must show an exchange between two systems (since the scenario began).
    "journal.expect" => JournalExpect(JournalExpect),
    /// No such exchange may happen (since the scenario began, until the window ends).
    "journal.absent" => JournalAbsent(JournalAbsent),
    /// No matching SMS may arrive within the window.
    "sms.absent" => SmsAbsent(InboxAbsent),
    /// No matching e-mail may arrive within the window.
    "mail.absent" => MailAbsent(InboxAbsent),
    /// The shared clock moves forward (`15d`, `151s`).
    "clock.advance" => ClockAdvance(String),
    /// A fault rule is added at a system.
    "fault" => Fault(Fault),
    /// The citizen's app makes a new OTP (saved as `otp`, or the name given).
    "app.new_otp" => AppNewOtp(NewOtp),
    /// The app checks its OTP.
    "app.check_otp" => AppCheckOtp(AppOtp),
    /// The app unlocks itself with the CUN and the card digits.
    "app.check_cun" => AppCheckCun(AppCheckCun),
    /// The app uploads its keys (with the OTP or the CUN it was unlocked with).
    "app.upload" => AppUpload(AppUpload),
    /// A call-centre operator unlocks, under a supervisor.
    "callcenter.unlock" => CallCenterUnlock(CallCenterUnlock),
    /// An ASL operator unlocks.
    "asl.unlock" => AslUnlock(AslUnlock),
    /// A vaccinator registers a dose at the AVR; saves its id as `<citizen>.dose`.
    "avr.vaccinate" => AvrVaccinate(AvrVaccinate),
    /// Any call to any system (for the interfaces without a step of their own).
    "http" => Http(HttpCall),
    /// The citizen's Immuni app retrieves a green certificate (`get-dgc`).
    "app.get_dgc" => AppGetDgc(AppGetDgc),
    /// A verifier checks an `HC1:` string against PN-DGC's published signer and the
    /// Italian rules at the clock's time; `expect.json` points into the DCC.
    "dgc.verify" => DgcVerify(DgcVerify),
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;

        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = Step;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a step: one action ({}) with an optional expect and verifies", STEP_NAMES.join(", "))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                use serde::de::Error;
                let (mut action, mut expect, mut verifies, mut say) = (None::<Action>, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "expect" if expect.is_none() => expect = Some(map.next_value()?),
                        "verifies" if verifies.is_none() => verifies = Some(map.next_value()?),
                        "expect" => return Err(A::Error::duplicate_field("expect")),
                        "verifies" => return Err(A::Error::duplicate_field("verifies")),
                        "say" if say.is_none() => say = Some(map.next_value()?),
                        "say" => return Err(A::Error::duplicate_field("say")),
                        name => match (Action::read(name, &mut map)?, &action) {
                            (None, _) => return Err(A::Error::unknown_field(name, STEP_KEYS)),
                            (Some(_), Some(first)) => {
                                return Err(A::Error::custom(format!(
                                    "a step has exactly one action; this one has {} and {name}",
                                    first.name()
                                )));
                            }
                            (Some(a), None) => action = Some(a),
                        },
                    }
                }
                let action = action.ok_or_else(|| {
                    A::Error::custom(format!("a step needs an action, one of: {}", STEP_NAMES.join(", ")))
                })?;
                Ok(Step { action, expect, verifies: verifies.unwrap_or_default(), say })
            }
        }

        deserializer.deserialize_map(StepVisitor)
    }
}

impl schemars::JsonSchema for Step {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let expect = generator.subschema_for::<Expect>();
        let verifies = generator.subschema_for::<Vec<String>>();
        let one_of: Vec<serde_json::Value> = Action::schemas(generator)
            .into_iter()
            .map(|(name, description, schema)| {
                serde_json::json!({
                    "type": "object",
                    "description": description,
                    "properties": {name: schema, "expect": expect, "verifies": verifies, "say": {
                        "type": "string",
                        "description": "A narration line for an audience (the dashboard's player shows it); {{variables}} are filled in."
                    }},
                    "required": [name],
                    "additionalProperties": false,
                })
            })
            .collect();
        schemars::json_schema!({
            "description": "One step: exactly one action, plus an optional expectation (`expect`), the requirement ids it verifies (`verifies`) and a narration line (`say`).",
            "oneOf": one_of,
        })
    }
}

/// `lab.report` / `ts.submit`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabReport {
    /// The citizen's name in `given`.
    pub citizen: String,
    /// `POSITIVO` or `NEGATIVO`.
    pub esito: String,
    /// `MOLECOLARE` (default) or `ANTIGENICO`.
    pub tipo_test: Option<String>,
    /// `YYYY-MM-DD`; default today.
    pub data_esecuzione: Option<String>,
    /// Account; default `lab-<region>` (`sar-<region>` for `ts.submit`).
    pub account: Option<String>,
    /// ORD-6.2 (`ts.submit` only).
    pub invio_cun_da_ts: Option<bool>,
}

/// `ts.get`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsGet {
    /// Account (`sar-160`).
    pub account: String,
    /// The CUN (`{{cun}}`).
    pub cun: String,
}

/// `ts.correct`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsCorrect {
    /// Account (`sar-160`).
    pub account: String,
    /// The CUN (`{{cun}}`).
    pub cun: String,
    /// The fields to correct, as the PATCH body.
    pub changes: serde_json::Value,
}

/// `sms.expect` / `mail.expect`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxExpect {
    /// A citizen's name (their mobile / e-mail), `<name>.parent` (the parent's mobile),
    /// or a number / address.
    pub to: String,
    /// A regex the text must match; named groups become variables.
    pub text: String,
    /// Sender, checked exactly if given.
    pub from: Option<String>,
    /// How long to wait (real time; default 10s).
    pub within: Option<String>,
    /// How many matching messages must be there in the end (default: at least one).
    pub count: Option<usize>,
    /// With `count`: once reached, keep watching this long (real time) and fail if a
    /// further one arrives (a late duplicate). Default `2s` with `count`.
    pub settle: Option<String>,
}

/// `sms.absent` / `mail.absent`: no message matching `text` reaches `to` (from `from`)
/// within `for`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboxAbsent {
    /// A citizen's name, `<name>.parent`, or a number / address.
    pub to: String,
    /// A regex; default: any message.
    pub text: Option<String>,
    /// Sender, checked exactly if given.
    pub from: Option<String>,
    /// How long to watch (real time; default 3s).
    #[serde(rename = "for")]
    pub window: Option<String>,
}

/// Which exchanges of the journal: by parties, route, status and bodies.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalMatch {
    /// Caller: an account (`sar-160`, `immuni`); `sar` for the `sar` service account
    /// or any region's SAR account, `avr` likewise; absent: anyone.
    pub from: Option<String>,
    /// Callee system (`sistema-ts`).
    pub to: String,
    /// HTTP method (or `SMTP`).
    pub method: Option<String>,
    /// A substring of the path.
    pub path: Option<String>,
    /// Status (0: the connection was dropped).
    pub status: Option<u16>,
    /// Values at JSON pointers of the request body (`/esito: POSITIVO`); `null` means
    /// absent or null.
    #[serde(default)]
    pub request: BTreeMap<String, serde_json::Value>,
    /// A regex the raw request body must match.
    pub request_text: Option<String>,
    /// Values at JSON pointers of the response body.
    #[serde(default)]
    pub response: BTreeMap<String, serde_json::Value>,
}

/// `journal.absent`: no exchange like this happens.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalAbsent {
    /// Which exchanges.
    #[serde(flatten)]
    pub matching: JournalMatch,
    /// How long to watch (real time; default 3s).
    #[serde(rename = "for")]
    pub window: Option<String>,
}

/// `journal.expect`: an exchange `from` -> `to` (system or account names), optionally
/// with this method, a path containing `path`, this status and these bodies.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalExpect {
    /// Which exchanges.
    #[serde(flatten)]
    pub matching: JournalMatch,
    /// How many such exchanges (default: at least one).
    pub count: Option<usize>,
    /// With `count`: once reached, keep watching this long (real time) and fail if
    /// there are more (a late duplicate or a retry that should not be). Default `2s`
    /// with `count`.
    pub settle: Option<String>,
    /// The real (wall-clock) time between one matching exchange and the next is at
    /// least this (`1900ms`): a retry that waits as `Retry-After` asked.
    pub min_gap: Option<String>,
    /// Every matching exchange carries the same, non-empty `Idempotency-Key`.
    #[serde(default)]
    pub same_key: bool,
    /// Every matching exchange carries the same, non-null value at these JSON pointers
    /// of the request (a business key a receiver deduplicates on: `/id_regionale`).
    #[serde(default)]
    pub same_value: Vec<String>,
    /// How long to keep looking (real time; default 5s): an exchange is journalled
    /// when its answer goes out, a moment after its effects show.
    pub within: Option<String>,
}

/// `fault`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The system (`sistema-ts`).
    pub system: String,
    /// The rule, as the admin API takes it.
    #[serde(rename = "match", default)]
    pub matcher: serde_json::Value,
    /// The action.
    pub action: serde_json::Value,
    /// How many times.
    pub times: Option<u32>,
}

/// `app.new_otp`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOtp {
    /// Variable name (default `otp`).
    pub save: Option<String>,
}

/// `app.check_otp`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppOtp {
    /// The OTP (`{{otp}}`).
    pub otp: String,
    /// Send as dummy traffic.
    #[serde(default)]
    pub dummy: bool,
}

/// `app.check_cun`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppCheckCun {
    /// Whose card.
    pub citizen: String,
    /// The CUN (`{{cun}}`).
    pub cun: String,
    /// Symptom-onset date.
    pub symptoms_started_on: Option<String>,
}

/// `app.upload`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppUpload {
    /// Upload with this OTP...
    pub otp: Option<String>,
    /// ...or after a CUN unlock with this CUN.
    pub cun: Option<String>,
    /// Province of domicile (default `RM`).
    pub province: Option<String>,
    /// The keys sent: `consistent` (default: one per day for 14 days) or
    /// `inconsistent` (one key off the grid of days, which Immuni drops).
    #[serde(default)]
    pub keys: KeyBatch,
}

/// The kind of key batch `app.upload` sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyBatch {
    /// One key per day for the last 14 days.
    #[default]
    Consistent,
    /// The same with the second key off the grid of days.
    Inconsistent,
}

/// `callcenter.unlock`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallCenterUnlock {
    /// The caller.
    pub citizen: String,
    /// The CUN they read.
    pub cun: String,
    /// The OTP their app shows.
    pub otp: String,
    /// The supervising health operator (default `supervisore-1`).
    pub supervisore: Option<String>,
    /// Symptom-onset date.
    pub data_inizio_sintomi: Option<String>,
    /// Card digits they read (default: the citizen's own).
    pub ultime_8_cifre_ts: Option<String>,
}

/// `asl.unlock`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AslUnlock {
    /// The citizen interviewed.
    pub citizen: String,
    /// The OTP their app shows.
    pub otp: String,
    /// Symptom-onset date.
    pub data_inizio_sintomi: String,
    /// ASL account (default `asl-<region>`).
    pub account: Option<String>,
}

/// `avr.vaccinate`: a dose as a vaccinator registers it; everything but the citizen
/// and the vaccine has a sensible default.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvrVaccinate {
    /// The citizen's name in `given`.
    pub citizen: String,
    /// AIC or catalogue code (`049269018`, `COMIRNATY-10`, `JANSSEN`, `SPUTNIK-V`).
    pub aic: String,
    /// Given this many days before today (default 0).
    pub days_ago: Option<i64>,
    /// Account (default `vaccinatore-<the citizen's region>`).
    pub account: Option<String>,
    /// Risk category (default `altro`).
    pub categoria_rischio: Option<String>,
    /// Health condition (default `nessuna`).
    pub condizione_sanitaria: Option<String>,
    /// `ciclo_primario`, `addizionale` or `booster` (default: the AVR decides).
    pub tipo_dose: Option<String>,
    /// Forced dose number.
    pub numero_dose_forzato: Option<u8>,
    /// Confirm a flagged registration (AVR-7).
    pub forza: Option<bool>,
    /// The contacts confirmation (default true).
    pub conferma_contatti: Option<bool>,
    /// The green-pass mobile (default the citizen's own).
    pub cellulare: Option<String>,
    /// A dose declared as given abroad, in this country (ISO alpha-2).
    pub estero: Option<String>,
}

/// `http`: one request; strings may use `{{variables}}` (a citizen `mario` gives
/// `{{mario.cf}}` and `{{mario.region}}`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    /// The system (`avn`, `sistema-ts`, `sar`...).
    pub system: String,
    /// `GET` (default), `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: Option<String>,
    /// Path and query.
    pub path: String,
    /// Account (Basic auth with its default password); none for anonymous.
    pub account: Option<String>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
    /// Variables to set from the answer: name -> JSON pointer (`id: /id`).
    #[serde(default)]
    pub save: BTreeMap<String, String>,
    /// Status when `expect.status` is not given (default 200).
    pub status: Option<u16>,
}

/// `app.get_dgc`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppGetDgc {
    /// Whose card (last 8 digits and expiry).
    pub citizen: String,
    /// `authcode`, `cun`, `nrfe`, `nucg` or `cuev`.
    pub token_type: String,
    /// The code as the citizen has it (`{{authcode}}`, `CUN-...`); the app hashes it.
    pub code: String,
    /// Card expiry to send instead of the real one (to see a mismatch).
    pub card_expiry: Option<String>,
}

/// `dgc.verify`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DgcVerify {
    /// The `HC1:` string (`{{hc1}}`).
    pub hc1: String,
    /// Expected verdict: `VALID`, `NOT_VALID_YET`, `EXPIRED`, `NOT_VALID`, `NOT_EU_DCC`.
    pub status: String,
}
