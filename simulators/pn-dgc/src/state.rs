//! PN-DGC's state: events waiting for their time, certificates, the AUTHCODE outbox.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::outbox::{self, Outbox};
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, Problem, System};
use ecosim_domain::codes::{Authcode, Msisdn, sha256_hex};
use ecosim_domain::messages::masked_name;
use ecosim_domain::rng::SeededRng;
use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::watch;

use crate::domain::dcc;
use crate::domain::event::Evento;
use crate::domain::signer::Signer;
use crate::outbox::{AuthcodeNotice, Note, Work};
use crate::store;

/// The PN-DGC simulator.
pub struct PnDgc {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) outbox: Arc<Outbox<Work>>,
    pub(crate) signer: Signer,
    pub(crate) sms: SystemClient,
    /// Set when the workers start; a stopped PN-DGC issues nothing more.
    stop: std::sync::OnceLock<watch::Receiver<bool>>,
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
    Signer(#[from] crate::domain::signer::SignerError),
}

impl PnDgc {
    /// Opens the store and makes the signer (from the seed) and the SMS client.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StartError> {
        let store = Arc::new(ctx.open_store(System::PnDgc, store::MIGRATIONS)?);
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
            stop: std::sync::OnceLock::new(),
        }))
    }

    /// Issues, at `at` on the shared clock, what is due then: a clock job, so the
    /// certificate is stamped with its own time however far one clock move goes.
    pub(crate) fn issue_at(self: &Arc<Self>, at: Timestamp) {
        let weak = Arc::downgrade(self);
        self.ctx.clock().schedule_at(at, move |_| {
            let Some(pn) = weak.upgrade() else { return };
            if pn.stop.get().is_some_and(|s| *s.borrow()) {
                return;
            }
            if let Err(e) = pn.issue_due() {
                tracing::error!(error = %e, "cannot issue certificates");
            }
        });
    }

    /// Issues every certificate whose time has come; returns how many.
    pub(crate) fn issue_due(&self) -> Result<usize, StoreError> {
        let now = self.ctx.clock().now();
        let due = self.store.with(|c| store::due_events(c, now.as_millisecond()))?;
        let mut issued = 0;
        for (id, payload) in &due {
            let Ok(event) = serde_json::from_str::<Evento>(payload) else {
                tracing::error!(id, "unreadable event");
                continue;
            };
            if self.issue_pending(&event, now)? {
                issued += 1;
            }
        }
        if issued > 0 {
            self.outbox.wake();
        }
        Ok(issued)
    }

    /// Issues the certificate of the event just received when it is due at once (a
    /// test result's): that event alone, not every due one, so concurrent arrivals do
    /// not each sign the others' certificates.
    pub(crate) fn issue_received(&self, e: &Evento) -> Result<(), StoreError> {
        if self.issue_pending(e, self.ctx.clock().now())? {
            self.outbox.wake();
        }
        Ok(())
    }

    /// Issues `e`'s certificate if the event still waits for one (checked in the
    /// issuing transaction: another task may have issued it meanwhile); whether it did.
    fn issue_pending(&self, e: &Evento, now: Timestamp) -> Result<bool, StoreError> {
        self.store.transaction(|tx| {
            if store::held_event(tx, &e.id)?.is_none_or(|h| h.stato != "in_attesa") {
                return Ok::<_, StoreError>(false);
            }
            self.issue(tx, e, now)?;
            Ok(true)
        })
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
        if let Some(v) = &e.vaccinazione
            && store::latest_dose_certified(tx, &a.id)?.is_some_and(|latest| latest > v.data.to_string())
        {
            // A later dose is certified already: this one (a back-dated earlier dose)
            // would only give a certificate the later one supersedes.
            return store::discard_event(tx, &e.id, "superseded: a later dose is certified");
        }
        let vaccinated = e.guarigione.is_some() && store::has_vaccination_certificate(tx, &a.id)?;
        let Some(mut cert) = dcc::contents(e, &uvci, now, vaccinated) else {
            // Refused at the door (`Evento::check`); never issue from an empty event.
            return store::discard_event(tx, &e.id, "empty event");
        };
        let mutant = |id| self.ctx.config().mutant(id);
        if mutant("DGC-ISSUE")
            && let Some(dn) = cert.doc.pointer("/v/0/dn").cloned()
            && let Some(sd) = cert.doc.pointer_mut("/v/0/sd")
        {
            // Every dose reads as completing its cycle.
            *sd = dn;
        }
        let hc1 = if mutant("DGC-HC1") {
            // Signed by a key nobody published.
            match Signer::from_seed(seed.wrapping_add(1)) {
                Ok(other) => dcc::hc1(&other, &cert.doc, cert.iat, cert.exp),
                Err(_) => dcc::hc1(&self.signer, &cert.doc, cert.iat, cert.exp),
            }
        } else {
            dcc::hc1(&self.signer, &cert.doc, cert.iat, cert.exp)
        };
        store::insert_certificate(
            tx,
            &store::NewCertificate {
                uvci: &uvci,
                tipo: e.kind(),
                assistito: &a.id,
                evento: &e.id,
                authcode: authcode.as_str(),
                authcode_sha: sha256_hex(authcode.as_str()),
                source_sha: cert.source_sha,
                cf_sha: (a.tipo == "CF").then(|| sha256_hex(&a.id)),
                ultime8: a.ultime_8_cifre_ts.as_deref(),
                scadenza_ts: a.scadenza_ts.map(|d| d.to_string()),
                fgl: cert.fgl,
                dcc: cert.doc.to_string(),
                hc1: &hc1,
                emesso_il: now.to_string(),
                emesso_ms: now.as_millisecond(),
            },
        )?;
        let masked = masked_name(&a.nome, &a.cognome);
        let notice = |to: &str| AuthcodeNotice {
            to: to.to_owned(),
            note: Note { authcode: authcode.as_str().to_owned(), nome: masked.clone(), uvci: uvci.clone() },
        };
        if mutant("DGC-AUTHCODE") {
            return Ok(());
        }
        if let Some(m) = e.contatti.cellulare.as_deref().and_then(|m| Msisdn::parse(m).ok()) {
            outbox::enqueue(tx, &uvci, &Work::Sms(notice(m.as_str())))?;
        }
        if let Some(mail) = &e.contatti.email {
            outbox::enqueue(tx, &uvci, &Work::Email(notice(mail)))?;
        }
        Ok(())
    }
}

/// Issues what is due now (after a restart, what fell due while PN-DGC was down) and
/// arms a clock job at each time an event waits for; ends when `stop` turns true.
pub(crate) fn issue_on_clock(pn: &Arc<PnDgc>, stop: watch::Receiver<bool>) -> Result<(), StoreError> {
    let _ = pn.stop.set(stop);
    pn.issue_due()?;
    for ms in pn.store.with(store::waiting_times)? {
        if let Ok(at) = Timestamp::from_millisecond(ms) {
            pn.issue_at(at);
        }
    }
    Ok(())
}

impl ecosim_core::admin::SimulatorAdmin for PnDgc {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<Value, Problem> {
        let mut counts = self.store.counts()?;
        let waiting = self.store.with(store::waiting)?;
        counts.insert("in_attesa".into(), waiting.into());
        Ok(Value::Object(counts))
    }
}
