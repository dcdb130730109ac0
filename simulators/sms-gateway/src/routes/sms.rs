//! `/sms/v1`: send, look up, and read a phone's inbox.

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Authorised, roles};
use ecosim_core::idempotency;
use ecosim_core::problem::{Fields, JsonBytes, Problem, from_json};
use ecosim_domain::codes::Msisdn;
use serde::Serialize;

use crate::domain::message::{check_callback, check_sender, check_text};
use crate::state::Gateway;
use crate::store::{self, Message, NewMessage};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    callback_url: Option<String>,
}

/// The answer to a message sent.
#[derive(Debug, Serialize)]
struct Accepted<'a> {
    id: &'a str,
    segments: usize,
    encoding: &'a str,
    status: &'static str,
}

/// A delivery report, POSTed to the sender's `callback_url`.
#[derive(Debug, Clone, Serialize)]
struct Report {
    id: String,
    to: String,
    status: &'static str,
    at: String,
}

/// A phone's inbox.
#[derive(Debug, Serialize)]
pub(crate) struct Inbox {
    msisdn: String,
    messages: Vec<Message>,
}

/// `POST /sms/v1/messages`: validates, files the message delivered (or failed, for an
/// unreachable number), answers 202; `Idempotency-Key` replays the first answer.
pub(crate) async fn send(
    State(gw): State<Arc<Gateway>>,
    caller: Authorised<roles::SmsSender>,
    headers: HeaderMap,
    // The raw body is the idempotency fingerprint, so it is read as bytes here.
    JsonBytes(body): JsonBytes,
) -> Result<Response, Problem> {
    let (key, replay) =
        idempotency::precheck(&gw.store, &headers, caller.name(), &body, idempotency::Window::of(&gw.ctx)).await?;
    if let Some(answer) = replay {
        return Ok(answer);
    }
    let req: SendRequest = from_json(&body)?;
    let mut f = Fields::new();
    let from = f.required("from", &req.from).cloned();
    if let Some(from) = &from {
        f.check("from", check_sender(from));
    }
    let to = f.required("to", &req.to).and_then(|t| f.check("to", Msisdn::parse(t)));
    let text = f.required("text", &req.text).cloned();
    let seg = text.as_deref().and_then(|t| f.check("text", check_text(t)));
    if let Some(url) = &req.callback_url {
        f.check("callback_url", check_callback(url));
    }
    let (from, to, text, (encoding, n)) = f.into_result((from, to, text, seg).all_some())?;

    let id = gw.ids.next();
    let now = gw.ctx.clock().now().to_string();
    let delivered = !gw.unreachable.contains(to.as_str());
    let accepted = Accepted { id: &id, segments: n, encoding: encoding.as_str(), status: "accepted" };
    let accepted_text = serde_json::to_string(&accepted).map_err(|e| Problem::internal(e.to_string()))?;
    let message = Message {
        id: id.clone(),
        from,
        to: to.as_str().to_owned(),
        text,
        encoding: encoding.as_str().to_owned(),
        segments: n as u32,
        status: if delivered { "delivered" } else { "failed" }.to_owned(),
        error: (!delivered).then(|| "the number is unreachable".to_owned()),
        accepted_at: now.clone(),
        delivered_at: delivered.then(|| now.clone()),
    };
    let (account, callback) = (caller.name().to_owned(), req.callback_url.clone());
    // The delivery report leaves once the message is committed, even if the
    // sender is gone by then (a clock move waits for its first attempt).
    let report = req.callback_url.map(|url| {
        let report = Report {
            id: id.clone(),
            to: to.as_str().to_owned(),
            status: if delivered { "delivered" } else { "failed" },
            at: now,
        };
        (url, report, gw.http.clone(), gw.ctx.activity().busy(), tokio::runtime::Handle::current())
    });
    // Group commit: shared with the messages arriving at the same time.
    let raced = gw
        .store
        .grouped_then(
            move |tx| {
                // Checked again inside the transaction: two racing retries send one message.
                if let Some(key) = &key
                    && let Some(stored) = idempotency::replay(tx, key)?
                {
                    return Ok(Some(stored));
                }
                store::insert_message(
                    tx,
                    &NewMessage { message: &message, account: &account, callback_url: callback.as_deref() },
                )?;
                if let Some(key) = &key {
                    idempotency::remember(tx, key, 202, &accepted_text, None)?;
                }
                Ok::<_, Problem>(None)
            },
            move |raced| {
                if let (None, Some((url, report, http, busy, runtime))) = (raced, report) {
                    runtime.spawn(deliver_report(http, url, report, busy));
                }
            },
        )
        .await?;
    if let Some((status, stored)) = raced {
        return Ok(idempotency::replayed(status, stored));
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// POSTs a delivery report, retrying a few times (a client's callback may be slow to
/// start). A clock move waits for the first attempt (`busy`), not for the retries.
async fn deliver_report(
    http: ecosim_core::client::Http,
    url: String,
    report: Report,
    busy: ecosim_core::activity::Busy,
) {
    let mut busy = Some(busy);
    for attempt in 0..5u32 {
        let sent = http.request(ecosim_core::client::Method::POST, url.as_str()).json(&report).send().await;
        busy.take();
        match sent {
            Ok(res) if res.status().is_success() => return,
            Ok(res) => tracing::warn!(status = %res.status(), %url, "delivery report refused"),
            Err(e) => tracing::warn!(error = %e, %url, "delivery report not delivered"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * 2u64.pow(attempt))).await;
    }
}

pub(crate) async fn get_message(
    State(gw): State<Arc<Gateway>>,
    caller: Authorised<roles::SmsSender>,
    Path(id): Path<String>,
) -> Result<Json<Message>, Problem> {
    let found = gw.store.with(|c| store::message_sent_by(c, &id, caller.name()))?;
    found.map(Json).ok_or_else(|| Problem::not_found(format!("no message {id} sent by {}", caller.name())))
}

/// A number from a path: E.164 with or without the leading `+`.
pub(crate) fn msisdn_from_path(raw: &str) -> Result<Msisdn, Problem> {
    let with_plus = if raw.starts_with('+') || raw.starts_with("00") { raw.to_owned() } else { format!("+{raw}") };
    Msisdn::parse(&with_plus)
        .or_else(|_| Msisdn::parse(raw))
        .map_err(|e| Problem::invalid_field("msisdn", e.to_string()))
}

/// Every message delivered to a number, oldest first: the citizen's phone. Open to
/// every caller, as a test inspection point.
pub(crate) async fn inbox(State(gw): State<Arc<Gateway>>, Path(raw): Path<String>) -> Result<Json<Inbox>, Problem> {
    let msisdn = msisdn_from_path(&raw)?;
    let messages = gw.store.with(|c| store::delivered_to(c, msisdn.as_str()))?;
    Ok(Json(Inbox { msisdn: msisdn.as_str().to_owned(), messages }))
}
