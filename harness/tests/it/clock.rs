//! The clock as a discrete-event scheduler: however far one move goes, each job
//! (AVN's midnight forwarding, PN-DGC's issuance, the purges) fires at its own time,
//! what it sets off is handled, stamped with that time, before the clock moves on,
//! and the move returns once the ecosystem is quiet.

use ecosim_core::System;
use ecosim_core::config::Config;
use ecosim_domain::population::Citizen;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{TestEco, spawn_with};

/// Vaccines the schedules draw from: Comirnaty and Spikevax (two-dose cycles).
const VACCINES: [&str; 2] = ["049269018", "049283017"];

/// A dose given on `day` (from the start) to citizen `who` with vaccine `vaccine`.
#[derive(Debug, Clone)]
struct Dose {
    day: u32,
    who: usize,
    vaccine: usize,
}

fn adults(t: &TestEco, n: usize) -> Vec<Citizen> {
    let today = t.eco.context().clock().today();
    t.eco
        .context()
        .population()
        .iter()
        .filter(|c| c.region().code == "160" && (30..60).contains(&c.age_on(today)) && c.mobile().is_some())
        .take(n)
        .cloned()
        .collect()
}

async fn vaccinate(t: &TestEco, c: &Citizen, aic: &str) -> u16 {
    let body = json!({
        "codice_fiscale": c.codice_fiscale().as_str(), "data_somministrazione": t.today(), "ora": "10:00",
        "aic": aic, "lotto": "L1", "categoria_rischio": "altro", "condizione_sanitaria": "nessuna", "via": "IM",
        "sito": "deltoide_sx", "struttura": "HUB", "conferma_contatti": true,
        "contatti_dgc": {"cellulare": c.mobile().map(|m| m.to_string())},
    });
    t.post_as("vaccinatore-160", System::Sar, "/avr/v1/vaccinazioni", &body).await.status().as_u16()
}

async fn advance(t: &TestEco, days: u32) {
    if days > 0 {
        t.admin(System::SistemaTs, "/clock", json!({"advance": format!("{days}d")})).await;
    }
}

/// What must be the same: every exchange (virtual time, who, what, both bodies; not
/// the real time it took), sorted, and what PN-DGC and the SMS gateway hold.
async fn outcome(t: &TestEco) -> (Vec<String>, Value, Value) {
    let journal = t.eco.context().journal().since(0);
    // The gateway numbers messages in the order they arrive, and two sent at the same
    // virtual instant (two certificates issued at one midnight) may arrive in either
    // order: the ids are left out, the messages themselves compared.
    let sms_id = regex::Regex::new(r#"^\{"id":"[0-9a-f-]{36}","#).expect("pattern");
    let mut lines: Vec<String> = journal
        .exchanges
        .iter()
        .map(|e| {
            let response = e.response_body.text();
            let response =
                if e.path == "/sms/v1/messages" { sms_id.replace(&response, "{").into_owned() } else { response };
            format!(
                "{} {} -> {} {} {} {} | {} | {}",
                e.time,
                e.from,
                e.to,
                e.method,
                e.path,
                e.status,
                e.request_body.text(),
                response
            )
        })
        .collect();
    lines.sort();
    let pn = t.get_json(System::PnDgc, "/_admin/state").await;
    let sms = t.get_json(System::SmsGateway, "/_admin/state").await;
    (lines, pn, sms)
}

/// Runs `doses` over `days`, moving the clock either in one jump between doses or a
/// day at a time.
async fn run(doses: &[Dose], days: u32, day_by_day: bool) -> (Vec<String>, Value, Value) {
    let mut config = Config::for_tests(7);
    // The limit is a safety valve for work that hangs; nothing hangs here, and on a
    // loaded machine (a CI runner) a settle may take longer than the default 5 s:
    // a move that went on without waiting would compare nothing.
    config.timing.settle_limit = ecosim_core::duration::HumanDuration(jiff::SignedDuration::from_secs(120));
    let t = spawn_with(config).await;
    let people = adults(&t, 3);
    let mut day = 0;
    for d in doses {
        let step = d.day - day;
        if day_by_day {
            for _ in 0..step {
                advance(&t, 1).await;
            }
        } else {
            advance(&t, step).await;
        }
        day = d.day;
        vaccinate(&t, &people[d.who], VACCINES[d.vaccine]).await;
    }
    if day_by_day {
        for _ in day..days {
            advance(&t, 1).await;
        }
    } else {
        advance(&t, days - day).await;
    }
    outcome(&t).await
}

/// The lines only one journal has (at most 20 of each), for the failure message.
fn differences(jump: &[String], steps: &[String]) -> String {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        let b: std::collections::BTreeSet<&String> = b.iter().collect();
        a.iter().filter(|l| !b.contains(l)).take(20).map(|l| l.chars().take(400).collect()).collect()
    };
    format!(
        "only after one long move:\n  {}\nonly after one-day moves:\n  {}",
        only(jump, steps).join("\n  "),
        only(steps, jump).join("\n  ")
    )
}

fn schedules() -> impl Strategy<Value = (Vec<Dose>, u32)> {
    (14u32..30).prop_flat_map(|days| {
        let dose = (0..days, 0..3usize, 0..VACCINES.len()).prop_map(|(day, who, vaccine)| Dose { day, who, vaccine });
        (proptest::collection::vec(dose, 1..5), Just(days)).prop_map(|(mut doses, days)| {
            doses.sort_by_key(|d| d.day);
            (doses, days)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// An advance of N days gives exactly what N advances of one day give.
    #[test]
    fn one_long_move_equals_many_one_day_moves((doses, days) in schedules()) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let (jump, steps) = rt.block_on(async { (run(&doses, days, false).await, run(&doses, days, true).await) });
        prop_assert_eq!(&jump.1, &steps.1, "PN-DGC differs");
        prop_assert_eq!(&jump.2, &steps.2, "the SMS gateway differs");
        prop_assert!(jump.0 == steps.0, "the journals differ:\n{}", differences(&jump.0, &steps.0));
    }
}

/// The issue's case: a second dose on day 21, then one move of 3 days. The
/// certificate is issued at the first midnight (the day after the dose), stamped
/// with it, and the move returns with the AUTHCODE already sent.
#[tokio::test]
async fn a_three_day_move_after_a_second_dose_certifies_it_the_next_midnight() {
    let t = spawn_with(Config::for_tests(7)).await;
    let anna = adults(&t, 1).remove(0);
    assert_eq!(vaccinate(&t, &anna, VACCINES[0]).await, 201);
    advance(&t, 21).await;
    assert_eq!(vaccinate(&t, &anna, VACCINES[0]).await, 201);
    let dose_day = t.eco.context().clock().today();
    advance(&t, 3).await;
    let journal = t.eco.context().journal().since(0);
    let events: Vec<_> = journal.exchanges.iter().filter(|e| e.path == "/pn-dgc/v1/eventi").collect();
    let sms: Vec<_> = journal
        .exchanges
        .iter()
        .filter(|e| e.path == "/sms/v1/messages" && e.request_body.text().contains("AUTHCODE"))
        .collect();
    assert_eq!((events.len(), sms.len()), (2, 2), "both certificates' AUTHCODEs are sent when the move returns");
    let midnight = t.eco.context().clock().midnight(dose_day.tomorrow().expect("a day"));
    assert_eq!(events[1].time, midnight, "AVN forwards at the first midnight, not at the end of the move");
    assert_eq!(sms[1].time, midnight, "PN-DGC certifies the completed cycle the day after the dose");
}
