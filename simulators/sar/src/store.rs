//! The SAR's schema, both wings' (each wing's statements are in its own `store`).

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE esiti (
        id TEXT PRIMARY KEY,
        lab TEXT NOT NULL,
        region TEXT NOT NULL,
        payload TEXT NOT NULL,
        stato TEXT NOT NULL,
        cun TEXT,
        errore TEXT,
        sms_to TEXT,
        email_to TEXT,
        sms_stato TEXT NOT NULL,
        email_stato TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX esiti_by_region ON esiti (region);",
    ecosim_core::idempotency::MIGRATION,
    ecosim_core::outbox::MIGRATION,
    // The AVR (Flow 3).
    "CREATE TABLE vaccinazioni (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        vaccinatore TEXT NOT NULL,
        assistito TEXT NOT NULL,
        tipo_id TEXT NOT NULL,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        dose INTEGER NOT NULL,
        tipo_dose TEXT NOT NULL,
        proposto INTEGER NOT NULL,
        forzature INTEGER NOT NULL DEFAULT 0,
        estero TEXT,
        record TEXT NOT NULL,
        versione INTEGER NOT NULL,
        avvisi TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX vaccinazioni_by_assistito ON vaccinazioni (regione, assistito, data);
    CREATE TABLE mobilita (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        dose INTEGER NOT NULL,
        regione_somministrazione TEXT NOT NULL,
        versione INTEGER NOT NULL
    );
    CREATE INDEX mobilita_by_assistito ON mobilita (regione, assistito);
    CREATE TABLE mobilita_cursori (regione TEXT PRIMARY KEY, dal TEXT NOT NULL);
    CREATE TABLE infezioni (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data_prelievo TEXT NOT NULL,
        data_esito TEXT NOT NULL,
        data_guarigione TEXT,
        luogo TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX infezioni_by_assistito ON infezioni (regione, assistito);
    CREATE TABLE assistiti_importati (
        regione TEXT NOT NULL,
        id TEXT NOT NULL,
        record TEXT NOT NULL,
        importato_il TEXT NOT NULL,
        PRIMARY KEY (regione, id)
    );",
    // Green-pass contacts, kept apart from any other contact (AVR-5c, GIAVA 5).
    "CREATE TABLE contatti_dgc (
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        cellulare TEXT,
        email TEXT,
        fonte TEXT NOT NULL,
        aggiornato_il TEXT NOT NULL,
        PRIMARY KEY (regione, assistito)
    );",
    ecosim_core::idempotency::EXPIRY_MIGRATION,
    ecosim_core::outbox::DUE_MIGRATION,
    // Plain row ids: no `sqlite_sequence` write per enqueue (#14).
    ecosim_core::outbox::ROWID_MIGRATION,
];
