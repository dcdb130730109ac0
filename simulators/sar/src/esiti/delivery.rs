//! What the SAR does from its outbox: send the result to Sistema TS (with the
//! region's SAR account and an `Idempotency-Key`, so retries never make two CUNs),
//! then send the CUN to the citizen by SMS and e-mail, whatever the result
//! (ORD-3.1b, 3.1c, ORD-6.1a, 6.1b). The contacts stay in the SAR: Sistema TS does
//! not send the CUN for this region, so it does not get them (ORD-3.1a5).
//!
//! The `[sar] defects` of the configuration break one of these on purpose (see
//! [`SarDefect`]); they exist so `ecosim certify` can be shown to catch each.

use ecosim_core::client::Method;
use ecosim_core::client::SmsRequest;
use ecosim_core::config::SarDefect;
use ecosim_core::mail::{self, Mail};
use ecosim_core::outbox::{self, Item, Outcome};
use ecosim_core::store::StoreError;
use ecosim_domain::codes::Cun;
use ecosim_domain::messages::{CUN_SMS_SENDER, cun_email, cun_sms};
use ecosim_domain::test_result::TestResult;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::store;
use crate::outbox::{Channel, Notice, Work};
use crate::state::Sar;

/// The number the CUN SMS goes to: for a minor, the parent's mobile when given
/// (ORD-6.1a); otherwise the citizen's. (`own_phone`: the defect that ignores the
/// parent.)
pub(crate) fn sms_recipient(r: &TestResult, today: Date, own_phone: bool) -> Option<String> {
    let minor = r
        .codice_fiscale
        .birth_date(today)
        .is_some_and(|born| ecosim_domain::population::age_on(born, r.data_esecuzione) < 18);
    let (own, parent) = (r.cellulare.as_ref(), r.cellulare_genitore.as_ref());
    let chosen = match (minor, own_phone) {
        (false, _) => own,
        (true, false) => parent.or(own),
        (true, true) => own.or(parent),
    };
    chosen.map(|m| m.to_string())
}

/// What Sistema TS's `POST /ts/v1/test-results` takes from a SAR.
#[derive(Debug, Serialize)]
struct ToTs<'a> {
    codice_fiscale: &'a Option<String>,
    esito: &'a Option<String>,
    tipo_test: &'a Option<String>,
    data_esecuzione: &'a Option<String>,
    struttura: &'a Option<String>,
    /// Only with the defect that leaks them (ORD-3.1a5).
    #[serde(skip_serializing_if = "Option::is_none")]
    contatti: Option<Contacts<'a>>,
}

#[derive(Debug, Serialize)]
struct Contacts<'a> {
    cellulare: &'a Option<String>,
    email: &'a Option<String>,
}

/// What Sistema TS answers, as far as the SAR needs it.
#[derive(Debug, Deserialize)]
struct Issued {
    cun: String,
}

/// [`Work::Ts`]: result `id` to Sistema TS; with the CUN, the notices to the citizen.
pub(crate) async fn send_to_ts(sar: &Sar, item: &Item<Work>, id: &str) -> Outcome {
    let esito = match sar.store.with(|c| store::for_delivery(c, id)) {
        Ok(Some(e)) => e,
        Ok(None) => return Outcome::Failed(format!("result {id} is gone")),
        Err(e) => return Outcome::Retry { after: None, error: e.to_string() },
    };
    let p = match &esito.payload {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(e.clone()),
    };
    if esito.cun.is_some() {
        // Already delivered before a restart cut the bookkeeping short.
        return Outcome::Done;
    }
    let account_name = format!("sar-{}", esito.region);
    let Some(account) = sar.ctx.accounts().get(&account_name) else {
        return Outcome::Failed(format!("no account {account_name} to reach Sistema TS with"));
    };
    let defects = &sar.ctx.config().sar;
    if defects.has(SarDefect::LateSend) && item.attempts == 0 {
        return Outcome::Retry { after: Some(std::time::Duration::from_secs(90)), error: "held back".into() };
    }
    let body = ToTs {
        codice_fiscale: &p.codice_fiscale,
        esito: &p.esito,
        tipo_test: &p.tipo_test,
        data_esecuzione: &p.data_esecuzione,
        struttura: &p.struttura,
        contatti: defects
            .has(SarDefect::ContactsToTs)
            .then_some(Contacts { cellulare: &esito.sms_to, email: &esito.email_to }),
    };
    let key = if defects.has(SarDefect::NewIdempotencyKey) {
        format!("sar-esito-{id}-{}", item.attempts)
    } else {
        format!("sar-esito-{id}")
    };
    let res = sar
        .ts
        .as_account(account)
        .request(Method::POST, "/ts/v1/test-results")
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await;
    let res = match res {
        Ok(r) if r.status().is_success() => r,
        other => return ecosim_core::client::outcome_of(other).await,
    };
    let answer: Issued = match res.json().await {
        Ok(v) => v,
        Err(e) => return Outcome::Retry { after: None, error: format!("unreadable answer: {e}") },
    };
    let Ok(cun) = Cun::parse(&answer.cun) else {
        return Outcome::Failed(format!("Sistema TS answered without a valid CUN: {}", answer.cun));
    };
    let date = p.data_esecuzione.clone().unwrap_or_default();
    let notify = !(defects.has(SarDefect::PositiveOnly) && p.esito.as_deref() != Some("POSITIVO"));
    let (esito_sms, esito_email) = (esito.sms_to.is_some(), esito.email_to.is_some());
    let sms_to = esito.sms_to.filter(|_| notify);
    let email_to = esito.email_to.filter(|_| notify && !defects.has(SarDefect::NoEmail));
    let cf = defects.has(SarDefect::CfInMessage).then(|| p.codice_fiscale.clone()).flatten();
    let forget_cun = defects.has(SarDefect::ForgetCun);
    // The CUN, the notifications and this attempt's record: one commit.
    let (id, item) = (id.to_owned(), item.clone());
    let stored = sar
        .store
        .grouped(move |tx| {
            let (id, sms_to, email_to) = (id.as_str(), sms_to.as_ref(), email_to.as_ref());
            store::cun_received(tx, id, (!forget_cun).then_some(cun.as_str()))?;
            outbox::record_done(tx, &item)?;
            let mut claimed = Vec::new();
            let notice = |to: &String| Notice {
                to: to.clone(),
                cun: cun.as_str().to_owned(),
                date: date.clone(),
                cf: cf.clone(),
            };
            for work in [sms_to.map(|to| Work::Sms(notice(to))), email_to.map(|to| Work::Email(notice(to)))]
                .into_iter()
                .flatten()
            {
                claimed.extend(outbox::enqueue_claimed(tx, id, &work)?);
            }
            // A channel a defect suppresses is one with nothing to deliver.
            if sms_to.is_none() && esito_sms {
                store::channel_none(tx, id, Channel::Sms)?;
            }
            if email_to.is_none() && esito_email {
                store::channel_none(tx, id, Channel::Email)?;
            }
            Ok::<_, StoreError>(claimed)
        })
        .await;
    match stored {
        Ok(claimed) => {
            // The journey's last leg goes before the journeys started since.
            sar.outbox.dispatch_first(claimed);
            Outcome::Recorded
        }
        // Retrying is safe: the Idempotency-Key gives the same CUN back.
        Err(e) => Outcome::Retry { after: None, error: e.to_string() },
    }
}

/// [`Work::Sms`] / [`Work::Email`]: the CUN to the citizen.
pub(crate) async fn notify(sar: &Sar, item: &Item<Work>, notice: &Notice, channel: Channel) -> Outcome {
    let (Ok(cun), Ok(date)) = (Cun::parse(&notice.cun), notice.date.parse::<Date>()) else {
        return Outcome::Failed(format!("malformed outbox item {}: CUN or date", item.id));
    };
    let to = notice.to.as_str();
    // The defect that leaks the codice fiscale into the message (IFC-MINIMISE).
    let leak = |text: String| match &notice.cf {
        Some(cf) => format!("{cf}: {text}"),
        None => text,
    };
    if channel == Channel::Sms {
        let key = if sar.ctx.config().sar.has(SarDefect::NewIdempotencyKey) {
            format!("sar-sms-{}-{}", item.key, item.attempts)
        } else {
            format!("sar-sms-{}", item.key)
        };
        let res = sar
            .sms
            .request(Method::POST, "/sms/v1/messages")
            .header("Idempotency-Key", key)
            .json(&SmsRequest { from: CUN_SMS_SENDER, to, text: &leak(cun_sms(date, &cun)) })
            .send()
            .await;
        ecosim_core::client::outcome_of(res).await
    } else {
        let region = sar.store.with(|c| store::region_of(c, &item.key)).ok().flatten().unwrap_or_default();
        let from = format!("cun@sar-{region}.test");
        let (subject, body) = cun_email(date, &cun);
        let body = leak(body);
        let message_id = format!("{}.cun@sar-{region}.test", item.key);
        let mail = Mail { from: &from, to, subject: &subject, body: &body, message_id: &message_id };
        ecosim_core::client::mail_outcome(mail::send(&sar.ctx.config().smtp_addr(), &mail).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_domain::test_result::{RawContatti, RawTestResult, validate};

    fn result(cf: &str, date: &str, contatti: RawContatti) -> TestResult {
        validate(&RawTestResult {
            codice_fiscale: Some(cf.into()),
            esito: Some("NEGATIVO".into()),
            tipo_test: Some("MOLECOLARE".into()),
            data_esecuzione: Some(date.into()),
            struttura: Some("LAB1".into()),
            contatti: Some(contatti),
            invio_cun_da_ts: None,
        })
        .expect("valid")
    }

    fn both() -> RawContatti {
        RawContatti { cellulare: Some("3331111111".into()), email: None, cellulare_genitore: Some("3332222222".into()) }
    }

    #[test]
    fn a_minor_is_texted_on_the_parent_mobile() {
        // Born 9 April 2025 (MRTMTT25D09F205Z): a child on any date before 2043.
        let r = result("MRTMTT25D09F205Z", "2026-01-10", both());
        assert_eq!(sms_recipient(&r, jiff::civil::date(2026, 1, 10), false).as_deref(), Some("+393332222222"));
        assert_eq!(sms_recipient(&r, jiff::civil::date(2026, 1, 10), true).as_deref(), Some("+393331111111"));
    }

    #[test]
    fn an_adult_is_texted_on_their_own_mobile() {
        let r = result("RSSMRA45D25F205N", "2021-10-01", both());
        assert_eq!(sms_recipient(&r, jiff::civil::date(2021, 10, 1), false).as_deref(), Some("+393331111111"));
        // A parent's number given for an adult is not theirs to text.
        let parent_only = RawContatti { cellulare: None, ..both() };
        let r = result("RSSMRA45D25F205N", "2021-10-01", parent_only);
        assert_eq!(sms_recipient(&r, jiff::civil::date(2021, 10, 1), false), None);
    }

    #[test]
    fn a_minor_without_a_parent_number_is_texted_on_the_number_given() {
        let only_own = RawContatti { cellulare_genitore: None, ..both() };
        let r = result("MRTMTT25D09F205Z", "2026-01-10", only_own);
        assert_eq!(sms_recipient(&r, jiff::civil::date(2026, 1, 10), false).as_deref(), Some("+393331111111"));
    }
}
