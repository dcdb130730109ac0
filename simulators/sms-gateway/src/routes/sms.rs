//! `/sms/v1`: send, look up, and read a phone's inbox.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::codes::Msisdn;
use ecosim_core::idempotency;
use ecosim_core::problem::{Fields, Problem, from_json};
use ecosim_core::store::CachedSql;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::encoding::segments;
use crate::state::Gateway;

/// The longest message accepted, in segments.
pub(crate) const MAX_SEGMENTS: usize = 10;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    callback_url: Option<String>,
}

/// A message as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Message {
    id: String,
    from: String,
    to: String,
    text: String,
    encoding: String,
    segments: u32,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
}

const MESSAGE_COLUMNS: &str =
    "id, sender, recipient, text, encoding, segments, status, error, accepted_at, delivered_at";

fn message_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        text: r.get(3)?,
        encoding: r.get(4)?,
        segments: r.get(5)?,
        status: r.get(6)?,
        error: r.get(7)?,
        accepted_at: r.get(8)?,
        delivered_at: r.get(9)?,
    })
}

/// An alphanumeric sender alias (up to 11 GSM characters) or a phone number.
fn check_sender(from: &str) -> Result<(), String> {
    if Msisdn::parse(from).is_ok() {
        return Ok(());
    }
    let n = from.chars().count();
    if n == 0 || n > 11 {
        return Err(format!("an alias has 1 to 11 characters, this has {n}"));
    }
    if !from.chars().all(|c| c.is_ascii_alphanumeric() || " .-_&".contains(c)) {
        return Err("an alias uses letters, digits, spaces and . - _ &".into());
    }
    Ok(())
}

fn check_callback(url: &str) -> Result<(), &'static str> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8 && !url.contains(' ');
    if ok { Ok(()) } else { Err("must be an http(s) URL") }
}

pub(crate) async fn send(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require_role(&[Role::SmsClient, Role::Service])?;
    let (key, replay) = idempotency::precheck(&gw.store, &headers, &caller.0.name, &body)?;
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
    let mut seg = None;
    if let Some(text) = &text {
        if text.is_empty() {
            f.error("text", "is empty");
        }
        let (encoding, n) = segments(text);
        if n > MAX_SEGMENTS {
            f.error("text", format!("needs {n} segments ({}); at most {MAX_SEGMENTS} are sent", encoding.as_str()));
        }
        seg = Some((encoding, n));
    }
    if let Some(url) = &req.callback_url {
        f.check("callback_url", check_callback(url));
    }
    f.finish()?;
    let (Some(from), Some(to), Some(text), Some((encoding, n))) = (from, to, text, seg) else {
        return Err(Problem::internal("validated fields went missing"));
    };

    let id = gw.ids.next();
    let now = gw.ctx.clock().now().to_string();
    let delivered = !gw.unreachable.contains(to.as_str());
    let accepted = json!({"id": id, "segments": n, "encoding": encoding.as_str(), "status": "accepted"});
    let accepted_text = accepted.to_string();
    let raced = gw.store.transaction(|tx| {
        // Checked again inside the transaction: two racing retries send one message.
        if let Some(key) = &key
            && let Some(stored) = idempotency::replay(tx, key)?
        {
            return Ok(Some(stored));
        }
        tx.exec(
            "INSERT INTO messages (id, account, sender, recipient, text, encoding, segments, status, error,
                                   callback_url, accepted_at, delivered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                id,
                caller.0.name,
                from,
                to.as_str(),
                text,
                encoding.as_str(),
                n as i64,
                if delivered { "delivered" } else { "failed" },
                (!delivered).then_some("the number is unreachable"),
                req.callback_url,
                now,
                delivered.then_some(&now),
            ],
        )?;
        if let Some(key) = &key {
            idempotency::remember(tx, key, 202, &accepted_text)?;
        }
        Ok::<_, Problem>(None)
    })?;
    if let Some((status, stored)) = raced {
        return Ok(idempotency::replayed(status, stored));
    }
    if let Some(url) = req.callback_url {
        let report = json!({
            "id": id,
            "to": to.as_str(),
            "status": if delivered { "delivered" } else { "failed" },
            "at": now,
        });
        tokio::spawn(deliver_report(gw.http.clone(), url, report));
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// POSTs a delivery report, retrying a few times (a client's callback may be slow to start).
async fn deliver_report(http: reqwest::Client, url: String, report: Value) {
    for attempt in 0..5u32 {
        match http.post(&url).json(&report).send().await {
            Ok(res) if res.status().is_success() => return,
            Ok(res) => tracing::warn!(status = %res.status(), %url, "delivery report refused"),
            Err(e) => tracing::warn!(error = %e, %url, "delivery report not delivered"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * 2u64.pow(attempt))).await;
    }
}

pub(crate) async fn get_message(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Message>, Problem> {
    caller.require_role(&[Role::SmsClient, Role::Service])?;
    let found = gw.store.with(|c| {
        c.row(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND account = ?2"),
            params![id, caller.0.name],
            message_of,
        )
        .optional()
    })?;
    found.map(Json).ok_or_else(|| Problem::not_found(format!("no message {id} sent by {}", caller.0.name)))
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
pub(crate) async fn inbox(State(gw): State<Arc<Gateway>>, Path(raw): Path<String>) -> Result<Json<Value>, Problem> {
    let msisdn = msisdn_from_path(&raw)?;
    let messages = gw.store.with(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE recipient = ?1 AND status = 'delivered' ORDER BY rowid"
        ))?;
        stmt.query_map([msisdn.as_str()], message_of)?.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(json!({"msisdn": msisdn.as_str(), "messages": messages})))
}
