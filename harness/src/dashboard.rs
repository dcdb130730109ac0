//! The workshop dashboard: one page on the control plane (`/` asked for by a
//! browser) and the small API it calls, under `/_admin/dashboard/` (so it is never
//! journaled, and needs the admin token where the admin API does).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` (`Accept: text/html`) | the page: HTML, CSS and JS in one embedded file, no CDN, Italian and English |
//! | `GET /_admin/dashboard/events?since=N` | server-sent events: each `batch` carries the exchanges recorded since the last one, and the virtual clock |
//! | `GET /_admin/dashboard/citizens?q=&limit=` | citizens of the registry whose name or codice fiscale contains `q` |
//! | `GET /_admin/dashboard/vaccines` | the vaccine catalogue (the vaccination centre's choice) |
//! | `GET /_admin/dashboard/phone/{cf}` | the SMS on the citizen's (and a minor's parent's) phone and their e-mails, from the gateway |
//! | `POST /_admin/dashboard/call` | an operator console's request, sent to a system with an account's credentials |
//! | `GET /_admin/dashboard/scenarios` | the scenarios a trainer can play (the flows, built in) |
//! | `POST /_admin/dashboard/play` `{"scenario": "flows/cun-positive-sms"}` | loads one, picks its citizens; nothing runs yet |
//! | `POST /_admin/dashboard/play/step`, `/play/rest` | runs the next step, or the rest; answers when done |
//! | `GET /_admin/dashboard/play` | the play: each step's narration and state |
//! | `POST /_admin/dashboard/app` | the citizen's virtual Immuni app: `new-otp`, `check-otp`, `check-cun`, `upload`, `get-dgc` |
//!
//! The consoles build the real APIs' bodies in the page and send them through
//! `call`, so what the audience sees in the diagram is exactly what a SAR, a lab or
//! an operator would send. The app does its hashing, padding and keys here, with
//! [`VirtualApp`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ecosim_core::problem::ApiJson;
use ecosim_core::{Context, Problem, System};
use ecosim_domain::codes::{CodiceFiscale, Cun, Otp};
use ecosim_domain::population::Citizen;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{AppAnswer, VirtualApp};
use crate::ecosystem::EcoHandle;
use crate::scenario::Scenario;
use crate::scenario::play::{PlayCommand, PlayState, Stage};

/// The page, HTML, CSS and JavaScript in one file.
pub const PAGE: &str = include_str!("dashboard/index.html");

/// Most exchanges one event carries (a burst is sent over several).
const BATCH: usize = 500;

struct Dashboard {
    ctx: Context,
    urls: BTreeMap<System, String>,
    http: reqwest::Client,
    app: tokio::sync::Mutex<VirtualApp>,
    /// The scenario being played, if any.
    player: tokio::sync::Mutex<Option<Player>>,
    /// Citizens earlier plays picked (each play takes new people).
    taken: Arc<std::sync::Mutex<std::collections::HashSet<CodiceFiscale>>>,
}

/// A play in progress: its state and the way to move it on.
struct Player {
    state: Arc<std::sync::Mutex<PlayState>>,
    commands: tokio::sync::mpsc::Sender<PlayCommand>,
}

/// The scenarios a trainer can play, built into the binary (the flows).
pub const PLAYABLE: &[(&str, &str)] = &[
    ("flows/cun-positive-sms", include_str!("../../scenarios/flows/cun-positive-sms.yaml")),
    ("flows/cun-negative-minor", include_str!("../../scenarios/flows/cun-negative-minor.yaml")),
    ("flows/immuni-call-centre", include_str!("../../scenarios/flows/immuni-call-centre.yaml")),
    ("flows/immuni-self-unlock", include_str!("../../scenarios/flows/immuni-self-unlock.yaml")),
    ("flows/dose-recording-mobility", include_str!("../../scenarios/flows/dose-recording-mobility.yaml")),
    ("flows/green-pass-two-doses", include_str!("../../scenarios/flows/green-pass-two-doses.yaml")),
];

fn playable(name: &str) -> Result<Scenario, Problem> {
    let (_, text) = PLAYABLE
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Problem::invalid_field("scenario", format!("not one of {}", names().join(", "))))?;
    crate::scenario::parse(std::path::Path::new(&format!("{name}.yaml")), text)
        .map_err(|e| Problem::internal(format!("the built-in scenario {name}: {e}")))
}

fn names() -> Vec<&'static str> {
    PLAYABLE.iter().map(|(n, _)| *n).collect()
}

/// The dashboard's routes, for the control plane; `urls` are the systems' base URLs.
pub fn router(ctx: &Context, urls: &[(System, String)]) -> Router {
    let urls: BTreeMap<System, String> = urls.iter().cloned().collect();
    let immuni = urls.get(&System::Immuni).cloned().unwrap_or_default();
    let state = Arc::new(Dashboard {
        ctx: ctx.clone(),
        app: tokio::sync::Mutex::new(VirtualApp::new(&immuni, ctx.config().seed)),
        player: tokio::sync::Mutex::new(None),
        taken: Arc::default(),
        urls,
        http: reqwest::Client::builder()
            .pool_idle_timeout(ecosim_core::client::POOL_IDLE)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new()),
    });
    Router::new()
        .route("/_admin/dashboard/events", get(events))
        .route("/_admin/dashboard/citizens", get(citizens))
        .route("/_admin/dashboard/vaccines", get(vaccines))
        .route("/_admin/dashboard/phone/{cf}", get(phone))
        .route("/_admin/dashboard/call", post(call))
        .route("/_admin/dashboard/app", post(app))
        .route("/_admin/dashboard/scenarios", get(scenarios))
        .route("/_admin/dashboard/play", get(play_state).post(play_start))
        .route("/_admin/dashboard/play/step", post(play_step))
        .route("/_admin/dashboard/play/rest", post(play_rest))
        .with_state(state)
}

/// Whether a request for `/` wants the page rather than the JSON summary.
pub fn wants_page(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The page as a response.
pub fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    /// Exchanges after this sequence number.
    since: Option<u64>,
    /// Or the latest this many (what a page just opened shows).
    tail: Option<u64>,
}

/// One event of the stream: what was recorded since the last, and the clock.
#[derive(Debug, Serialize)]
struct Batch {
    exchanges: Vec<ecosim_core::journal::Exchange>,
    last_seq: u64,
    dropped: u64,
    clock: ClockNow,
}

#[derive(Debug, Serialize)]
struct ClockNow {
    now: String,
    today: String,
}

async fn events(State(d): State<Arc<Dashboard>>, Query(q): Query<Since>) -> impl IntoResponse {
    let since = match (q.since, q.tail) {
        (Some(s), _) => s,
        (None, Some(n)) => d.ctx.journal().last_seq().saturating_sub(n),
        (None, None) => 0,
    };
    let first = (d, since, true);
    let stream = futures_util::stream::unfold(first, |(d, mut since, first)| async move {
        loop {
            let mut page = d.ctx.journal().since(since);
            if page.exchanges.is_empty() && !first {
                // Woken by the next record, or after a second anyway (the clock may have
                // moved, and a record between the read and the wait is not missed).
                let _ = tokio::time::timeout(Duration::from_secs(1), d.ctx.journal().changed()).await;
                page = d.ctx.journal().since(since);
                if page.exchanges.is_empty() {
                    continue;
                }
            }
            page.exchanges.truncate(BATCH);
            if let Some(last) = page.exchanges.last() {
                since = last.seq;
            }
            if d.ctx.config().masks_journal() {
                page.exchanges = page.exchanges.iter().map(ecosim_core::mask::exchange).collect();
            }
            let clock = d.ctx.clock();
            let batch = Batch {
                exchanges: page.exchanges,
                last_seq: page.last_seq,
                dropped: page.dropped,
                clock: ClockNow { now: clock.now().to_string(), today: clock.today().to_string() },
            };
            let event = Event::default().event("batch").id(since.to_string()).json_data(&batch);
            let event = event.unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
            return Some((Ok::<_, Infallible>(event), (d, since, false)));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

/// A citizen as the page lists them.
#[derive(Debug, Serialize)]
struct Person {
    #[serde(flatten)]
    record: ecosim_domain::population::CitizenRecord,
    eta: i16,
    minore: bool,
}

fn person(ctx: &Context, c: &Citizen) -> Person {
    let today = ctx.clock().today();
    Person { record: c.record(), eta: c.age_on(today), minore: c.is_minor_on(today) }
}

async fn citizens(State(d): State<Arc<Dashboard>>, Query(s): Query<Search>) -> Json<Vec<Person>> {
    let q = s.q.trim().to_uppercase();
    let limit = s.limit.unwrap_or(50).clamp(1, 500);
    let found = d
        .ctx
        .population()
        .iter()
        .filter(|c| {
            q.is_empty()
                || c.codice_fiscale().as_str().contains(&q)
                || format!("{} {}", c.name(), c.surname()).to_uppercase().contains(&q)
                || format!("{} {}", c.surname(), c.name()).to_uppercase().contains(&q)
        })
        .take(limit)
        .map(|c| person(&d.ctx, c))
        .collect();
    Json(found)
}

async fn vaccines() -> Json<Vec<Value>> {
    Json(
        ecosim_domain::vaccines::catalogue()
            .iter()
            .map(
                |v| json!({"aic": v.aic_or_code(), "farmaco": v.farmaco, "formulazione": v.formulazione, "ema": v.ema}),
            )
            .collect(),
    )
}

fn citizen<'a>(d: &'a Dashboard, cf: &str) -> Result<&'a Citizen, Problem> {
    let parsed = CodiceFiscale::parse(cf).map_err(|e| Problem::invalid_field("codice_fiscale", e.to_string()))?;
    d.ctx
        .population()
        .by_codice_fiscale(&parsed)
        .ok_or_else(|| Problem::not_found(format!("no citizen {cf} in the registry")))
}

impl Dashboard {
    fn url(&self, system: System) -> Result<&str, Problem> {
        self.urls.get(&system).map(String::as_str).ok_or_else(|| Problem::internal(format!("{system} has no URL")))
    }

    /// A read of another system that is not journaled (an observer's).
    async fn observe(&self, system: System, path: &str) -> Result<Value, Problem> {
        let url = format!("{}{path}", self.url(system)?);
        let res = self
            .http
            .get(&url)
            .header(ecosim_core::boundary::OBSERVER_HEADER, "1")
            .send()
            .await
            .map_err(|e| Problem::new(StatusCode::BAD_GATEWAY, "unreachable", format!("{system}: {e}")))?;
        Ok(res.json().await.unwrap_or(Value::Null))
    }
}

async fn phone(State(d): State<Arc<Dashboard>>, Path(cf): Path<String>) -> Result<Json<Value>, Problem> {
    let c = citizen(&d, &cf)?;
    let mut sms = Vec::new();
    for (whose, number) in [("own", c.mobile()), ("parent", c.parent_mobile())] {
        if let Some(n) = number {
            let inbox = d.observe(System::SmsGateway, &format!("/sms/v1/inbox/{}", n.as_str())).await?;
            sms.push(json!({"whose": whose, "number": n.as_str(), "messages": inbox["messages"]}));
        }
    }
    let mail = match c.email() {
        Some(e) => d.observe(System::SmsGateway, &format!("/mail/v1/inbox/{}", e.as_str())).await?["messages"].take(),
        None => Value::Array(Vec::new()),
    };
    Ok(Json(json!({"citizen": person(&d.ctx, c), "sms": sms, "mail": mail})))
}

/// A console's request: `method path` on `system` as `account` (its own password).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Call {
    system: System,
    account: String,
    method: String,
    path: String,
    #[serde(default)]
    body: Option<Value>,
}

/// What the system answered.
#[derive(Debug, Serialize)]
struct Answered {
    status: u16,
    body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

async fn call(State(d): State<Arc<Dashboard>>, ApiJson(c): ApiJson<Call>) -> Result<Json<Answered>, Problem> {
    if c.system == System::ControlPlane {
        return Err(Problem::invalid_field("system", "a console calls a simulator, not the control plane"));
    }
    if !c.path.starts_with('/') || c.path.starts_with("/_admin") {
        return Err(Problem::invalid_field("path", "a path of the system's API, starting with /"));
    }
    let account = d
        .ctx
        .accounts()
        .get(&c.account)
        .ok_or_else(|| Problem::invalid_field("account", format!("no account {}", c.account)))?;
    let method = reqwest::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes())
        .ok()
        .filter(|m| ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()))
        .ok_or_else(|| Problem::invalid_field("method", "GET, POST, PUT, PATCH or DELETE"))?;
    let mut req = d
        .http
        .request(method, format!("{}{}", d.url(c.system)?, c.path))
        .basic_auth(&account.name, Some(&account.password));
    if let Some(body) = &c.body {
        req = req.json(body);
    }
    let res = req
        .send()
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_GATEWAY, "unreachable", format!("{}: {e}", c.system)))?;
    let status = res.status().as_u16();
    let detail = res.headers().get("x-ecosim-detail").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() { Value::Null } else { Value::String(text) });
    Ok(Json(Answered { status, body, detail }))
}

/// What the citizen does in their app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "action", rename_all = "kebab-case")]
enum AppAction {
    /// The app shows a new OTP, to dictate to an operator.
    NewOtp,
    /// The app checks the OTP an operator authorised.
    CheckOtp { otp: String },
    /// Self-service unlock with the CUN and the card's last 8 digits.
    CheckCun { codice_fiscale: String, cun: String, symptoms_started_on: Option<jiff::civil::Date> },
    /// Upload of the keys of the last 14 days, with the OTP or after a CUN unlock.
    Upload { otp: Option<String>, cun: Option<String>, province: Option<String> },
    /// Retrieval of the green certificate with a code (`authcode`, `cun`, `nucg`...).
    GetDgc { codice_fiscale: String, code: String, token_type: Option<String> },
}

/// The app's answer, with the OTP when it made one.
#[derive(Debug, Serialize)]
struct AppShown {
    status: u16,
    body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    otp: Option<String>,
}

impl From<AppAnswer> for AppShown {
    fn from(a: AppAnswer) -> Self {
        Self { status: a.status, body: a.body, warning: a.warning, detail: a.detail, otp: None }
    }
}

fn otp(text: &str) -> Result<Otp, Problem> {
    Otp::parse(text.trim()).map_err(|e| Problem::invalid_field("otp", e.to_string()))
}

fn cun(text: &str) -> Result<Cun, Problem> {
    Cun::parse(text.trim()).map_err(|e| Problem::invalid_field("cun", e.to_string()))
}

async fn app(State(d): State<Arc<Dashboard>>, ApiJson(action): ApiJson<AppAction>) -> Result<Json<AppShown>, Problem> {
    let mut app = d.app.lock().await;
    let shown = match action {
        AppAction::NewOtp => {
            let otp = app.new_otp();
            AppShown { status: 200, body: Value::Null, warning: None, detail: None, otp: Some(otp.to_string()) }
        }
        AppAction::CheckOtp { otp: o } => app.check_otp(&otp(&o)?, false).await.into(),
        AppAction::CheckCun { codice_fiscale, cun: c, symptoms_started_on } => {
            let card = citizen(&d, &codice_fiscale)?.card();
            app.check_cun(&cun(&c)?, &card.last8(), symptoms_started_on, false).await.into()
        }
        AppAction::Upload { otp: o, cun: c, province } => {
            let token = match (o, c) {
                (Some(o), None) => otp(&o)?.sha256(),
                (None, Some(c)) => VirtualApp::cun_token(&cun(&c)?),
                _ => return Err(Problem::invalid_field("otp", "give the OTP or the CUN the app was unlocked with")),
            };
            let now = d.ctx.clock().now();
            let teks = app.teks(now);
            app.upload(&token, teks, province.as_deref().unwrap_or("RM"), now, false).await.into()
        }
        AppAction::GetDgc { codice_fiscale, code, token_type } => {
            let card = citizen(&d, &codice_fiscale)?.card();
            let token_type = token_type.unwrap_or_else(|| "authcode".into());
            let hash = VirtualApp::code_hash(&token_type, code.trim())
                .map_err(|e| Problem::invalid_field("code", e.to_string()))?;
            app.get_dgc(&token_type, &hash, &card.last8(), card.expiry, false).await.into()
        }
    };
    Ok(Json(shown))
}

async fn scenarios() -> Json<Vec<Value>> {
    Json(
        PLAYABLE
            .iter()
            .filter_map(|(name, text)| {
                let sc = crate::scenario::parse(std::path::Path::new(name), text).ok()?;
                Some(json!({"name": name, "id": sc.id, "title": sc.title, "steps": sc.steps.len()}))
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayRequest {
    scenario: String,
}

fn snapshot(p: &Player) -> PlayState {
    p.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn play_start(
    State(d): State<Arc<Dashboard>>,
    ApiJson(r): ApiJson<PlayRequest>,
) -> Result<Json<PlayState>, Problem> {
    let scenario = playable(&r.scenario)?;
    let state = Arc::new(std::sync::Mutex::new(crate::scenario::play::initial(&scenario)));
    let (commands, rx) = tokio::sync::mpsc::channel(4);
    // Replacing the player drops the old one's sender: its task ends at its next wait.
    let mut player = d.player.lock().await;
    *player = Some(Player { state: state.clone(), commands });
    let (ready, picked) = tokio::sync::oneshot::channel();
    let stage =
        Stage { eco: EcoHandle::new(d.ctx.clone()), seed: d.ctx.config().seed, taken: d.taken.clone(), state, ready };
    tokio::spawn(crate::scenario::play::play(scenario, stage, rx));
    let _ = picked.await;
    let s = player.as_ref().map(snapshot).ok_or_else(|| Problem::internal("the player is gone"))?;
    if let Some(e) = &s.error {
        return Err(Problem::new(StatusCode::CONFLICT, "cannot-play", e.clone()));
    }
    Ok(Json(s))
}

async fn play_state(State(d): State<Arc<Dashboard>>) -> Result<Json<PlayState>, Problem> {
    let player = d.player.lock().await;
    player.as_ref().map(|p| Json(snapshot(p))).ok_or_else(|| Problem::not_found("no scenario is being played"))
}

async fn play_move(d: &Dashboard, rest: bool) -> Result<Json<PlayState>, Problem> {
    let (commands, state) = {
        let player = d.player.lock().await;
        let p = player
            .as_ref()
            .ok_or_else(|| Problem::not_found("no scenario is being played: POST /_admin/dashboard/play"))?;
        (p.commands.clone(), p.state.clone())
    };
    let (done, ran) = tokio::sync::oneshot::channel();
    let command = if rest { PlayCommand::Rest(done) } else { PlayCommand::Step(done) };
    if commands.send(command).await.is_err() {
        let s = state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "play-over",
            s.error.unwrap_or_else(|| "the scenario has no step left: load it again to replay it".into()),
        ));
    }
    let _ = ran.await;
    let s = state.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Json(s))
}

async fn play_step(State(d): State<Arc<Dashboard>>) -> Result<Json<PlayState>, Problem> {
    play_move(&d, false).await
}

async fn play_rest(State(d): State<Arc<Dashboard>>) -> Result<Json<PlayState>, Problem> {
    play_move(&d, true).await
}
