//! The texts citizens receive, as the real systems wrote them (DOMAIN.md).

use jiff::civil::Date;

use crate::codes::Cun;

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

#[cfg(test)]
mod tests {
    use super::*;

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
