//! The GIAVA rules for a new dose, as a plain function (GIAVA v1.62, ch. 5-7).
//!
//! [`assign`] takes the doses known for the person (the AVR's own, AVN's mobility
//! feed, Sistema TS's national check, doses declared as given abroad) and the dose
//! being registered, and either assigns its number and kind with warnings, or
//! refuses it naming the rule, in Italian and English:
//!
//! | rule | what |
//! |---|---|
//! | AVR-6a | the dose number follows the doses known; the operator may force it; a second dose on a day that has one is a duplicate (409, checked by the route before the rules) |
//! | AVR-6b | an additional dose only for `soggetto_vulnerabile` with a condition other than `nessuna` |
//! | AVR-6c | a booster only for the listed categories, except a single Janssen dose at least 180 days earlier |
//! | AVR-6d | after a non-EMA cycle abroad: an mRNA dose from day 28 to day 180 is dose n+1 (booster), later dose 1 of a new cycle |
//! | AVR-7 | ages 5-11 get the paediatric Comirnaty (10 mcg); a mismatch is refused unless forced |
//!
//! Minimum intervals between primary doses (Comirnaty 21 days, Spikevax and
//! Vaxzevria 28) and the 42-day limit for mRNA are warnings only.

use ecosim_domain::vaccination::{CategoriaRischio, TipoDose};
use ecosim_domain::vaccines::Vaccine;
use jiff::civil::Date;

/// From this day after a non-EMA cycle an mRNA booster may be given (GIAVA 6.3).
pub(crate) const NON_EMA_BOOSTER_FROM_DAYS: i32 = 28;
pub(crate) use ecosim_domain::vaccines::NON_EMA_BOOSTER_UNTIL_DAYS;
/// A single Janssen dose allows a booster to anyone after this many days (GIAVA 6.1).
pub(crate) const JANSSEN_BOOSTER_DAYS: i32 = 180;

/// A dose known for the person.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) date: Date,
    pub(crate) vaccine: &'static Vaccine,
}

/// The dose being registered.
#[derive(Debug, Clone)]
pub(crate) struct NewDose {
    pub(crate) date: Date,
    pub(crate) vaccine: &'static Vaccine,
    pub(crate) categoria: CategoriaRischio,
    /// The health condition is `nessuna`.
    pub(crate) no_condition: bool,
    /// The kind the operator asked for, if any.
    pub(crate) requested: Option<TipoDose>,
    /// The operator's forced dose number (AVR-6a).
    pub(crate) forced_number: Option<u8>,
    /// The operator confirms a flagged registration (AVR-7).
    pub(crate) forza: bool,
    /// Age in whole years on the day.
    pub(crate) age: i16,
    /// A registered infection before the first dose: one dose completes the cycle.
    pub(crate) infected_before: bool,
    /// Rules switched off on purpose (`[sar] defects`; never by default).
    pub(crate) broken: Broken,
}

/// GIAVA rules the reference AVR breaks on purpose, so certification can be shown
/// to catch each (`[sar] defects` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Broken {
    /// AVR-6b: an additional dose for anyone.
    pub(crate) additional_for_anyone: bool,
    /// AVR-6c: a booster for anyone.
    pub(crate) booster_for_anyone: bool,
    /// AVR-6d: non-EMA vaccines count like any other.
    pub(crate) non_ema_like_any: bool,
    /// AVR-7: no paediatric rule.
    pub(crate) no_age_rule: bool,
    /// AVR-6a (mutant): the doses known are ignored, every dose is number 1.
    pub(crate) ignore_known: bool,
    /// AVR-7b (mutant): a second paediatric dose after turning 12 is not allowed.
    pub(crate) paediatric_only_to_11: bool,
}

/// A warning attached to an accepted dose.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Avviso {
    pub(crate) regola: &'static str,
    pub(crate) messaggio: String,
    pub(crate) message: String,
}

/// What the rules assign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub(crate) numero: u8,
    /// The number the rules propose (differs from `numero` when forced).
    pub(crate) proposto: u8,
    pub(crate) tipo: TipoDose,
    pub(crate) avvisi: Vec<Avviso>,
}

/// A refusal: a 422 naming the rule and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) regola: &'static str,
    pub(crate) field: &'static str,
    pub(crate) messaggio: String,
    pub(crate) message: String,
}

fn refuse(regola: &'static str, field: &'static str, it: String, en: String) -> Refusal {
    Refusal { regola, field, messaggio: it, message: en }
}

fn warn(regola: &'static str, it: String, en: String) -> Avviso {
    Avviso { regola, messaggio: it, message: en }
}

fn days(from: Date, to: Date) -> i32 {
    (to - from).get_days()
}

/// Applies the rules. `known` may be in any order and may hold doses after `d.date`
/// (ignored).
pub(crate) fn assign(known: &[Known], d: &NewDose) -> Result<Assignment, Refusal> {
    let mut prior: Vec<Known> = known.iter().copied().filter(|k| k.date < d.date && !d.broken.ignore_known).collect();
    prior.sort_by_key(|k| k.date);
    let mut avvisi = Vec::new();
    check_age(&prior, d, &mut avvisi)?;

    let (proposto, tipo) = propose(&prior, d, &mut avvisi)?;
    let numero = match d.forced_number {
        Some(n) if n != proposto => {
            avvisi.push(warn(
                "AVR-6a",
                format!("numero dose forzato a {n} dall'operatore (proposto dal sistema: {proposto})"),
                format!("dose number forced to {n} by the operator (the system proposed {proposto})"),
            ));
            n
        }
        _ => proposto,
    };
    Ok(Assignment { numero, proposto, tipo, avvisi })
}

/// AVR-7: the paediatric formulation for ages 5-11 (and for a second dose after a
/// paediatric first one, even at 12: circular 58012 of 2021-12-16).
fn check_age(prior: &[Known], d: &NewDose, avvisi: &mut Vec<Avviso>) -> Result<(), Refusal> {
    if d.broken.no_age_rule {
        return Ok(());
    }
    let started_paediatric = prior.last().is_some_and(|k| k.vaccine.pediatrico) && !d.broken.paediatric_only_to_11;
    let problem = if d.age < 5 {
        Some((
            format!("nessun vaccino è autorizzato sotto i 5 anni (età: {})", d.age),
            format!("no vaccine is authorised under 5 (age: {})", d.age),
        ))
    } else if d.age <= 11 && !d.vaccine.pediatrico {
        Some((
            format!(
                "per l'età di {} anni è prevista la formulazione pediatrica Comirnaty 10 mcg (COMIRNATY-10), non {}",
                d.age, d.vaccine.code
            ),
            format!("at {} the paediatric Comirnaty 10 mcg (COMIRNATY-10) is due, not {}", d.age, d.vaccine.code),
        ))
    } else if d.age >= 12 && d.vaccine.pediatrico && !(d.age == 12 && started_paediatric) {
        Some((
            format!("la formulazione pediatrica è prevista solo per 5-11 anni (età: {})", d.age),
            format!("the paediatric formulation is for ages 5-11 (age: {})", d.age),
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some((it, en)) if d.forza => {
            avvisi.push(warn("AVR-7", format!("registrazione forzata: {it}"), format!("registration forced: {en}")));
            Ok(())
        }
        Some((it, en)) => Err(refuse(
            "AVR-7",
            "aic",
            format!("{it}. Se la dose è stata davvero somministrata, ripetere con \"forza\": true."),
            format!("{en}. If that dose was really given, send it again with \"forza\": true."),
        )),
    }
}

fn propose(prior: &[Known], d: &NewDose, avvisi: &mut Vec<Avviso>) -> Result<(u8, TipoDose), Refusal> {
    let n = u8::try_from(prior.len()).unwrap_or(u8::MAX);
    if !d.vaccine.ema && !d.broken.non_ema_like_any {
        return Err(refuse(
            "AVR-6d",
            "aic",
            format!(
                "{} non è autorizzato dall'EMA e non si somministra in Italia; le dosi ricevute all'estero si \
                 registrano con \"estero\"",
                d.vaccine.farmaco
            ),
            format!(
                "{} is not authorised by EMA and is not given in Italy; register doses received abroad with \"estero\"",
                d.vaccine.farmaco
            ),
        ));
    }
    let Some(last) = prior.last() else {
        return match (d.requested, d.forced_number) {
            (Some(t @ (TipoDose::Addizionale | TipoDose::Booster)), None) => Err(refuse(
                "AVR-6a",
                "tipo_dose",
                format!(
                    "nessuna dose precedente nota: una dose {} richiede un ciclo completato; se il ciclo è stato \
                     fatto altrove, forzare il numero dose (numero_dose_forzato)",
                    t.as_str()
                ),
                format!(
                    "no earlier dose is known: a {} dose needs a completed cycle; if it was done elsewhere, force \
                     the dose number (numero_dose_forzato)",
                    t.as_str()
                ),
            )),
            (Some(t), Some(_)) => Ok((1, t)),
            _ => Ok((1, TipoDose::CicloPrimario)),
        };
    };
    let since_last = days(last.date, d.date);

    // AVR-6d: a cycle abroad with vaccines EMA did not authorise.
    if prior.iter().all(|k| !k.vaccine.ema) && !d.broken.non_ema_like_any {
        if !d.vaccine.mrna {
            return Err(refuse(
                "AVR-6d",
                "aic",
                "dopo un vaccino non autorizzato dall'EMA è ammessa solo una dose di vaccino a mRNA".into(),
                "after a vaccine EMA did not authorise only an mRNA vaccine may follow".into(),
            ));
        }
        if since_last < NON_EMA_BOOSTER_FROM_DAYS {
            return Err(refuse(
                "AVR-6d",
                "data_somministrazione",
                format!(
                    "sono passati {since_last} giorni dall'ultima dose di {}: il richiamo a mRNA si somministra dal \
                     giorno {NON_EMA_BOOSTER_FROM_DAYS}",
                    last.vaccine.farmaco
                ),
                format!(
                    "{since_last} days since the last {} dose: the mRNA booster is given from day \
                     {NON_EMA_BOOSTER_FROM_DAYS}",
                    last.vaccine.farmaco
                ),
            ));
        }
        if since_last <= NON_EMA_BOOSTER_UNTIL_DAYS {
            return Ok((n + 1, TipoDose::Booster));
        }
        avvisi.push(warn(
            "AVR-6d",
            format!(
                "oltre {NON_EMA_BOOSTER_UNTIL_DAYS} giorni dal ciclo con vaccino non EMA: dose 1 di un nuovo ciclo"
            ),
            format!("more than {NON_EMA_BOOSTER_UNTIL_DAYS} days after the non-EMA cycle: dose 1 of a new cycle"),
        ));
        return Ok((1, TipoDose::CicloPrimario));
    }

    let first = prior.iter().find(|k| k.vaccine.ema).unwrap_or(last);
    let needed = if d.infected_before { 1 } else { first.vaccine.primary_doses };
    if n < needed {
        if let Some(t @ (TipoDose::Addizionale | TipoDose::Booster)) = d.requested {
            return Err(refuse(
                "AVR-6a",
                "tipo_dose",
                format!("il ciclo primario non è completo ({n} di {needed} dosi note): non è una dose {}", t.as_str()),
                format!("the primary cycle is not complete ({n} of {needed} doses known): not a {} dose", t.as_str()),
            ));
        }
        interval_warnings(last, since_last, avvisi);
        return Ok((n + 1, TipoDose::CicloPrimario));
    }

    match d.requested {
        Some(TipoDose::CicloPrimario) => Err(refuse(
            "AVR-6a",
            "tipo_dose",
            format!("il ciclo primario è già completo ({n} dosi note): indicare addizionale o booster"),
            format!("the primary cycle is already complete ({n} doses known): say addizionale or booster"),
        )),
        Some(TipoDose::Addizionale) => {
            if (d.categoria == CategoriaRischio::SoggettoVulnerabile && !d.no_condition)
                || d.broken.additional_for_anyone
            {
                Ok((n + 1, TipoDose::Addizionale))
            } else {
                Err(refuse(
                    "AVR-6b",
                    if d.categoria == CategoriaRischio::SoggettoVulnerabile {
                        "condizione_sanitaria"
                    } else {
                        "categoria_rischio"
                    },
                    "la dose addizionale è ammessa solo per la categoria \"soggetto vulnerabile per patologia\" con \
                     una condizione sanitaria diversa da \"nessuna\""
                        .into(),
                    "an additional dose is allowed only for the category soggetto_vulnerabile with a health \
                     condition other than nessuna"
                        .into(),
                ))
            }
        }
        Some(TipoDose::Booster) | None => {
            let janssen_only = prior.len() == 1 && last.vaccine.code == "JANSSEN";
            if d.categoria.allows_booster()
                || (janssen_only && since_last >= JANSSEN_BOOSTER_DAYS)
                || d.broken.booster_for_anyone
            {
                Ok((n + 1, TipoDose::Booster))
            } else if janssen_only {
                Err(refuse(
                    "AVR-6c",
                    "data_somministrazione",
                    format!(
                        "sono passati {since_last} giorni dalla dose unica Janssen: il booster è ammesso per ogni \
                         categoria da {JANSSEN_BOOSTER_DAYS} giorni"
                    ),
                    format!(
                        "{since_last} days since the single Janssen dose: a booster is allowed to anyone from day \
                         {JANSSEN_BOOSTER_DAYS}"
                    ),
                ))
            } else {
                Err(refuse(
                    "AVR-6c",
                    "categoria_rischio",
                    "il booster è ammesso solo per operatori sanitari, età > 60 anni, ospiti di strutture \
                     residenziali e operatori non sanitari delle strutture"
                        .into(),
                    "a booster is allowed only for operatore_sanitario, eta_over_60, ospite_struttura and \
                     operatore_non_sanitario_struttura"
                        .into(),
                ))
            }
        }
    }
}

fn interval_warnings(last: &Known, since_last: i32, avvisi: &mut Vec<Avviso>) {
    let v = last.vaccine;
    if let Some(min) = v.min_interval_days
        && since_last < i32::from(min)
    {
        avvisi.push(warn(
            "AVR-6a",
            format!("intervallo di {since_last} giorni dalla dose di {}: il minimo è {min}", v.farmaco),
            format!("{since_last} days since the {} dose: the minimum is {min}", v.farmaco),
        ));
    }
    if let Some(max) = v.max_interval_days()
        && since_last > i32::from(max)
    {
        avvisi.push(warn(
            "AVR-6a",
            format!("intervallo di {since_last} giorni: per i vaccini a mRNA non oltre {max}"),
            format!("{since_last} days apart: mRNA doses no more than {max}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_domain::vaccines::find;
    use jiff::ToSpan;
    use jiff::civil::date;

    const START: Date = date(2021, 6, 1);

    fn on(day: i64) -> Date {
        START.checked_add(day.days()).expect("date")
    }

    fn known(day: i64, code: &str) -> Known {
        Known { date: on(day), vaccine: find(code).expect("vaccine") }
    }

    fn dose(day: i64, code: &str) -> NewDose {
        NewDose {
            date: on(day),
            vaccine: find(code).expect("vaccine"),
            categoria: CategoriaRischio::Altro,
            no_condition: true,
            requested: None,
            forced_number: None,
            forza: false,
            age: 40,
            infected_before: false,
            broken: Broken::default(),
        }
    }

    fn number(known: &[Known], d: &NewDose) -> (u8, TipoDose) {
        let a = assign(known, d).expect("accepted");
        (a.numero, a.tipo)
    }

    #[test]
    fn avr_6a_first_second_and_booster_doses_follow_the_doses_known() {
        let k = [known(0, "COMIRNATY"), known(21, "COMIRNATY")];
        assert_eq!(number(&[], &dose(0, "COMIRNATY")), (1, TipoDose::CicloPrimario));
        assert_eq!(number(&k[..1], &dose(21, "COMIRNATY")), (2, TipoDose::CicloPrimario));
        let booster = NewDose { categoria: CategoriaRischio::EtaOver60, ..dose(200, "SPIKEVAX") };
        assert_eq!(number(&k, &booster), (3, TipoDose::Booster));
        // Doses known after the day do not count.
        assert_eq!(number(&k, &dose(10, "COMIRNATY")).0, 2);
    }

    #[test]
    fn avr_6a_the_operator_can_force_the_number() {
        let forced = NewDose { forced_number: Some(2), ..dose(0, "COMIRNATY") };
        let a = assign(&[], &forced).expect("accepted");
        assert_eq!((a.numero, a.proposto), (2, 1));
        assert_eq!(a.avvisi[0].regola, "AVR-6a");
    }

    #[test]
    fn avr_6a_intervals_are_warnings() {
        let early = assign(&[known(0, "COMIRNATY")], &dose(15, "COMIRNATY")).expect("accepted");
        assert_eq!(early.numero, 2);
        assert!(early.avvisi.iter().any(|a| a.message.contains("minimum is 21")), "{:?}", early.avvisi);
        let late = assign(&[known(0, "SPIKEVAX")], &dose(50, "SPIKEVAX")).expect("accepted");
        assert!(late.avvisi.iter().any(|a| a.message.contains("no more than 42")), "{:?}", late.avvisi);
        let on_time = assign(&[known(0, "VAXZEVRIA")], &dose(80, "VAXZEVRIA")).expect("accepted");
        assert!(on_time.avvisi.is_empty(), "no mRNA limit for Vaxzevria");
    }

    #[test]
    fn avr_6b_additional_dose_only_for_the_vulnerable_with_a_condition() {
        let k = [known(0, "COMIRNATY"), known(21, "COMIRNATY")];
        let additional = |categoria, no_condition| NewDose {
            categoria,
            no_condition,
            requested: Some(TipoDose::Addizionale),
            ..dose(60, "COMIRNATY")
        };
        assert_eq!(number(&k, &additional(CategoriaRischio::SoggettoVulnerabile, false)), (3, TipoDose::Addizionale));
        let no_condition = assign(&k, &additional(CategoriaRischio::SoggettoVulnerabile, true)).unwrap_err();
        assert_eq!((no_condition.regola, no_condition.field), ("AVR-6b", "condizione_sanitaria"));
        let not_vulnerable = assign(&k, &additional(CategoriaRischio::OperatoreSanitario, false)).unwrap_err();
        assert_eq!((not_vulnerable.regola, not_vulnerable.field), ("AVR-6b", "categoria_rischio"));
    }

    #[test]
    fn avr_6c_booster_only_for_the_listed_categories() {
        let k = [known(0, "COMIRNATY"), known(21, "COMIRNATY")];
        let refused = assign(&k, &dose(200, "COMIRNATY")).unwrap_err();
        assert_eq!((refused.regola, refused.field), ("AVR-6c", "categoria_rischio"));
        assert!(refused.messaggio.contains("operatori sanitari") && refused.message.contains("eta_over_60"));
        for categoria in [
            CategoriaRischio::OperatoreSanitario,
            CategoriaRischio::EtaOver60,
            CategoriaRischio::OspiteStruttura,
            CategoriaRischio::OperatoreNonSanitarioStruttura,
        ] {
            assert_eq!(number(&k, &NewDose { categoria, ..dose(200, "COMIRNATY") }), (3, TipoDose::Booster));
        }
    }

    #[test]
    fn avr_6c_janssen_then_booster_at_179_and_180_days() {
        let k = [known(0, "JANSSEN")];
        let at_179 = assign(&k, &dose(179, "COMIRNATY")).unwrap_err();
        assert_eq!(at_179.regola, "AVR-6c");
        assert!(at_179.message.contains("179 days"), "{}", at_179.message);
        assert_eq!(number(&k, &dose(180, "COMIRNATY")), (2, TipoDose::Booster));
        // A listed category needs no wait.
        assert_eq!(number(&k, &NewDose { categoria: CategoriaRischio::EtaOver60, ..dose(179, "SPIKEVAX") }).0, 2);
    }

    #[test]
    fn avr_6d_sputnik_abroad_then_mrna_at_day_27_28_180_181() {
        let k = [known(0, "SPUTNIK-V"), known(21, "SPUTNIK-V")];
        let at = |day: i64| assign(&k, &dose(21 + day, "COMIRNATY"));
        let day_27 = at(27).unwrap_err();
        assert_eq!((day_27.regola, day_27.field), ("AVR-6d", "data_somministrazione"));
        assert_eq!(number(&k, &dose(21 + 28, "COMIRNATY")), (3, TipoDose::Booster));
        assert_eq!(number(&k, &dose(21 + 180, "COMIRNATY")), (3, TipoDose::Booster));
        let day_181 = at(181).expect("new cycle");
        assert_eq!((day_181.numero, day_181.tipo), (1, TipoDose::CicloPrimario));
        assert_eq!(day_181.avvisi[0].regola, "AVR-6d");
        // Only mRNA after a non-EMA cycle; a non-EMA vaccine is never given here.
        assert_eq!(assign(&k, &dose(21 + 60, "VAXZEVRIA")).unwrap_err().regola, "AVR-6d");
        assert_eq!(assign(&[], &dose(0, "SPUTNIK-V")).unwrap_err().regola, "AVR-6d");
    }

    #[test]
    fn avr_7_a_child_of_7_with_the_adult_formulation_is_flagged_then_forced() {
        let child = NewDose { age: 7, ..dose(0, "COMIRNATY") };
        let refused = assign(&[], &child).unwrap_err();
        assert_eq!((refused.regola, refused.field), ("AVR-7", "aic"));
        assert!(refused.messaggio.contains("forza") && refused.message.contains("COMIRNATY-10"));
        let forced = assign(&[], &NewDose { forza: true, ..child }).expect("forced");
        assert_eq!(forced.numero, 1);
        assert_eq!(forced.avvisi[0].regola, "AVR-7");
        // The paediatric formulation is right at 7, wrong at 13, right for a second dose at 12.
        assert!(assign(&[], &NewDose { age: 7, ..dose(0, "COMIRNATY-10") }).is_ok());
        assert_eq!(assign(&[], &NewDose { age: 13, ..dose(0, "COMIRNATY-10") }).unwrap_err().regola, "AVR-7");
        let second_at_12 = NewDose { age: 12, ..dose(21, "COMIRNATY-10") };
        assert_eq!(number(&[known(0, "COMIRNATY-10")], &second_at_12), (2, TipoDose::CicloPrimario));
    }

    #[test]
    fn avr_3_an_infection_before_the_first_dose_makes_one_dose_a_complete_cycle() {
        let k = [known(0, "COMIRNATY")];
        let after_infection =
            NewDose { infected_before: true, categoria: CategoriaRischio::EtaOver60, ..dose(150, "COMIRNATY") };
        assert_eq!(number(&k, &after_infection), (2, TipoDose::Booster));
        assert_eq!(number(&k, &dose(21, "COMIRNATY")), (2, TipoDose::CicloPrimario));
    }
}
