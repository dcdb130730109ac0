//! Accounts, roles and authentication.
//!
//! Every caller of every simulator is authenticated (APIS.md). The default set has,
//! for each region code R, `sar-R`, `avr-R`, `lab-R`, `vaccinatore-R` and `asl-R`;
//! plus `callcenter-1`, `supervisore-1`, the service accounts `immuni`, `sistema-ts`,
//! `avn`, `pn-dgc`, `sar`, and `sms-client`. The password of account A is `A-secret`;
//! HTTP Basic, or `Bearer A-secret` where tokens are used. A configuration file can
//! add accounts or change passwords.
//!
//! The boundary layer ([`crate::boundary`]) authenticates each request and puts the
//! [`Caller`] in its extensions; handlers take `Caller` as an extractor and check
//! roles and regions with plain functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;

use crate::problem::Problem;
use ecosim_domain::regions::regions;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A region's SAR at Sistema TS.
    Sar,
    /// A region's AVR at AVN.
    Avr,
    /// A laboratory or test facility.
    Lab,
    /// A vaccinator at the AVR.
    Vaccinatore,
    /// An ASL prevention-department operator.
    Asl,
    /// An Immuni call-centre operator.
    Callcenter,
    /// A supervising health operator (ORD-8.6).
    Supervisore,
    /// A system calling another system.
    Service,
    /// A client of the SMS gateway.
    SmsClient,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// Account name (the Basic user).
    pub name: String,
    /// Password (and Bearer token).
    pub password: String,
    /// Role.
    pub role: Role,
    /// Three-digit region code, for regional accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Account {
    fn new(name: String, role: Role, region: Option<&str>) -> Self {
        let password = format!("{name}-secret");
        Self { name, password, role, region: region.map(str::to_owned) }
    }
}

/// The `Authorization` value for HTTP Basic with `user` and `password`: what
/// [`Accounts::authenticate`] reads back.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The accounts of an ecosystem.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    // Shared, so identifying a caller on every request copies no strings.
    by_name: BTreeMap<String, Arc<Account>>,
}

impl Accounts {
    /// The default accounts of APIS.md.
    pub fn defaults() -> Self {
        let mut a = Self::default();
        for r in regions() {
            for (prefix, role) in [
                ("sar", Role::Sar),
                ("avr", Role::Avr),
                ("lab", Role::Lab),
                ("vaccinatore", Role::Vaccinatore),
                ("asl", Role::Asl),
            ] {
                a.insert(Account::new(format!("{prefix}-{}", r.code), role, Some(r.code)));
            }
        }
        a.insert(Account::new("callcenter-1".into(), Role::Callcenter, None));
        a.insert(Account::new("supervisore-1".into(), Role::Supervisore, None));
        for service in ["immuni", "sistema-ts", "avn", "pn-dgc", "sar"] {
            a.insert(Account::new(service.into(), Role::Service, None));
        }
        a.insert(Account::new("sms-client".into(), Role::SmsClient, None));
        a
    }

    /// Adds or replaces an account.
    pub fn insert(&mut self, account: Account) {
        self.by_name.insert(account.name.clone(), Arc::new(account));
    }

    /// The account named `name`.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.by_name.get(name).map(|a| &**a)
    }

    /// Every account, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.by_name.values().map(|a| &**a)
    }

    /// Checks an `Authorization` header value (Basic or Bearer).
    pub fn authenticate(&self, authorization: &str) -> Result<&Arc<Account>, AuthError> {
        let (scheme, rest) = authorization.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| AuthError::Malformed)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
            let (user, password) = text.split_once(':').ok_or(AuthError::Malformed)?;
            match self.by_name.get(user) {
                Some(a) if a.password == password => Ok(a),
                _ => Err(AuthError::BadCredentials),
            }
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.by_name.values().find(|a| a.password == rest).ok_or(AuthError::BadCredentials)
        } else {
            Err(AuthError::Malformed)
        }
    }
}

/// Why authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("this endpoint needs credentials: HTTP Basic (account:password) or Bearer token")]
    Missing,
    /// The header is not Basic or Bearer, or not decodable.
    #[error("the Authorization header is not valid Basic or Bearer credentials")]
    Malformed,
    /// Unknown account or wrong password.
    #[error("unknown account or wrong password")]
    BadCredentials,
}

/// Who sent a request, as the boundary layer found it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Valid credentials of a known account.
    Account(Arc<Account>),
    /// A Bearer token that is not an account token (Immuni's app sends its OTP hash).
    Token(String),
    /// No or bad credentials.
    Anonymous(AuthError),
}

impl Identity {
    /// From the request's `Authorization` header.
    pub fn of(parts_headers: &axum::http::HeaderMap, accounts: &Accounts) -> Self {
        match parts_headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            None => Self::Anonymous(AuthError::Missing),
            Some(h) => match accounts.authenticate(h) {
                Ok(a) => Self::Account(a.clone()),
                Err(e) => match h.trim().split_once(' ') {
                    Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                        Self::Token(token.trim().to_owned())
                    }
                    _ => Self::Anonymous(e),
                },
            },
        }
    }

    /// The name the journal shows: the account, `app` for a foreign Bearer, or `anonymous`.
    pub fn label(&self) -> &str {
        match self {
            Self::Account(a) => &a.name,
            Self::Token(_) => "app",
            Self::Anonymous(_) => "anonymous",
        }
    }
}

/// An authenticated caller; as an extractor it answers 401 problem+json when there is none.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Account>);

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<&Account, Problem> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let names: Vec<String> = roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
            Err(Problem::forbidden(format!(
                "account {} has role {:?}; this needs {}",
                self.0.name,
                self.0.role,
                names.join(" or ")
            )))
        }
    }

    /// For a service account, that it is one of `services` (least privilege: a
    /// system may call only what it calls in the real flow), or 403 naming them.
    /// Other roles pass (their role check is [`Caller::require_role`]).
    pub fn require_service(&self, services: &[&str]) -> Result<&Account, Problem> {
        if self.0.role != Role::Service || services.contains(&self.0.name.as_str()) {
            return Ok(&self.0);
        }
        let needed = if services.is_empty() {
            "no service account (it is not called by another system)".to_owned()
        } else {
            format!("the {} service account", services.join(" or "))
        };
        Err(Problem::forbidden(format!(
            "service account {} may not call this: it needs {needed}, the system that calls it in the real flow",
            self.0.name
        )))
    }

    /// The caller's region (regional accounts), or 403.
    pub fn region(&self) -> Result<&str, Problem> {
        self.0
            .region
            .as_deref()
            .ok_or_else(|| Problem::forbidden(format!("account {} belongs to no region", self.0.name)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Account(a)) => Ok(Caller(a.clone())),
            Some(Identity::Anonymous(e)) => Err(Problem::unauthorized(e.to_string())),
            Some(Identity::Token(_)) => Err(Problem::unauthorized(AuthError::BadCredentials.to_string())),
            None => Err(Problem::unauthorized(AuthError::Missing.to_string())),
        }
    }
}

/// The roles an extractor admits (a marker type per set, see [`roles`]).
pub trait Roles: Send + Sync + 'static {
    /// The roles.
    const ROLES: &'static [Role];
    /// The requirement a refusal names, if the rule has one (ORD-8.6 for the call centre).
    const REQUIREMENT: Option<&'static str> = None;
    /// With [`Role::Service`] among the roles: the service accounts admitted (the
    /// systems that call the route in the real flow, APIS.md); any other is 403.
    const SERVICES: &'static [&'static str] = &[];
}

/// Role markers for [`Regional`].
pub mod roles {
    use super::{Role, Roles};

    macro_rules! marker {
        ($($(#[$doc:meta])* $name:ident => [$($role:ident),+] $(from [$($svc:literal),+])? $(, $req:literal)?;)+) => {$(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Roles for $name {
                const ROLES: &'static [Role] = &[$(Role::$role),+];
                $(const REQUIREMENT: Option<&'static str> = Some($req);)?
                $(const SERVICES: &'static [&'static str] = &[$($svc),+];)?
            }
        )+};
    }

    marker! {
        /// A region's AVR.
        Avr => [Avr];

        /// A region's SAR.
        Sar => [Sar];
        /// A region's SAR, or a lab sending directly (ORD-5.2).
        SarOrLab => [Sar, Lab];
        /// A laboratory.
        Lab => [Lab];
        /// A vaccinator.
        Vaccinatore => [Vaccinatore];
        /// An ASL operator.
        Asl => [Asl];

        /// The regional systems and ASL operators that read the registry.
        RegistryReader => [Sar, Avr, Asl];
        /// A call-centre operator (ORD-8.6).
        Callcenter => [Callcenter], "ORD-8.6";
        /// Sistema TS (Immuni's `/v1/otp`, PN-DGC's events).
        SistemaTs => [Service] from ["sistema-ts"];
        /// AVN (its batches to Sistema TS).
        Avn => [Service] from ["avn"];
        /// Immuni (the HIS calls at Sistema TS).
        Immuni => [Service] from ["immuni"];
        /// A client of the SMS gateway, or a system that texts citizens: the SAR (the
        /// CUN), Sistema TS (ORD-6.2) and PN-DGC (the AUTHCODE).
        SmsSender => [SmsClient, Service] from ["sar", "sistema-ts", "pn-dgc"];
    }
}

/// A caller with one of `R`'s roles and a region, as an extractor: 401 without
/// credentials, 403 with another role or no region. Handlers get the region typed,
/// with no prelude of checks.
#[derive(Debug, Clone)]
pub struct Regional<R> {
    /// The account.
    pub account: Arc<Account>,
    /// Its three-digit region code.
    pub region: String,
    _roles: std::marker::PhantomData<R>,
}

impl<R> Regional<R> {
    /// The account's name.
    pub fn name(&self) -> &str {
        &self.account.name
    }
}

impl<R: Roles, S: Send + Sync> FromRequestParts<S> for Regional<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let account = Authorised::<R>::from_request_parts(parts, state).await?.account;
        let region = Caller(account.clone()).region()?.to_owned();
        Ok(Self { account, region, _roles: std::marker::PhantomData })
    }
}

/// A caller with one of `R`'s roles, as an extractor: 401 without credentials, 403
/// with another role, or a service account other than `R::SERVICES` (naming `R`'s
/// requirement, if any).
#[derive(Debug, Clone)]
pub struct Authorised<R> {
    /// The account.
    pub account: Arc<Account>,
    _roles: std::marker::PhantomData<R>,
}

impl<R> Authorised<R> {
    /// The account's name.
    pub fn name(&self) -> &str {
        &self.account.name
    }
}

impl<R: Roles, S: Send + Sync> FromRequestParts<S> for Authorised<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_role(R::ROLES).and_then(|_| caller.require_service(R::SERVICES)).map_err(|p| {
            match R::REQUIREMENT {
                Some(id) => p.with_requirement(id),
                None => p,
            }
        })?;
        Ok(Self { account: caller.0, _roles: std::marker::PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        basic_authorization(user, pass)
    }

    #[test]
    fn default_accounts_authenticate_with_basic_and_bearer() {
        let a = Accounts::defaults();
        assert_eq!(a.authenticate(&basic("sar-160", "sar-160-secret")).map(|a| a.role), Ok(Role::Sar));
        assert_eq!(
            a.authenticate(&basic("sar-160", "sar-160-secret")).ok().and_then(|a| a.region.clone()),
            Some("160".into())
        );
        assert_eq!(a.authenticate("Bearer sms-client-secret").map(|a| a.role), Ok(Role::SmsClient));
        assert_eq!(a.authenticate(&basic("sar-160", "nope")), Err(AuthError::BadCredentials));
        assert_eq!(a.authenticate("Digest x"), Err(AuthError::Malformed));
        assert_eq!(a.iter().count(), 21 * 5 + 2 + 5 + 1);
    }

    #[test]
    fn role_checks_say_what_is_needed() {
        let a = Accounts::defaults();
        let caller = Caller(Arc::new(a.get("lab-160").cloned().expect("default")));
        let err = caller.require_role(&[Role::Sar]).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(err.detail.contains("needs sar"), "{}", err.detail);
        assert_eq!(caller.region().ok(), Some("160"));
        let sar_service = Caller(Arc::new(a.get("sar").cloned().expect("default")));
        let err = sar_service.require_service(&["immuni"]).unwrap_err();
        assert!(err.detail.contains("needs the immuni service account"), "{}", err.detail);
        assert!(sar_service.require_service(&["sar", "pn-dgc"]).is_ok());
        assert!(caller.require_service(&["immuni"]).is_ok(), "a regional account is not a service account");
    }
}
