//! PN-DGC's state: events waiting for their time, certificates, the AUTHCODE outbox.

use std::sync::Arc;

use base64::Engine as _;
use ecosim_core::client::SystemClient;
use ecosim_core::codes::{Authcode, Msisdn, sha256_hex};
use ecosim_core::messages::masked_name;
use ecosim_core::outbox::{self, Outbox};
use ecosim_core::rng::SeededRng;
use ecosim_core::store::{CachedSql, Store, StoreError};
use ecosim_core::{Context, Problem, System};
use jiff::{Timestamp, ToSpan};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::dcc;
use crate::event::{Evento, doses};
use crate::outbox::{AuthcodeNotice, Note, Work};
use crate::signer::Signer;

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE eventi (
        id TEXT PRIMARY KEY,
        tipo TEXT NOT NULL,
        assistito TEXT NOT NULL,
        payload TEXT NOT NULL,
        ricevuto_il TEXT NOT NULL,
        emissione_ms INTEGER NOT NULL,
        stato TEXT NOT NULL,
        motivo TEXT,
        certificato TEXT
    );
    CREATE INDEX eventi_due ON eventi (stato, emissione_ms);
    CREATE TABLE certificati (
        id TEXT PRIMARY KEY,
        uvci TEXT NOT NULL UNIQUE,
        tipo TEXT NOT NULL,
        assistito TEXT NOT NULL,
        evento TEXT NOT NULL,
        authcode TEXT NOT NULL,
        authcode_sha TEXT NOT NULL UNIQUE,
        source_sha TEXT,
        cf_sha TEXT,
        ultime8 TEXT,
        scadenza_ts TEXT,
        fgl TEXT,
        dcc TEXT NOT NULL,
        hc1 TEXT NOT NULL,
        emesso_il TEXT NOT NULL,
        emesso_ms INTEGER NOT NULL
    );
    CREATE INDEX certificati_source ON certificati (source_sha);
    CREATE INDEX certificati_assistito ON certificati (assistito);",
    ecosim_core::outbox::MIGRATION,
];

/// The PN-DGC simulator.
pub struct PnDgc {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) outbox: Arc<Outbox<Work>>,
    pub(crate) signer: Signer,
    pub(crate) sms: SystemClient,
}

impl std::fmt::Debug for PnDgc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PnDgc").field("store", &self.store).field("signer", &self.signer).finish_non_exhaustive()
    }
}

/// Why PN-DGC could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing certificate.
    #[error(transparent)]
    Signer(#[from] crate::signer::SignerError),
}

impl PnDgc {
    /// Opens the store and makes the signer (from the seed) and the SMS client.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StartError> {
        let store = Arc::new(ctx.open_store(System::PnDgc, MIGRATIONS)?);
        Ok(Arc::new(Self {
            ctx: ctx.clone(),
            outbox: Outbox::for_system(ctx, System::PnDgc, store.clone()),
            signer: Signer::from_seed(ctx.config().seed)?,
            sms: SystemClient::new(
                ecosim_core::client::http_client(),
                &ctx.config().url_of(System::SmsGateway),
                ctx.accounts().get("pn-dgc"),
            ),
            store,
        }))
    }

    /// Issues every certificate whose time has come; returns how many.
    pub(crate) fn issue_due(&self) -> Result<usize, StoreError> {
        let now = self.ctx.clock().now();
        let due: Vec<(String, String)> = self.store.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, payload FROM eventi WHERE stato = 'in_attesa' AND emissione_ms <= ?1 ORDER BY emissione_ms, id",
            )?;
            stmt.query_map([now.as_millisecond()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        for (id, payload) in &due {
            let Ok(event) = serde_json::from_str::<Evento>(payload) else {
                tracing::error!(id, "unreadable event");
                continue;
            };
            self.store.transaction(|tx| Ok::<_, StoreError>(self.issue(tx, &event, now)?))?;
        }
        if !due.is_empty() {
            self.outbox.wake();
        }
        Ok(due.len())
    }

    /// Builds, signs and stores the certificate of `e`, and queues its AUTHCODE.
    fn issue(&self, tx: &Connection, e: &Evento, now: Timestamp) -> rusqlite::Result<()> {
        let seed = self.ctx.config().seed;
        let mut rng = SeededRng::derive(seed, &format!("pn-dgc/{}", e.id));
        let authcode = Authcode::generate(&mut rng);
        let mut uvci_bytes = [0u8; 16];
        for chunk in uvci_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
        }
        let uvci = dcc::uvci(uvci_bytes);
        let a = &e.assistito;
        let mut doc = dcc::person(&a.cognome, &a.nome, &a.data_nascita.to_string());
        doc["ver"] = json!(dcc::SCHEMA_VERSION);
        let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap_or(jiff::tz::TimeZone::UTC);
        let iat = now.as_second();
        let (exp, source_sha, fgl) = if let Some(v) = &e.vaccinazione {
            let vaccine = ecosim_core::vaccines::find(&v.aic);
            let (dn, sd) = vaccine.map(|vx| doses(vx, v.dose)).unwrap_or((v.dose, v.dose));
            doc["v"] = json!([{
                "tg": dcc::TARGET, "vp": vaccine.map(|x| x.dcc_type), "mp": vaccine.map(|x| x.dcc_product),
                "ma": vaccine.map(|x| x.dcc_manufacturer), "dn": dn, "sd": sd, "dt": v.data.to_string(),
                "co": v.paese, "is": dcc::ISSUER, "ci": uvci,
            }]);
            (
                now.checked_add(jiff::SignedDuration::from_hours(365 * 24)).map(|t| t.as_second()).unwrap_or(iat),
                None,
                None,
            )
        } else if let Some(t) = &e.test {
            let sc =
                t.data_esecuzione.at(8, 0, 0, 0).to_zoned_datetime(tz.clone()).map(|z| z.timestamp()).unwrap_or(now);
            let molecular = t.tipo_test == "MOLECOLARE";
            doc["t"] = json!([{
                "tg": dcc::TARGET, "tt": if molecular { "LP6464-4" } else { "LP217198-3" },
                "sc": sc.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "tr": if t.esito == "NEGATIVO" { "260415000" } else { "260373001" },
                "tc": t.struttura, "co": "IT", "is": dcc::ISSUER, "ci": uvci,
            }]);
            let hours = if molecular { 72 } else { 48 };
            let exp = sc.checked_add(jiff::SignedDuration::from_hours(hours)).map(|x| x.as_second()).unwrap_or(iat);
            let cun10 = t.cun.trim_start_matches("CUN-");
            (exp, Some(sha256_hex(&format!("CUN-{cun10}"))), None)
        } else if let Some(g) = &e.guarigione {
            let du = g.data_primo_positivo.checked_add(180.days()).unwrap_or(g.data_primo_positivo);
            let df =
                g.data_guarigione.max(g.data_primo_positivo.checked_add(11.days()).unwrap_or(g.data_primo_positivo));
            doc["r"] = json!([{
                "tg": dcc::TARGET, "fr": g.data_primo_positivo.to_string(), "co": "IT", "is": dcc::ISSUER,
                "df": df.to_string(), "du": du.to_string(), "ci": uvci,
            }]);
            let vaccinated: bool = tx.row(
                "SELECT EXISTS (SELECT 1 FROM certificati WHERE assistito = ?1 AND tipo = 'vaccinazione')",
                [&a.id],
                |r| r.get(0),
            )?;
            let exp = du.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(iat);
            (exp, Some(sha256_hex(&format!("NUCG-{}", g.nucg))), vaccinated.then_some("cbis"))
        } else {
            // Refused at the door (`Evento::check`); never issue from an empty event.
            tx.exec("UPDATE eventi SET stato = 'scartato', motivo = 'empty event' WHERE id = ?1", [&e.id])?;
            return Ok(());
        };
        let hc1 = dcc::hc1(&self.signer, &doc, iat, exp);
        let cf_sha = (a.tipo == "CF").then(|| sha256_hex(&a.id));
        tx.exec(
            "INSERT INTO certificati (id, uvci, tipo, assistito, evento, authcode, authcode_sha, source_sha, cf_sha,
                 ultime8, scadenza_ts, fgl, dcc, hc1, emesso_il, emesso_ms)
             VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                uvci,
                e.kind(),
                a.id,
                e.id,
                authcode.as_str(),
                sha256_hex(authcode.as_str()),
                source_sha,
                cf_sha,
                a.ultime_8_cifre_ts,
                a.scadenza_ts.map(|d| d.to_string()),
                fgl,
                doc.to_string(),
                hc1,
                now.to_string(),
                now.as_millisecond(),
            ],
        )?;
        tx.exec("UPDATE eventi SET stato = 'emesso', certificato = ?2 WHERE id = ?1", params![e.id, uvci])?;
        let masked = masked_name(&a.nome, &a.cognome);
        let notice = |to: &str| AuthcodeNotice {
            to: to.to_owned(),
            note: Note { authcode: authcode.as_str().to_owned(), nome: masked.clone(), uvci: uvci.clone() },
        };
        if let Some(m) = e.contatti.cellulare.as_deref().and_then(|m| Msisdn::parse(m).ok()) {
            outbox::enqueue(tx, &uvci, &Work::Sms(notice(m.as_str())))?;
        }
        if let Some(mail) = &e.contatti.email {
            outbox::enqueue(tx, &uvci, &Work::Email(notice(mail)))?;
        }
        Ok(())
    }

    /// The newest certificate matching, as `(uvci, hc1, fgl)`.
    pub(crate) fn find(&self, column: &str, sha: &str, extra: &[(&str, &str)]) -> Result<Option<Found>, StoreError> {
        let mut sql = format!("SELECT uvci, hc1, fgl FROM certificati WHERE {column} = ?1");
        for (i, (col, _)) in extra.iter().enumerate() {
            sql.push_str(&format!(" AND {col} = ?{}", i + 2));
        }
        sql.push_str(" ORDER BY emesso_ms DESC, rowid DESC LIMIT 1");
        let mut values: Vec<&str> = vec![sha];
        values.extend(extra.iter().map(|(_, v)| *v));
        self.store.with(|c| {
            c.row(&sql, rusqlite::params_from_iter(values), |r| {
                Ok(Found { uvci: r.get(0)?, hc1: r.get(1)?, fgl: r.get(2)? })
            })
            .optional()
        })
    }
}

/// A certificate found for retrieval.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) uvci: String,
    pub(crate) hc1: String,
    pub(crate) fgl: Option<String>,
}

impl Found {
    pub(crate) fn qrcode_b64(&self) -> Result<String, Problem> {
        let png = dcc::qr_png(&self.hc1).map_err(Problem::internal)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(png))
    }
}

/// Issues what is due every time the shared clock moves (and at start).
pub(crate) async fn issue_on_clock(pn: Arc<PnDgc>, mut stop: watch::Receiver<bool>) {
    let mut clock = pn.ctx.clock().subscribe();
    loop {
        if let Err(e) = pn.issue_due() {
            tracing::error!(error = %e, "cannot issue certificates");
        }
        tokio::select! {
            changed = clock.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

impl ecosim_core::admin::SimulatorAdmin for PnDgc {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<Value, Problem> {
        let mut counts = self.store.counts()?;
        let waiting: i64 =
            self.store.with(|c| c.row("SELECT COUNT(*) FROM eventi WHERE stato = 'in_attesa'", [], |r| r.get(0)))?;
        counts.insert("in_attesa".into(), waiting.into());
        Ok(Value::Object(counts))
    }
}
