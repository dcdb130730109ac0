//! What a vaccinator's registration must hold: the fields, and the contact rules
//! (AVR-5a, AVR-5b) checked before any other.

use ecosim_core::config::{SarConfig, SarDefect};
use ecosim_core::problem::{Fields, Problem};
use ecosim_domain::vaccination::{
    CategoriaRischio, ContattiDgc, IdAssistito, NESSUNA_CONDIZIONE, TipoDose, TipoId, check_avr_mobile, check_time,
};
use ecosim_domain::vaccines::{self, Vaccine};
use ecosim_domain::validation::AllSome;
use jiff::civil::Date;

use super::rules::Refusal;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVaccinazione {
    pub(crate) codice_fiscale: Option<String>,
    pub(crate) id_assistito: Option<IdAssistito>,
    pub(crate) data_somministrazione: Option<String>,
    pub(crate) ora: Option<String>,
    pub(crate) aic: Option<String>,
    pub(crate) lotto: Option<String>,
    pub(crate) categoria_rischio: Option<CategoriaRischio>,
    pub(crate) condizione_sanitaria: Option<String>,
    pub(crate) via: Option<String>,
    pub(crate) sito: Option<String>,
    pub(crate) struttura: Option<String>,
    /// Absent: the green-pass contacts the AVR holds for the person (AVR-5c);
    /// `{}`: none.
    pub(crate) contatti_dgc: Option<ContattiDgc>,
    pub(crate) conferma_contatti: Option<bool>,
    pub(crate) tipo_dose: Option<TipoDose>,
    pub(crate) numero_dose_forzato: Option<u8>,
    #[serde(default)]
    pub(crate) forza: bool,
    pub(crate) estero: Option<Estero>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Estero {
    pub(crate) paese: String,
}

/// A 422 for a broken rule, in Italian and English, naming the field.
pub(crate) fn refusal(r: Refusal) -> Problem {
    Problem::unprocessable(r.message.clone())
        .with_field(r.field, r.message)
        .with_requirement(r.regola)
        .with_extension("regola", r.regola)
        .with_extension("messaggio", r.messaggio)
}

/// The validated request.
pub(crate) struct Request {
    pub(crate) tipo: TipoId,
    pub(crate) valore: String,
    pub(crate) id_field: &'static str,
    pub(crate) date: Date,
    pub(crate) ora: String,
    pub(crate) vaccine: &'static Vaccine,
    pub(crate) lotto: String,
    pub(crate) categoria: CategoriaRischio,
    pub(crate) condizione: String,
    pub(crate) via: String,
    pub(crate) sito: String,
    pub(crate) struttura: String,
    pub(crate) estero: Option<String>,
}

/// Checks a registration: every malformed field at once (400), then AVR-5b and
/// AVR-5a (422 naming the rule).
pub(crate) fn validate(raw: &RawVaccinazione, today: Date, defects: &SarConfig) -> Result<Request, Problem> {
    let mut f = Fields::new();
    let who = match (&raw.codice_fiscale, &raw.id_assistito) {
        (Some(cf), None) => {
            f.check("codice_fiscale", ecosim_domain::codes::CodiceFiscale::parse(cf));
            Some((TipoId::Cf, cf.clone(), "codice_fiscale"))
        }
        (None, Some(id)) => {
            ecosim_domain::vaccination::check_id(id, "id_assistito", &mut f);
            Some((id.tipo, id.valore.clone(), "id_assistito.valore"))
        }
        _ => {
            f.error("codice_fiscale", "give exactly one of codice_fiscale and id_assistito");
            None
        }
    };
    let date = f.date("data_somministrazione", &raw.data_somministrazione);
    if date.is_some_and(|d| d > today) {
        f.error("data_somministrazione", "is in the future: register a dose when it is given");
    }
    let estero = raw.estero.as_ref().map(|e| e.paese.clone());
    if let Some(p) = &estero
        && !(p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()) && p != "IT")
    {
        f.error("estero.paese", "must be an ISO 3166 alpha-2 country code other than IT");
    }
    let in_italy = estero.is_none();
    let ora = match &raw.ora {
        Some(t) => f.check("ora", check_time(t)).map(|()| t.clone()),
        None if in_italy => {
            f.error("ora", "is required");
            None
        }
        None => Some("00:00".into()),
    };
    let vaccine = f.required("aic", &raw.aic).and_then(|a| {
        let v = vaccines::find(a);
        if v.is_none() {
            f.error("aic", format!("unknown vaccine {a:?}; known: {}", vaccines::known_codes()));
        }
        v
    });
    let lotto = f.text("lotto", raw.lotto.as_deref(), in_italy, 32);
    let categoria = match raw.categoria_rischio {
        Some(c) => Some(c),
        None if in_italy => {
            f.error("categoria_rischio", "is required");
            None
        }
        None => Some(CategoriaRischio::Altro),
    };
    let condizione = f.text("condizione_sanitaria", raw.condizione_sanitaria.as_deref(), in_italy, 64);
    let via = f.text("via", raw.via.as_deref(), in_italy, 16);
    let sito = f.text("sito", raw.sito.as_deref(), in_italy, 32);
    let struttura = f.text("struttura", raw.struttura.as_deref(), in_italy, 64);
    let given = raw.contatti_dgc.clone().unwrap_or_default();
    if let Some(e) = &given.email {
        f.check("contatti_dgc.email", ecosim_domain::codes::Email::parse(e));
    }
    if raw.numero_dose_forzato.is_some_and(|n| !(1..=9).contains(&n)) {
        f.error("numero_dose_forzato", "must be between 1 and 9");
    }
    let ((tipo, valore, id_field), date, ora, vaccine, categoria) =
        f.into_result((who, date, ora, vaccine, categoria).all_some())?;
    // AVR-5b before AVR-5a: a malformed number cannot be confirmed.
    if let Some(m) = &given.cellulare
        && let Err(why) = check_avr_mobile(m)
        && !defects.has(SarDefect::Avr5b)
    {
        return Err(refusal(Refusal {
            regola: "AVR-5b",
            field: "contatti_dgc.cellulare",
            messaggio: "il numero di cellulare ammette solo cifre, con un eventuale '+' iniziale: togliere spazi e \
                        separatori"
                .into(),
            message: why,
        }));
    }
    if in_italy && raw.conferma_contatti != Some(true) && !defects.has(SarDefect::Avr5a) {
        return Err(refusal(Refusal {
            regola: "AVR-5a",
            field: "conferma_contatti",
            messaggio: "è necessario confermare i dati di contatto per la certificazione verde, o la loro assenza \
                        (conferma_contatti: true)"
                .into(),
            message: "confirm the green-pass contacts, or that there are none (conferma_contatti: true)".into(),
        }));
    }
    Ok(Request {
        tipo,
        valore,
        id_field,
        date,
        ora,
        vaccine,
        lotto: lotto.unwrap_or_else(|| "ESTERO".into()),
        categoria,
        condizione: condizione.unwrap_or_else(|| NESSUNA_CONDIZIONE.into()),
        via: via.unwrap_or_else(|| "IM".into()),
        sito: sito.unwrap_or_else(|| "ND".into()),
        struttura: struttura.unwrap_or_else(|| "ESTERO".into()),
        estero,
    })
}
