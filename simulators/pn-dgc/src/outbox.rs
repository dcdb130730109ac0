//! PN-DGC's outbox work, typed: the AUTHCODE to the citizen by SMS and e-mail
//! (DGC-AUTHCODE). The serde tag is the kind the outbox stores.

use std::sync::Arc;

use ecosim_core::client::Method;
use ecosim_core::client::SmsRequest;
use ecosim_core::mail::{self, Mail};
use ecosim_core::outbox::{Handler, Item, Outcome};
use ecosim_domain::codes::Authcode;
use ecosim_domain::messages::{DGC_SMS_SENDER, dgc_email, dgc_sms};
use serde::{Deserialize, Serialize};

use crate::state::PnDgc;

/// A delivery PN-DGC owes the citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Work {
    /// The AUTHCODE by SMS, from `Min Salute`.
    Sms(AuthcodeNotice),
    /// The AUTHCODE by e-mail.
    Email(AuthcodeNotice),
}

/// Where the AUTHCODE goes and what the message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuthcodeNotice {
    /// The number or address.
    pub(crate) to: String,
    /// What the message says.
    pub(crate) note: Note,
}

/// The message's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Note {
    /// The AUTHCODE.
    pub(crate) authcode: String,
    /// The masked name (`M. R.`).
    pub(crate) nome: String,
    /// The certificate's UVCI.
    pub(crate) uvci: String,
}

/// The outbox handler: the AUTHCODE by SMS (from `Min Salute`) and e-mail.
pub(crate) fn handler(pn: Arc<PnDgc>) -> Handler<Work> {
    Arc::new(move |item: Item<Work>| {
        let pn = pn.clone();
        Box::pin(async move {
            let (sms, notice) = match &item.work {
                Work::Sms(n) => (true, n),
                Work::Email(n) => (false, n),
            };
            let Ok(code) = Authcode::parse(&notice.note.authcode) else {
                return Outcome::Failed(format!("malformed AUTHCODE in outbox item {}", item.id));
            };
            let (to, name) = (notice.to.as_str(), notice.note.nome.as_str());
            if sms {
                let res = pn
                    .sms
                    .request(Method::POST, "/sms/v1/messages")
                    .header("Idempotency-Key", format!("pn-dgc-sms-{}", item.key))
                    .json(&SmsRequest { from: DGC_SMS_SENDER, to, text: &dgc_sms(name, &code) })
                    .send()
                    .await;
                ecosim_core::client::outcome_of(res).await
            } else {
                let (subject, body) = dgc_email(name, &code);
                let message_id = format!("{}.authcode@dgc.gov.test", item.key.replace('#', "-"));
                let mail =
                    Mail { from: "noreply@dgc.gov.test", to, subject: &subject, body: &body, message_id: &message_id };
                ecosim_core::client::mail_outcome(mail::send(&pn.ctx.config().smtp_addr(), &mail).await)
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_stored_as_before_the_work_was_typed() {
        let n = AuthcodeNotice {
            to: "+393331234567".into(),
            note: Note { authcode: "A1B2C3D4E5".into(), nome: "M. R.".into(), uvci: "01ITX#1".into() },
        };
        assert_eq!(ecosim_core::outbox::kind_of(&Work::Email(n.clone())), "email");
        assert_eq!(
            serde_json::to_value(Work::Sms(n)).expect("json"),
            serde_json::json!({"kind": "sms", "to": "+393331234567", "note": {"authcode": "A1B2C3D4E5", "nome": "M. R.", "uvci": "01ITX#1"}})
        );
    }
}
