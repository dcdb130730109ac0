//! The texts citizens receive, as the real systems wrote them (DOMAIN.md).

use jiff::civil::Date;

use crate::codes::{Authcode, Cun};

/// Sender alias of the CUN SMS.
pub const CUN_SMS_SENDER: &str = "sistema Ts";

/// The CUN SMS, word for word as citizens received it (154 characters, one GSM-7
/// segment): `Il codice del tuo test Covid-19 del 19/01/21 è CUN-6HQ5EW73HE. ...`.
pub fn cun_sms(test_date: Date, cun: &Cun) -> String {
    format!(
        "Il codice del tuo test Covid-19 del {} è {cun}. In caso di esito positivo, \
         se ha installato l'app Immuni può contattare il numero 800912491",
        test_date.strftime("%d/%m/%y")
    )
}

/// Subject and body of the CUN e-mail.
pub fn cun_email(test_date: Date, cun: &Cun) -> (String, String) {
    (format!("Codice CUN del tuo test Covid-19 del {}", test_date.strftime("%d/%m/%y")), cun_sms(test_date, cun))
}

/// Sender alias of the AUTHCODE SMS.
pub const DGC_SMS_SENDER: &str = "Min Salute";

/// The name as the AUTHCODE SMS masks it: the initials, `M. R.`.
pub fn masked_name(name: &str, surname: &str) -> String {
    let initial =
        |s: &str| s.chars().find(|c| c.is_alphabetic()).map(|c| c.to_uppercase().to_string()).unwrap_or_default();
    format!("{}. {}.", initial(name), initial(surname))
}

/// The AUTHCODE SMS as PN-DGC sent it (DOMAIN.md; 157 characters with a masked
/// name of five, `M. R.`; one GSM-7 segment).
pub fn dgc_sms(masked_name: &str, authcode: &Authcode) -> String {
    format!(
        "Certificazione verde Covid-19 di {masked_name} disponibile. Usa AUTHCODE {authcode} e Tessera sanitaria \
         su www.dgc.gov.it o App Immuni o attendi notifica su App IO"
    )
}

/// Subject and body of the AUTHCODE e-mail.
pub fn dgc_email(masked_name: &str, authcode: &Authcode) -> (String, String) {
    ("Certificazione verde Covid-19 disponibile".to_owned(), dgc_sms(masked_name, authcode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authcode_sms_is_one_segment_of_157_characters() {
        let code = Authcode::parse("WK2DEHZD9PC1").expect("valid");
        let text = dgc_sms(&masked_name("Mario", "Rossi"), &code);
        assert_eq!(
            text,
            "Certificazione verde Covid-19 di M. R. disponibile. Usa AUTHCODE WK2DEHZD9PC1 e Tessera sanitaria \
             su www.dgc.gov.it o App Immuni o attendi notifica su App IO"
        );
        assert_eq!(text.chars().count(), 157);
    }

    #[test]
    fn the_cun_sms_is_the_real_one() {
        let cun = Cun::parse("6HQ5EW73HE").expect("valid");
        assert_eq!(
            cun_sms(jiff::civil::date(2021, 1, 19), &cun),
            "Il codice del tuo test Covid-19 del 19/01/21 è CUN-6HQ5EW73HE. In caso di esito positivo, \
             se ha installato l'app Immuni può contattare il numero 800912491"
        );
    }
}
