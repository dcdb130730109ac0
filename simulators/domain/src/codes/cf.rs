//! The codice fiscale: layout, check letter and omocodia (CODES.md).

use jiff::civil::Date;

use super::CodeError;
use super::alphabet::check_sum;

const KIND: &str = "codice fiscale";
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Letters that stand for the digits 0-9 in an omocode.
const OMOCODE: &[u8; 10] = b"LMNPQRSTUV";
/// 0-based positions that omocodia may substitute, in the order they are substituted.
const OMOCODE_POSITIONS: [usize; 7] = [14, 13, 12, 10, 9, 7, 6];

/// Sex as the codice fiscale and the registry record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Sex {
    /// Male.
    M,
    /// Female (day of birth + 40 in the code).
    F,
}

/// What a codice fiscale is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PersonData<'a> {
    /// Surname (cognome), as written.
    pub surname: &'a str,
    /// Given name (nome), as written.
    pub name: &'a str,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: Date,
    /// Belfiore code of the birthplace (`F205`, `Z112`...).
    pub birthplace: &'a str,
}

/// A valid codice fiscale, base or omocode form, upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodiceFiscale([u8; 16]);

fn is_vowel(b: u8) -> bool {
    matches!(b, b'A' | b'E' | b'I' | b'O' | b'U')
}

/// Upper-case ASCII letters of a name, accents folded, everything else dropped.
fn letters(text: &str) -> Vec<u8> {
    text.chars()
        .filter_map(|c| {
            let c = match c {
                'à' | 'á' | 'À' | 'Á' | 'â' | 'ä' => 'A',
                'è' | 'é' | 'È' | 'É' | 'ê' | 'ë' => 'E',
                'ì' | 'í' | 'Ì' | 'Í' | 'î' | 'ï' => 'I',
                'ò' | 'ó' | 'Ò' | 'Ó' | 'ô' | 'ö' => 'O',
                'ù' | 'ú' | 'Ù' | 'Ú' | 'û' | 'ü' => 'U',
                c => c,
            };
            c.is_ascii_alphabetic().then(|| c.to_ascii_uppercase() as u8)
        })
        .collect()
}

/// The three surname letters: consonants in order, then vowels, then `X`.
pub(crate) fn surname_code(surname: &str) -> [u8; 3] {
    let l = letters(surname);
    let consonants = l.iter().copied().filter(|b| !is_vowel(*b));
    let vowels = l.iter().copied().filter(|b| is_vowel(*b));
    let mut out = [b'X'; 3];
    for (slot, b) in out.iter_mut().zip(consonants.chain(vowels)) {
        *slot = b;
    }
    out
}

/// The three name letters: as the surname, but with 4+ consonants the 1st, 3rd and 4th.
pub(crate) fn name_code(name: &str) -> [u8; 3] {
    let l = letters(name);
    let consonants: Vec<u8> = l.iter().copied().filter(|b| !is_vowel(*b)).collect();
    if consonants.len() >= 4 { [consonants[0], consonants[2], consonants[3]] } else { surname_code(name) }
}

fn check_letter(first15: &[u8]) -> u8 {
    b'A' + (check_sum(first15) % 26) as u8
}

fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        _ => OMOCODE.iter().position(|&o| o == b).map(|p| p as u8),
    }
}

impl CodiceFiscale {
    /// Parses a codice fiscale, base or omocode form (case-insensitive).
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim().to_ascii_uppercase();
        super::expect_len(KIND, &s, 16, "16")?;
        let b = s.as_bytes();
        for (i, c) in s.chars().enumerate() {
            let (ok, expected) = match i {
                0..=5 => (c.is_ascii_uppercase(), "a letter (surname and name)"),
                6 | 7 => (c.is_ascii() && digit_value(c as u8).is_some(), "a digit or one of LMNPQRSTUV (year)"),
                8 => (c.is_ascii() && MONTHS.contains(&(c as u8)), "a month letter, one of ABCDEHLMPRST"),
                9 | 10 => (c.is_ascii() && digit_value(c as u8).is_some(), "a digit or one of LMNPQRSTUV (day)"),
                11 => (c.is_ascii_uppercase(), "a letter (Belfiore code)"),
                12..=14 => {
                    (c.is_ascii() && digit_value(c as u8).is_some(), "a digit or one of LMNPQRSTUV (Belfiore code)")
                }
                _ => (c.is_ascii_uppercase(), "a letter (check character)"),
            };
            if !ok {
                return Err(CodeError::Character { kind: KIND, position: i + 1, found: c, expected });
            }
        }
        let mut code = [0u8; 16];
        code.copy_from_slice(b);
        let expected = check_letter(&code[..15]);
        if expected != code[15] {
            return Err(CodeError::Check { kind: KIND, expected: char::from(expected), found: char::from(code[15]) });
        }
        let cf = Self(code);
        let base = cf.base_form();
        let day = base.day_field();
        if !(1..=31).contains(&day) && !(41..=71).contains(&day) {
            return Err(CodeError::Invalid {
                kind: KIND,
                message: format!("day field {day:02} is not 01-31 or 41-71"),
            });
        }
        if &base.0[12..15] == b"000" {
            return Err(CodeError::Invalid { kind: KIND, message: "Belfiore code digits cannot be 000".into() });
        }
        // No month has more days than this (29 February: the century is not in the code).
        let month = MONTHS.iter().position(|&m| m == base.0[8]).unwrap_or(0);
        let longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month];
        if day % 40 > longest {
            return Err(CodeError::Invalid {
                kind: KIND,
                message: format!("day {} does not exist in month {} (at most {longest} days)", day % 40, month + 1),
            });
        }
        // The base form already decodes the place: no second decoding, no allocation
        // (parsing is on every request's path).
        let place = std::str::from_utf8(&base.0[11..15]).unwrap_or("");
        if !super::belfiore::known(place) {
            return Err(CodeError::Invalid {
                kind: KIND,
                message: format!("Belfiore code {place} is neither a comune nor a foreign state"),
            });
        }
        Ok(cf)
    }

    /// The base-form code of a person (no omocodia).
    pub fn from_person(p: &PersonData<'_>) -> Result<Self, CodeError> {
        let place = p.birthplace.as_bytes();
        if place.len() != 4
            || !place[0].is_ascii_uppercase()
            || !place[1..].iter().all(u8::is_ascii_digit)
            || &place[1..] == b"000"
        {
            return Err(CodeError::Invalid {
                kind: KIND,
                message: format!("birthplace {:?} is not a Belfiore code (a letter and 3 digits)", p.birthplace),
            });
        }
        Ok(Self::from_person_unchecked(p))
    }

    /// As [`Self::from_person`], for birthplaces known to be well formed (the static table).
    pub(crate) fn from_person_unchecked(p: &PersonData<'_>) -> Self {
        let place = p.birthplace.as_bytes();
        let mut c = [0u8; 16];
        c[..3].copy_from_slice(&surname_code(p.surname));
        c[3..6].copy_from_slice(&name_code(p.name));
        let year = (p.birth_date.year().rem_euclid(100)) as u8;
        c[6] = b'0' + year / 10;
        c[7] = b'0' + year % 10;
        c[8] = MONTHS[(p.birth_date.month() - 1) as usize];
        let day = p.birth_date.day() as u8 + if p.sex == Sex::F { 40 } else { 0 };
        c[9] = b'0' + day / 10;
        c[10] = b'0' + day % 10;
        c[11..15].copy_from_slice(&place[..4]);
        c[15] = check_letter(&c[..15]);
        Self(c)
    }

    /// The omocode variant of level `level` (1..=7) of this code's base form: the last
    /// `level` substitutable digits, right to left, replaced by letters.
    pub fn omocode_variant(&self, level: usize) -> Option<Self> {
        if level == 0 || level > OMOCODE_POSITIONS.len() {
            return None;
        }
        let mut c = self.base_form().0;
        for &pos in &OMOCODE_POSITIONS[..level] {
            c[pos] = OMOCODE[usize::from(c[pos] - b'0')];
        }
        c[15] = check_letter(&c[..15]);
        Some(Self(c))
    }

    /// The base form: omocode letters decoded to digits, check letter recomputed.
    pub fn base_form(&self) -> Self {
        let mut c = self.0;
        for &pos in &OMOCODE_POSITIONS {
            if let Some(v) = digit_value(c[pos]) {
                c[pos] = b'0' + v;
            }
        }
        c[15] = check_letter(&c[..15]);
        Self(c)
    }

    /// Whether any digit is written as an omocode letter.
    pub fn is_omocode(&self) -> bool {
        OMOCODE_POSITIONS.iter().any(|&p| !self.0[p].is_ascii_digit())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters and digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    fn numeric(&self, pos: usize) -> u8 {
        digit_value(self.0[pos]).unwrap_or(0)
    }

    fn day_field(&self) -> u8 {
        self.numeric(9) * 10 + self.numeric(10)
    }

    /// The sex the code states.
    pub fn sex(&self) -> Sex {
        if self.day_field() > 40 { Sex::F } else { Sex::M }
    }

    /// The Belfiore code of the birthplace, decoded (`F205`).
    pub fn birthplace(&self) -> String {
        let b = self.base_form();
        String::from_utf8_lossy(&b.0[11..15]).into_owned()
    }

    /// The birth date, reading the two-digit year as the latest year not after `today`.
    /// `None` if the day does not exist in that month (e.g. 31 April).
    pub fn birth_date(&self, today: Date) -> Option<Date> {
        let yy = i16::from(self.numeric(6) * 10 + self.numeric(7));
        let month = MONTHS.iter().position(|&m| m == self.0[8])? as i8 + 1;
        let day = (self.day_field() % 40) as i8;
        let century = today.year() - today.year().rem_euclid(100);
        let mut year = century + yy;
        if year > today.year() {
            year -= 100;
        }
        Date::new(year, month, day).ok()
    }
}

impl std::fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodiceFiscale({})", self.as_str())
    }
}

impl std::str::FromStr for CodiceFiscale {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for CodiceFiscale {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CodiceFiscale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_dates_and_unknown_birthplaces_are_refused() {
        let with_check = |first15: &str| {
            let mut c = first15.as_bytes().to_vec();
            c.push(check_letter(first15.as_bytes()));
            String::from_utf8(c).expect("ascii")
        };
        for (first15, why) in [
            ("RSSMRA80B30F205", "day 30 does not exist in month 2"),
            ("RSSMRA80B71F205", "day 31 does not exist in month 2"),
            ("RSSMRA80D31F205", "day 31 does not exist in month 4"),
            ("RSSMRA80A01Z999", "Z999 is neither"),
            ("RSSMRA80A01K899", "K899 is neither"),
        ] {
            let err = CodiceFiscale::parse(&with_check(first15)).expect_err(first15).to_string();
            assert!(err.contains(why), "{first15}: {err}");
        }
        // 29 February is possible (the century is not in the code); so is an omocode place.
        assert!(CodiceFiscale::parse(&with_check("RSSMRA80B29F205")).is_ok());
        assert!(CodiceFiscale::parse(&with_check("RSSMRA80A01F20R")).is_ok());
    }

    #[test]
    fn surname_and_name_letters_follow_the_rules() {
        assert_eq!(&surname_code("Rossi"), b"RSS");
        assert_eq!(&surname_code("Fo"), b"FOX");
        assert_eq!(&surname_code("D'Angelo"), b"DNG");
        assert_eq!(&name_code("Mario"), b"MRA");
        // Four or more consonants: 1st, 3rd, 4th.
        assert_eq!(&name_code("Gianfranco"), b"GFR");
        assert_eq!(&name_code("Niccolò"), b"NCL");
    }
}
