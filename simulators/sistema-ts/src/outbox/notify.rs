//! Sistema TS sending the CUN itself, for regions that ask it to (ORD-6.2): an SMS
//! through the gateway and an e-mail over SMTP, from its durable outbox.

use ecosim_core::client::Method;
use ecosim_core::client::SmsRequest;
use ecosim_core::mail::{self, Mail};
use ecosim_core::outbox::{self, Item, Outcome};
use ecosim_domain::codes::Cun;
use ecosim_domain::messages::{CUN_SMS_SENDER, cun_email, cun_sms};
use jiff::civil::Date;

use crate::domain::test_result::TestResult;
use crate::outbox::{CunNotice, Work};
use crate::state::SistemaTs;
use crate::store::cun::Happened;

/// The address Sistema TS sends e-mail from.
pub(crate) const MAIL_FROM: &str = "cun@sistemats.test";

/// Writes the CUN's SMS and e-mail (inside the record's transaction), already
/// claimed: the caller hands them to [`Outbox::dispatch`](ecosim_core::outbox::Outbox::dispatch)
/// once it commits. They end the CUN's journey, so they run even while a peak holds
/// the queue ([`Outbox::hold_at_peak`](ecosim_core::outbox::Outbox::hold_at_peak)).
pub(crate) fn enqueue(tx: &rusqlite::Connection, cun: &Cun, r: &TestResult) -> rusqlite::Result<Vec<Item<Work>>> {
    let notice =
        |to: &str| CunNotice { cun: cun.as_str().to_owned(), to: to.to_owned(), date: r.data_esecuzione.to_string() };
    let mut claimed = Vec::new();
    if let Some(m) = &r.cellulare {
        claimed.extend(outbox::enqueue_claimed(tx, cun.as_str(), &Work::Sms(notice(m.as_str())))?);
    }
    if let Some(e) = &r.email {
        claimed.extend(outbox::enqueue_claimed(tx, cun.as_str(), &Work::Email(notice(e.as_str())))?);
    }
    Ok(claimed)
}

/// How a CUN goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Sms,
    Email,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// Sends the CUN on `channel`; records `notified` once delivered.
pub(crate) async fn deliver(ts: &SistemaTs, notice: &CunNotice, channel: Channel) -> Outcome {
    let (Ok(cun), Ok(date)) = (Cun::parse(&notice.cun), notice.date.parse::<Date>()) else {
        return Outcome::Failed(format!("malformed CUN notice: {notice:?}"));
    };
    let to = notice.to.as_str();
    let outcome = match channel {
        Channel::Sms => {
            let res = ts
                .sms
                .request(Method::POST, "/sms/v1/messages")
                .header("Idempotency-Key", format!("sistema-ts-cun-{}", cun.as_str()))
                .json(&SmsRequest { from: CUN_SMS_SENDER, to, text: &cun_sms(date, &cun) })
                .send()
                .await;
            ecosim_core::client::outcome_of(res).await
        }
        Channel::Email => {
            let (subject, body) = cun_email(date, &cun);
            let message_id = format!("{}.cun@sistemats.test", cun.as_str());
            let mail = Mail { from: MAIL_FROM, to, subject: &subject, body: &body, message_id: &message_id };
            ecosim_core::client::mail_outcome(mail::send(&ts.ctx.config().smtp_addr(), &mail).await)
        }
    };
    if outcome == Outcome::Done {
        let now = ts.ctx.clock().now();
        let what = Happened::Notified { canale: channel.name(), requirement: "ORD-6.2" };
        let recorded = ts.store.with(|tx| crate::store::cun::record(tx, cun.as_str(), now, &what));
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record a notification");
        }
    }
    outcome
}
