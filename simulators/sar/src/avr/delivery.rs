//! Doses to AVN, from the outbox: the current version, as the region's `avr-R`
//! account; AVN is idempotent on the regional id and version.

use ecosim_core::client::Method;
use ecosim_core::outbox::{Item, Outcome};
use serde_json::Value;

use crate::outbox::Work;
use crate::state::Sar;

/// [`Work::Avn`]: the current version of dose `id` to AVN.
pub(crate) async fn send_to_avn(sar: &Sar, item: &Item<Work>, id: &str) -> Outcome {
    if sar.ctx.config().mutant("AVR-1.3a") {
        // The mutant: the dose never leaves the AVR.
        return Outcome::Failed("AVR-1.3a mutant: not sent".into());
    }
    let wanted: u32 = item.key.rsplit('@').next().and_then(|v| v.parse().ok()).unwrap_or(1);
    let row = sar.store.with(|c| super::store::for_avn(c, id));
    let (region, record, versione) = match row {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Failed(format!("dose {id} is gone")),
        Err(e) => return Outcome::Retry { after: None, error: e.to_string() },
    };
    if versione > wanted {
        // A newer version has an item of its own.
        return Outcome::Done;
    }
    let Some(account) = sar.ctx.accounts().get(&format!("avr-{region}")) else {
        return Outcome::Failed(format!("no account avr-{region} to reach AVN with"));
    };
    let body: Value = match serde_json::from_str(&record) {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("dose {id} is stored unreadable: {e}")),
    };
    let res = sar.avn.as_account(account).request(Method::POST, "/avn/v1/somministrazioni").json(&body).send().await;
    ecosim_core::client::outcome_of(res).await
}
