//! Doses to AVN, from the outbox: the current version, as the region's `avr-R`
//! account; AVN is idempotent on the regional id and version.

use ecosim_core::outbox::{Item, Outcome};
use ecosim_core::store::CachedSql;
use reqwest::Method;
use rusqlite::OptionalExtension;
use serde_json::Value;

use crate::outbox::Work;
use crate::state::Sar;

/// [`Work::Avn`]: the current version of dose `id` to AVN.
pub(crate) async fn send_to_avn(sar: &Sar, item: &Item<Work>, id: &str) -> Outcome {
    let wanted: u32 = item.key.rsplit('@').next().and_then(|v| v.parse().ok()).unwrap_or(1);
    let row = sar.store.with(|c| {
        c.row("SELECT regione, record, versione FROM vaccinazioni WHERE id = ?1", [id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
        })
        .optional()
    });
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
    let body: Value = serde_json::from_str(&record).unwrap_or(Value::Null);
    let res = sar.avn.as_account(account).request(Method::POST, "/avn/v1/somministrazioni").json(&body).send().await;
    ecosim_core::client::outcome_of(res).await
}
