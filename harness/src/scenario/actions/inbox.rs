//! The citizen's phone and mailbox, at the SMS/e-mail gateway: `sms.expect`,
//! `mail.expect`, `sms.absent`, `mail.absent`.

use std::time::Duration;

use ecosim_core::System;
use reqwest::Method;
use serde_json::Value;

use crate::scenario::model::{InboxAbsent, InboxExpect};
use crate::scenario::runner::{Look, Runner, StepError, StepResult, poll_until, watch};

/// Which inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Box {
    /// A phone's SMS.
    Sms,
    /// A mailbox.
    Mail,
}

impl Box {
    fn is_sms(self) -> bool {
        self == Self::Sms
    }

    /// The message field the regex is matched against.
    fn field(self) -> &'static str {
        match self {
            Self::Sms => "text",
            Self::Mail => "body",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Sms => "SMS",
            Self::Mail => "e-mail",
        }
    }
}

/// The messages `to` has received.
async fn messages(runner: &Runner<'_>, to: &str, inbox: Box) -> Result<Vec<Value>, StepError> {
    let path = match inbox {
        Box::Sms => format!("/sms/v1/inbox/{to}"),
        Box::Mail => format!("/mail/v1/inbox/{to}"),
    };
    let (_, answer) = runner.send(System::SmsGateway, Method::GET, &path, None, None).await?;
    Ok(answer["messages"].as_array().cloned().unwrap_or_default())
}

/// A message must arrive within `within` (`count`: exactly that many, none more by the
/// end of `settle`); the regex's named groups become variables.
pub(super) async fn expect(runner: &mut Runner<'_>, e: &InboxExpect, inbox: Box) -> StepResult {
    let to = runner.recipient(&e.to, inbox.is_sms())?;
    let regex = runner.regex(&e.text, "text")?;
    let within = runner.real_time(e.within.as_deref(), "10s")?;
    let field = inbox.field();
    let matches = |m: &Value| {
        m[field].as_str().is_some_and(|t| regex.is_match(t))
            && e.from.as_deref().is_none_or(|f| m["from"].as_str() == Some(f))
    };
    let this = &*runner;
    let (to, regex_ref, matches_ref) = (&to, &regex, &matches);
    let last = poll_until(within, Duration::from_millis(25), || async move {
        let messages = messages(this, to, inbox).await?;
        let matching: Vec<&Value> = messages.iter().filter(|m| matches_ref(m)).collect();
        let enough = match e.count {
            Some(n) => matching.len() == n,
            None => !matching.is_empty(),
        };
        if enough {
            return Ok(Look::Done(matching.last().and_then(|m| m[field].as_str()).unwrap_or("").to_owned()));
        }
        let texts: Vec<&str> = messages.iter().filter_map(|m| m[field].as_str()).collect();
        Ok(Look::NotYet(StepError::Unexpected(format!(
            "expected {} {} to {} ({to}) matching /{}/ within {}; got {} matching of {}",
            e.count.map(|n| n.to_string()).unwrap_or_else(|| "a".into()),
            inbox.noun(),
            e.to,
            regex_ref.as_str(),
            this.render(e.within.as_deref().unwrap_or("10s"))?,
            matching.len(),
            if texts.is_empty() { "none".to_owned() } else { texts.join(" | ") }
        ))))
    })
    .await?;
    if let Some(n) = e.count {
        // Exactly n: a duplicate arriving a moment later must fail too.
        let settle = runner.real_time(e.settle.as_deref(), "2s")?;
        tokio::time::sleep(settle).await;
        let later = messages(runner, to, inbox).await?;
        let later: Vec<&Value> = later.iter().filter(|m| matches(m)).collect();
        if later.len() > n {
            let texts: Vec<&str> = later.iter().filter_map(|m| m[field].as_str()).collect();
            return Err(StepError::Unexpected(format!(
                "expected exactly {n} {} to {to} matching /{}/; {} by the end of the {} settle window: {}",
                inbox.noun(),
                regex.as_str(),
                later.len(),
                e.settle.as_deref().unwrap_or("2s"),
                texts.join(" | ")
            )));
        }
    }
    if let Some(caps) = regex.captures(&last) {
        for name in regex.capture_names().flatten() {
            if let Some(v) = caps.name(name) {
                runner.vars.insert(name.to_owned(), v.as_str().to_owned());
            }
        }
    }
    Ok(())
}

/// No message matching `text` (from `from`) may reach `to` for the whole window.
pub(super) async fn absent(runner: &Runner<'_>, a: &InboxAbsent, inbox: Box) -> StepResult {
    let to = runner.recipient(&a.to, inbox.is_sms())?;
    let regex = runner.regex(a.text.as_deref().unwrap_or(""), "text")?;
    let window = runner.real_time(a.window.as_deref(), "3s")?;
    let field = inbox.field();
    let (to, regex) = (&to, &regex);
    watch(window, Duration::from_millis(50), || async move {
        let messages = messages(runner, to, inbox).await?;
        let bad = messages.iter().find(|m| {
            m[field].as_str().is_some_and(|t| regex.is_match(t))
                && a.from.as_deref().is_none_or(|f| m["from"].as_str() == Some(f))
        });
        match bad {
            Some(m) => Err(StepError::Unexpected(format!(
                "expected no {} to {} ({to}) matching /{}/, got from {}: {:?}",
                inbox.noun(),
                a.to,
                regex.as_str(),
                m["from"],
                m[field].as_str().unwrap_or("")
            ))),
            None => Ok(()),
        }
    })
    .await
}
