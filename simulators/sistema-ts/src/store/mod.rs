//! Sistema TS's database: the schema, and every statement with its rows typed, one
//! file per area.

pub(crate) mod cun;
pub(crate) mod guarigioni;
pub(crate) mod registry;
pub(crate) mod test_results;
pub(crate) mod unlock;
pub(crate) mod vaccinazioni;

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE test_results (
        id TEXT PRIMARY KEY,
        cun TEXT NOT NULL UNIQUE,
        region TEXT NOT NULL,
        submitted_by TEXT NOT NULL,
        codice_fiscale TEXT NOT NULL,
        esito TEXT NOT NULL,
        tipo_test TEXT NOT NULL,
        data_esecuzione TEXT NOT NULL,
        struttura TEXT NOT NULL,
        cellulare TEXT,
        email TEXT,
        invio_cun_da_ts INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        cun_sha TEXT NOT NULL
    );
    CREATE INDEX test_results_by_region_date ON test_results (region, data_esecuzione);
    CREATE UNIQUE INDEX test_results_by_cun_sha ON test_results (cun_sha);
    CREATE INDEX test_results_by_cf ON test_results (codice_fiscale);
    -- Every CUN ever issued: never purged, so no CUN is issued twice.
    CREATE TABLE cun_registry (cun TEXT PRIMARY KEY, issued_at TEXT NOT NULL);
    -- What happened to each CUN; no personal data, kept after the purge.
    CREATE TABLE cun_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cun TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX cun_events_by_cun ON cun_events (cun);
    -- Earlier versions of corrected records (purged with them).
    CREATE TABLE test_result_versions (
        test_result TEXT NOT NULL,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (test_result, version)
    );",
    ecosim_core::idempotency::MIGRATION,
    ecosim_core::outbox::MIGRATION,
    // The Immuni unlock: HIS verifications bound to CUNs, failed card checks.
    "CREATE TABLE cun_verifications (
        id_test_verification TEXT PRIMARY KEY,
        cun TEXT NOT NULL,
        verified_at TEXT NOT NULL,
        invalidated_at TEXT
    );
    CREATE INDEX cun_verifications_by_cun ON cun_verifications (cun);
    CREATE TABLE card_failures (last8 TEXT NOT NULL, at_ms INTEGER NOT NULL);
    CREATE INDEX card_failures_by_card ON card_failures (last8, at_ms);",
    // Vaccinations (Flow 3): registry changes, people outside the SSN, doses, anomalies.
    "CREATE TABLE cf_variazioni (vecchio TEXT PRIMARY KEY, nuovo TEXT NOT NULL UNIQUE, at TEXT NOT NULL);
    CREATE TABLE stranieri (
        id_ts TEXT PRIMARY KEY,
        cognome TEXT NOT NULL,
        nome TEXT NOT NULL,
        sesso TEXT NOT NULL,
        data_nascita TEXT NOT NULL,
        regione TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE vaccinazioni (
        id TEXT PRIMARY KEY,
        fonte TEXT NOT NULL,
        assistito TEXT NOT NULL,
        regione TEXT NOT NULL,
        id_regionale TEXT,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        farmaco TEXT NOT NULL,
        dose INTEGER NOT NULL,
        tipo_dose TEXT NOT NULL,
        paese TEXT,
        contatti TEXT NOT NULL,
        record TEXT NOT NULL,
        stato TEXT NOT NULL,
        dgc TEXT NOT NULL,
        versione INTEGER NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX vaccinazioni_by_assistito ON vaccinazioni (assistito, data);
    CREATE TABLE anomalie (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        regione TEXT NOT NULL,
        vaccinazione TEXT NOT NULL,
        id_regionale TEXT,
        tipo TEXT NOT NULL,
        dettaglio TEXT NOT NULL,
        rilevata_il TEXT NOT NULL,
        risolta_il TEXT
    );
    CREATE INDEX anomalie_by_regione ON anomalie (regione, id);",
    // Recoveries (Flow 4: recovery certificates).
    "CREATE TABLE guarigioni (
        id TEXT PRIMARY KEY,
        nucg TEXT NOT NULL UNIQUE,
        assistito TEXT NOT NULL,
        regione TEXT NOT NULL,
        data_primo_positivo TEXT NOT NULL,
        data_guarigione TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX guarigioni_by_assistito ON guarigioni (assistito);",
    // Brute force per CUN too (#13): a failed check against a CUN that exists names it.
    "ALTER TABLE card_failures ADD COLUMN cun TEXT;
    CREATE INDEX card_failures_by_cun ON card_failures (cun, at_ms) WHERE cun IS NOT NULL;",
    // Since #13 the registry, the history and the key go with the record when it is
    // purged (`SistemaTs::purge`): the comments of the first migration describe
    // the first version.
    ecosim_core::idempotency::EXPIRY_MIGRATION,
    // Purges take every record due at once (#13).
    "CREATE INDEX test_results_by_expiry ON test_results (expires_ms);",
];
