//! Fault rules: make a system fail on purpose, to test what its callers do.
//!
//! A rule matches requests by system, method, path pattern (`*` matches any run of
//! characters) and caller account, and then answers with a status, waits, drops the
//! connection, or hangs until a timeout and then drops it. It fires a number of
//! `times`, or with a seeded `probability`, or always. Rules are tried in the order
//! they were added; the first that fires wins. The boundary layer
//! ([`crate::boundary`]) applies them in every simulator.
//!
//! ```json
//! {"match": {"method": "POST", "path": "/ts/v1/test-results*", "caller": "sar-160"},
//!  "action": {"status": 503, "retry_after": 1}, "times": 2}
//! ```

use std::sync::{Arc, Mutex};

use crate::duration::HumanDuration;
use crate::problem::{FieldError, Problem};
use ecosim_domain::rng::SeededRng;

/// Which requests a rule applies to; an absent field matches anything.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultMatch {
    /// System name (`sistema-ts`); set by the admin API of the system it was posted to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// HTTP method, case-insensitive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path pattern; `*` matches any run of characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Caller account name (`sar-160`), `app` or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultAction {
    /// Answer with this status (a problem+json body) instead of serving the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With `status`: a `Retry-After` header, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Wait this long (real time) first; alone, the request is then served normally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<HumanDuration>,
    /// Close the connection without answering.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
    /// Hang this long (real time), then close the connection without answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Serve the request (the system commits what it asks) and then close the
    /// connection without sending the answer: a reply lost after the commit, which
    /// only a caller that retries with the same `Idempotency-Key` survives unharmed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_reply: bool,
}

/// A fault rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Assigned when added.
    #[serde(default)]
    pub id: u64,
    /// Which requests.
    #[serde(rename = "match", default)]
    pub matcher: FaultMatch,
    /// What happens.
    pub action: FaultAction,
    /// Fire this many times, then stop (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Fire with this probability (seeded); absent: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// How many times it has fired.
    #[serde(default)]
    pub hits: u32,
}

impl FaultRule {
    /// Checks the rule is meaningful; errors name the field.
    pub fn validate(&self) -> Result<(), Problem> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| {
            errors.push(FieldError { field: field.into(), message: message.into() });
        };
        let a = &self.action;
        let endings = usize::from(a.status.is_some())
            + usize::from(a.drop)
            + usize::from(a.timeout.is_some())
            + usize::from(a.drop_reply);
        if endings > 1 {
            err("action", "choose one of status, drop, drop_reply and timeout");
        }
        if endings == 0 && a.delay.is_none() {
            err("action", "give a status, a delay, drop: true, drop_reply: true or a timeout");
        }
        if let Some(s) = a.status
            && !(100..=599).contains(&s)
        {
            err("action.status", "must be an HTTP status 100-599");
        }
        // Waits are real time: past an hour a rule only wedges connections.
        let hour = jiff::SignedDuration::from_hours(1);
        for (field, wait) in [("action.delay", a.delay), ("action.timeout", a.timeout)] {
            if wait.is_some_and(|d| d.0 > hour || d.0.is_negative()) {
                err(field, "must be between 0 and 1h");
            }
        }
        if a.retry_after.is_some_and(|s| s > 3600) {
            err("action.retry_after", "must be at most 3600 seconds");
        }
        if a.retry_after.is_some() && a.status.is_none() {
            err("action.retry_after", "only goes with a status");
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            err("probability", "must be between 0 and 1");
        }
        if self.times == Some(0) {
            err("times", "must be at least 1 (omit it for no limit)");
        }
        if let Some(m) = &self.matcher.method
            && (m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic()))
        {
            err("match.method", "must be an HTTP method such as POST");
        }
        if errors.is_empty() { Ok(()) } else { Err(Problem::invalid(errors)) }
    }

    fn matches(&self, system: &str, method: &str, path: &str, caller: &str) -> bool {
        let m = &self.matcher;
        m.system.as_deref().is_none_or(|s| s == system)
            && m.method.as_deref().is_none_or(|x| x.eq_ignore_ascii_case(method))
            && m.path.as_deref().is_none_or(|p| glob(p, path))
            && m.caller.as_deref().is_none_or(|c| c == caller)
            && self.times.is_none_or(|t| self.hits < t)
    }
}

/// `*` matches any run of characters (including `/`); everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// A rule that fired: what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The rule's id.
    pub rule: u64,
    /// Its action.
    pub action: FaultAction,
}

struct State {
    rules: Vec<FaultRule>,
    next_id: u64,
    rng: SeededRng,
}

/// The fault rules of an ecosystem (shared by all its systems).
#[derive(Clone)]
pub struct Faults(Arc<Mutex<State>>);

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("rules", &self.list().len()).finish()
    }
}

impl Faults {
    /// No rules; probabilities drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(State { rules: Vec::new(), next_id: 1, rng: SeededRng::derive(seed, "faults") })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule after validating it; returns it with its id.
    pub fn add(&self, mut rule: FaultRule) -> Result<FaultRule, Problem> {
        rule.validate()?;
        let mut st = self.lock();
        rule.id = st.next_id;
        rule.hits = 0;
        st.next_id += 1;
        st.rules.push(rule.clone());
        Ok(rule)
    }

    /// Every rule, with its hits.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().rules.clone()
    }

    /// Removes rule `id`; `false` if there is none.
    pub fn remove(&self, id: u64) -> bool {
        let mut st = self.lock();
        let before = st.rules.len();
        st.rules.retain(|r| r.id != id);
        st.rules.len() != before
    }

    /// Removes every rule scoped to `system` (all rules if `None`).
    pub fn clear(&self, system: Option<&str>) {
        let mut st = self.lock();
        match system {
            Some(s) => st.rules.retain(|r| r.matcher.system.as_deref() != Some(s)),
            None => st.rules.clear(),
        }
    }

    /// The first rule that fires for this request, counting its hit.
    pub fn decide(&self, system: &str, method: &str, path: &str, caller: &str) -> Option<Fired> {
        let mut guard = self.lock();
        let st = &mut *guard;
        for rule in st.rules.iter_mut() {
            if !rule.matches(system, method, path, caller) {
                continue;
            }
            if let Some(p) = rule.probability
                && !st.rng.chance(p)
            {
                continue;
            }
            rule.hits += 1;
            return Some(Fired { rule: rule.id, action: rule.action.clone() });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> FaultRule {
        serde_json::from_value(json).expect("rule")
    }

    #[test]
    fn absurd_waits_are_refused_naming_the_field() {
        let fields =
            |json| rule(json).validate().err().map(|p| p.errors.iter().map(|e| e.field.clone()).collect::<Vec<_>>());
        assert_eq!(fields(serde_json::json!({"action": {"delay": "4000000000d"}})), Some(vec!["action.delay".into()]));
        assert_eq!(fields(serde_json::json!({"action": {"timeout": "2h"}})), Some(vec!["action.timeout".into()]));
        assert_eq!(
            fields(serde_json::json!({"action": {"status": 503, "retry_after": 100000}})),
            Some(vec!["action.retry_after".into()])
        );
        assert_eq!(fields(serde_json::json!({"action": {"delay": "30m"}})), None);
    }

    #[test]
    fn glob_matches_runs_of_characters() {
        assert!(glob("/ts/v1/test-results*", "/ts/v1/test-results/CUN-X"));
        assert!(glob("*/verify", "/his/v1/cun/verify"));
        assert!(glob("/a/*/c", "/a/b/b/c"));
        assert!(!glob("/a/*/c", "/a/b/d"));
        assert!(glob("/exact", "/exact"));
        assert!(!glob("/exact", "/exact/"));
        assert!(glob("*", ""));
    }

    #[test]
    fn a_rule_fires_its_number_of_times_then_stops() {
        let f = Faults::new(1);
        f.add(rule(
            serde_json::json!({"match": {"method": "post", "path": "/ts/*"}, "action": {"status": 503}, "times": 2}),
        ))
        .expect("valid");
        assert!(f.decide("sistema-ts", "GET", "/ts/x", "sar-160").is_none());
        assert!(f.decide("sistema-ts", "POST", "/ts/x", "sar-160").is_some());
        assert!(f.decide("sistema-ts", "POST", "/ts/x", "sar-160").is_some());
        assert!(f.decide("sistema-ts", "POST", "/ts/x", "sar-160").is_none());
        assert_eq!(f.list()[0].hits, 2);
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let count = |seed| {
            let f = Faults::new(seed);
            f.add(rule(serde_json::json!({"action": {"drop": true}, "probability": 0.3}))).expect("valid");
            (0..1000).filter(|_| f.decide("s", "GET", "/", "x").is_some()).count()
        };
        assert_eq!(count(5), count(5));
        assert!((230..370).contains(&count(5)), "{}", count(5));
    }

    #[test]
    fn meaningless_rules_are_refused_naming_the_field() {
        let f = Faults::new(1);
        for (json, field) in [
            (serde_json::json!({"action": {}}), "action"),
            (serde_json::json!({"action": {"status": 503, "drop": true}}), "action"),
            (serde_json::json!({"action": {"status": 42}}), "action.status"),
            (serde_json::json!({"action": {"drop": true}, "probability": 2.0}), "probability"),
            (serde_json::json!({"action": {"drop": true}, "times": 0}), "times"),
        ] {
            let p = f.add(rule(json)).expect_err("invalid");
            assert_eq!(p.errors[0].field, field);
        }
    }

    #[test]
    fn rules_scoped_to_a_system_and_caller_match_only_them() {
        let f = Faults::new(1);
        f.add(rule(
            serde_json::json!({"match": {"system": "immuni", "caller": "sistema-ts"}, "action": {"status": 500}}),
        ))
        .expect("valid");
        assert!(f.decide("sistema-ts", "POST", "/v1/otp", "sistema-ts").is_none());
        assert!(f.decide("immuni", "POST", "/v1/otp", "app").is_none());
        assert!(f.decide("immuni", "POST", "/v1/otp", "sistema-ts").is_some());
        f.clear(Some("immuni"));
        assert!(f.list().is_empty());
    }
}
