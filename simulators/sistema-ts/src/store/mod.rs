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
    // Fewer B-trees written per result (#14): a CUN is found by its hash (Immuni
    // sends the hash; anyone else's CUN is hashed first), so the CUN needs no index
    // of its own and no registry (the unique hash keeps CUNs unique among the records
    // held, which is what the registry held since #13); a record's issue is read
    // from the record itself, not kept as an event.
    "CREATE TABLE test_results_next (
        id TEXT PRIMARY KEY,
        cun TEXT NOT NULL,
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
    INSERT INTO test_results_next (id, cun, region, submitted_by, codice_fiscale, esito, tipo_test,
        data_esecuzione, struttura, cellulare, email, invio_cun_da_ts, created_at, expires_ms, cun_sha)
    SELECT id, cun, region, submitted_by, codice_fiscale, esito, tipo_test,
        data_esecuzione, struttura, cellulare, email, invio_cun_da_ts, created_at, expires_ms, cun_sha
    FROM test_results;
    DROP TABLE test_results;
    ALTER TABLE test_results_next RENAME TO test_results;
    CREATE INDEX test_results_by_region_date ON test_results (region, data_esecuzione);
    CREATE UNIQUE INDEX test_results_by_cun_sha ON test_results (cun_sha);
    CREATE INDEX test_results_by_cf ON test_results (codice_fiscale);
    CREATE INDEX test_results_by_expiry ON test_results (expires_ms);
    DROP TABLE cun_registry;
    DELETE FROM cun_events WHERE kind = 'issued';",
    ecosim_core::outbox::DUE_MIGRATION,
    // Plain row ids: no `sqlite_sequence` write per enqueue (#14).
    ecosim_core::outbox::ROWID_MIGRATION,
];

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_core::store::{Store, StoreLocation};
    use ecosim_domain::codes::Cun;
    use rusqlite::Connection;

    fn result() -> crate::domain::test_result::TestResult {
        let raw: crate::domain::test_result::RawTestResult = serde_json::from_value(serde_json::json!({
            "codice_fiscale": "RSSMRA80A01H501U", "esito": "POSITIVO", "tipo_test": "MOLECOLARE",
            "data_esecuzione": "2026-12-01", "struttura": "LAB-1"
        }))
        .expect("raw");
        crate::domain::test_result::validate(&raw).expect("valid")
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn a_cun_held_by_a_record_is_refused_to_the_next_and_nothing_of_it_is_written() {
        let store = Store::open(&StoreLocation::Memory, "ts", MIGRATIONS).expect("open");
        let result = result();
        let record = |id| test_results::NewRecord {
            id,
            region: "120",
            submitted_by: "sar-120",
            result: &result,
            created_at: "2026-12-01T10:00:00Z".into(),
            expires_ms: 1,
        };
        let mut rng = ecosim_domain::rng::SeededRng::new(7);
        let (cun, other) = (Cun::generate(&mut rng), Cun::generate(&mut rng));
        store
            .with(|c| {
                assert!(test_results::insert(c, &record("a"), &cun)?);
                assert!(!test_results::insert(c, &record("b"), &cun)?, "the same CUN twice");
                assert!(test_results::insert(c, &record("c"), &other)?);
                assert_eq!(count(c, "test_results"), 2);
                let found = test_results::live(c, &cun.sha256(), "120", 0)?.expect("found by the CUN's hash");
                assert_eq!((found.id.as_str(), found.submitted_by.as_str()), ("a", "sar-120"));
                Ok(())
            })
            .expect("store");
    }

    #[test]
    fn the_migration_keeps_the_records_and_reads_their_issue_from_them() {
        let c = Connection::open_in_memory().expect("open");
        let at = MIGRATIONS.iter().position(|m| m.contains("DROP TABLE cun_registry")).expect("the rebuild");
        let (before, rest) = MIGRATIONS.split_at(at);
        for m in before {
            c.execute_batch(m).expect("earlier migration");
        }
        c.execute_batch(
            "INSERT INTO test_results (id, cun, region, submitted_by, codice_fiscale, esito, tipo_test,
                data_esecuzione, struttura, invio_cun_da_ts, created_at, expires_ms, cun_sha)
             VALUES ('a', '2B4C6D8F1A', '120', 'lab-120', 'RSSMRA80A01H501U', 'POSITIVO', 'MOLECOLARE',
                '2026-12-01', 'LAB-1', 0, '2026-12-01T10:00:00Z', 9, 'sha-a');
             INSERT INTO cun_registry VALUES ('2B4C6D8F1A', '2026-12-01T10:00:00Z');
             INSERT INTO cun_events (cun, at, kind, detail) VALUES
                ('2B4C6D8F1A', '2026-12-01T10:00:00Z', 'issued', '{\"regione\":\"120\",\"da\":\"lab-120\"}'),
                ('2B4C6D8F1A', '2026-12-02T10:00:00Z', 'corrected', '{\"campi\":[\"esito\"],\"da\":\"sar-120\"}');",
        )
        .expect("old rows");
        for m in rest {
            c.execute_batch(m).expect("migration");
        }
        let record = test_results::live(&c, "sha-a", "120", 0).expect("read").expect("kept");
        let events: Vec<(String, String)> =
            cun::history(&c, &record).expect("history").into_iter().map(|e| (e.evento, e.at)).collect();
        assert_eq!(
            events,
            [
                ("issued".to_owned(), "2026-12-01T10:00:00Z".to_owned()),
                ("corrected".to_owned(), "2026-12-02T10:00:00Z".to_owned())
            ],
            "the issue once, from the record"
        );
        let tables: i64 = c
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'cun_registry'", [], |r| r.get(0))
            .expect("schema");
        assert_eq!(tables, 0);
    }
}
