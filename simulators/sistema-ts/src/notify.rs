//! Sistema TS sending the CUN itself, for regions that ask it to (ORD-6.2): an SMS
//! through the gateway and an e-mail over SMTP, from its durable outbox.

use std::sync::Arc;

use ecosim_core::codes::Cun;
use ecosim_core::mail::{self, Mail};
use ecosim_core::messages::{CUN_SMS_SENDER, cun_email, cun_sms};
use ecosim_core::outbox::{self, Handler, Item, Outcome};
use jiff::civil::Date;
use reqwest::Method;
use serde_json::json;

use crate::domain::test_result::TestResult;
use crate::state::SistemaTs;

/// The address Sistema TS sends e-mail from.
pub(crate) const MAIL_FROM: &str = "cun@sistemats.test";

/// Queues the CUN's SMS and e-mail (inside the record's transaction).
pub(crate) fn enqueue(tx: &rusqlite::Connection, cun: &Cun, r: &TestResult) -> rusqlite::Result<()> {
    let date = r.data_esecuzione.to_string();
    if let Some(m) = &r.cellulare {
        outbox::enqueue(tx, "sms", cun.as_str(), &json!({"cun": cun.as_str(), "to": m.as_str(), "date": date}))?;
    }
    if let Some(e) = &r.email {
        outbox::enqueue(tx, "email", cun.as_str(), &json!({"cun": cun.as_str(), "to": e.as_str(), "date": date}))?;
    }
    Ok(())
}

/// The outbox handler.
pub(crate) fn handler(ts: Arc<SistemaTs>) -> Handler {
    Arc::new(move |item: Item| {
        let ts = ts.clone();
        Box::pin(async move { deliver(&ts, &item).await })
    })
}

async fn deliver(ts: &SistemaTs, item: &Item) -> Outcome {
    if item.kind == "dgc" {
        return crate::dgc::deliver(ts, item).await;
    }
    let p = &item.payload;
    let (Some(cun), Some(to), Some(date)) = (
        p["cun"].as_str().and_then(|c| Cun::parse(c).ok()),
        p["to"].as_str(),
        p["date"].as_str().and_then(|d| d.parse::<Date>().ok()),
    ) else {
        return Outcome::Failed(format!("malformed outbox item {}", item.id));
    };
    let outcome = match item.kind.as_str() {
        "sms" => {
            let res = ts
                .sms
                .request(Method::POST, "/sms/v1/messages")
                .header("Idempotency-Key", format!("sistema-ts-cun-{}", cun.as_str()))
                .json(&json!({"from": CUN_SMS_SENDER, "to": to, "text": cun_sms(date, &cun)}))
                .send()
                .await;
            ecosim_core::client::outcome_of(res).await
        }
        "email" => {
            let (subject, body) = cun_email(date, &cun);
            let message_id = format!("{}.cun@sistemats.test", cun.as_str());
            let mail = Mail { from: MAIL_FROM, to, subject: &subject, body: &body, message_id: &message_id };
            ecosim_core::client::mail_outcome(mail::send(&ts.ctx.config().smtp_addr(), &mail).await)
        }
        other => Outcome::Failed(format!("unknown outbox kind {other}")),
    };
    if outcome == Outcome::Done {
        let now = ts.ctx.clock().now();
        let recorded = ts.store.with(|tx| {
            SistemaTs::event(tx, cun.as_str(), now, "notified", json!({"canale": item.kind, "requirement": "ORD-6.2"}))
        });
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record a notification");
        }
    }
    outcome
}
