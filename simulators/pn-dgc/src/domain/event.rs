//! The events Sistema TS sends PN-DGC (`POST /pn-dgc/v1/eventi`) and when each
//! yields a certificate (DGC-TIMING, DOMAIN.md flow 4).

use ecosim_domain::vaccines::{self, Vaccine};
use ecosim_domain::validation::{Fields, Invalid};
use jiff::civil::Date;

pub use ecosim_domain::green_pass::{Assistito, Contatti, Evento, Guarigione, Test, Vaccinazione};
use jiff::{Timestamp, ToSpan};

/// What an event comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A certificate at this time.
    Issue(Timestamp),
    /// No certificate, and why.
    Discard(String),
}

/// PN-DGC's rules for an event: what it must hold, and when it yields a certificate.
pub trait Rules {
    /// The field rules (400 naming each).
    fn check(&self) -> Result<(), Invalid>;
    /// When the event yields a certificate (DGC-TIMING), given when it arrived.
    fn plan(&self, received: Timestamp, midnight: impl Fn(Date) -> Timestamp, today: Date) -> Plan;
}

impl Rules for Evento {
    /// The field rules (400 naming each).
    fn check(&self) -> Result<(), Invalid> {
        let mut f = Fields::new();
        if self.id.trim().is_empty() || self.id.len() > 128 {
            f.error("id", "must be 1 to 128 characters");
        }
        let n = [self.vaccinazione.is_some(), self.test.is_some(), self.guarigione.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if n != 1 {
            f.error("vaccinazione", "exactly one of vaccinazione, test and guarigione");
        }
        if !["CF", "TS"].contains(&self.assistito.tipo.as_str()) {
            f.error("assistito.tipo", "must be CF or TS");
        }
        if let Some(l) = &self.assistito.ultime_8_cifre_ts
            && !(l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        {
            f.error("assistito.ultime_8_cifre_ts", "must be 8 digits");
        }
        if let Some(v) = &self.vaccinazione {
            if vaccines::find(&v.aic).is_none() {
                f.error("vaccinazione.aic", format!("unknown vaccine; known: {}", vaccines::known_codes()));
            }
            if !(1..=9).contains(&v.dose) {
                f.error("vaccinazione.dose", "must be between 1 and 9");
            }
            if !(v.paese.len() == 2 && v.paese.bytes().all(|b| b.is_ascii_uppercase())) {
                f.error("vaccinazione.paese", "must be an ISO 3166 alpha-2 code");
            }
        }
        if let Some(t) = &self.test {
            if ecosim_domain::codes::Cun::parse(&t.cun).is_err() {
                f.error("test.cun", "must be a valid CUN");
            }
            if !["MOLECOLARE", "ANTIGENICO"].contains(&t.tipo_test.as_str()) {
                f.error("test.tipo_test", "must be MOLECOLARE or ANTIGENICO");
            }
            if !["POSITIVO", "NEGATIVO"].contains(&t.esito.as_str()) {
                f.error("test.esito", "must be POSITIVO or NEGATIVO");
            }
        }
        if let Some(g) = &self.guarigione {
            if ecosim_domain::codes::Nucg::parse(&g.nucg).is_err() {
                f.error("guarigione.nucg", "must be a valid NUCG");
            }
            if g.data_guarigione < g.data_primo_positivo {
                f.error("guarigione.data_guarigione", "must not be before the first positive test");
            }
        }
        f.finish()
    }

    /// When the certificate is issued (DGC-TIMING), given the time the event arrived
    /// and the shared clock's midnight function.
    fn plan(&self, received: Timestamp, midnight: impl Fn(Date) -> Timestamp, today: Date) -> Plan {
        let next_day = midnight(today.tomorrow().unwrap_or(today));
        if let Some(v) = &self.vaccinazione {
            let Some(vaccine) = vaccines::find(&v.aic) else { return Plan::Discard("unknown vaccine".into()) };
            if !vaccine.ema {
                return Plan::Discard(format!(
                    "{} is not authorised by EMA: a certificate follows an mRNA booster (GIAVA 6.3)",
                    vaccine.farmaco
                ));
            }
            let (dn, sd) = doses(vaccine, v.dose);
            let at = if dn < sd {
                // First dose of a two-dose cycle: from day 12.
                midnight(v.data.checked_add(12.days()).unwrap_or(v.data))
            } else if vaccine.primary_doses == 1 && dn == 1 {
                // A single Janssen dose: from day 15.
                midnight(v.data.checked_add(15.days()).unwrap_or(v.data))
            } else {
                // Completed cycle or booster: the day after the dose (not after its
                // arrival: a dose forwarded at midnight is certified then).
                midnight(v.data.tomorrow().unwrap_or(v.data))
            };
            return Plan::Issue(at.max(received));
        }
        if let Some(t) = &self.test {
            return if t.esito == "NEGATIVO" {
                Plan::Issue(received)
            } else {
                Plan::Discard("a positive test yields no certificate (a recovery one follows)".into())
            };
        }
        Plan::Issue(next_day.max(received))
    }
}

/// The DCC `dn/sd` of dose `dose` of `vaccine`: a dose within the primary cycle is
/// `n/cycle`; a completed cycle or booster `n/n` (Italy's practice: a booster after two
/// doses is 3/3, after Janssen 2/2).
pub fn doses(vaccine: &Vaccine, dose: u8) -> (u8, u8) {
    (dose, dose.max(vaccine.primary_doses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn event(aic: &str, dose: u8, day: Date) -> Evento {
        Evento {
            id: "e".into(),
            assistito: Assistito {
                id: "RSSMRA45D25F205N".into(),
                tipo: "CF".into(),
                cognome: "ROSSI".into(),
                nome: "MARIO".into(),
                data_nascita: date(1945, 4, 25),
                ultime_8_cifre_ts: None,
                scadenza_ts: None,
            },
            contatti: Contatti::default(),
            vaccinazione: Some(Vaccinazione {
                data: day,
                aic: aic.into(),
                dose,
                tipo_dose: "ciclo_primario".into(),
                paese: "IT".into(),
            }),
            test: None,
            guarigione: None,
        }
    }

    fn midnight(d: Date) -> Timestamp {
        d.to_zoned_datetime(jiff::tz::TimeZone::UTC).unwrap().timestamp()
    }

    #[test]
    fn dgc_timing_first_dose_day_12_janssen_day_15_second_dose_next_day() {
        let day0 = date(2021, 10, 1);
        let received = midnight(day0);
        let plan = |aic, dose| event(aic, dose, day0).plan(received, midnight, day0);
        assert_eq!(plan("049269018", 1), Plan::Issue(midnight(date(2021, 10, 13))));
        assert_eq!(plan("JANSSEN", 1), Plan::Issue(midnight(date(2021, 10, 16))));
        assert_eq!(plan("049269018", 2), Plan::Issue(midnight(date(2021, 10, 2))));
        assert!(matches!(plan("SPUTNIK-V", 1), Plan::Discard(_)));
    }

    #[test]
    fn dn_sd_follow_italian_practice() {
        let c = vaccines::find("COMIRNATY").unwrap();
        let j = vaccines::find("JANSSEN").unwrap();
        assert_eq!(doses(c, 1), (1, 2));
        assert_eq!(doses(c, 2), (2, 2));
        assert_eq!(doses(c, 3), (3, 3));
        assert_eq!(doses(j, 1), (1, 1));
        assert_eq!(doses(j, 2), (2, 2));
    }
}
