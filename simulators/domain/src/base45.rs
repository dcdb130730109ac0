//! Base45 (RFC 9285), the text encoding of EU DCC QR payloads (`HC1:` + Base45).
//!
//! ```
//! use ecosim_domain::base45;
//! assert_eq!(base45::encode(b"ietf!"), "QED8WEX0");
//! assert_eq!(base45::decode("QED8WEX0").unwrap(), b"ietf!");
//! ```

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Encodes bytes as Base45.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(2) * 3);
    for chunk in data.chunks(2) {
        let (mut n, digits) = match chunk {
            [a, b] => (u32::from(*a) * 256 + u32::from(*b), 3),
            [a] => (u32::from(*a), 2),
            _ => unreachable!("chunks of 1 or 2"),
        };
        for _ in 0..digits {
            out.push(char::from(ALPHABET[(n % 45) as usize]));
            n /= 45;
        }
    }
    out
}

/// Why a string is not Base45.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base45Error {
    /// A character outside the alphabet.
    #[error("character {0:?} at {1} is not Base45")]
    Character(char, usize),
    /// A length that leaves one lone character.
    #[error("a Base45 string cannot have a length of 3n+1 ({0})")]
    Length(usize),
    /// A group that decodes beyond its byte range.
    #[error("group at {0} decodes out of range")]
    Overflow(usize),
}

/// Decodes Base45.
pub fn decode(text: &str) -> Result<Vec<u8>, Base45Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 3 == 1 {
        return Err(Base45Error::Length(bytes.len()));
    }
    let value = |i: usize| -> Result<u32, Base45Error> {
        let c = bytes[i];
        ALPHABET.iter().position(|&a| a == c).map(|p| p as u32).ok_or(Base45Error::Character(char::from(c), i))
    };
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 3 {
            let n = value(i)? + value(i + 1)? * 45 + value(i + 2)? * 45 * 45;
            if n > 0xffff {
                return Err(Base45Error::Overflow(i));
            }
            out.extend_from_slice(&[(n >> 8) as u8, (n & 0xff) as u8]);
            i += 3;
        } else {
            let n = value(i)? + value(i + 1)? * 45;
            if n > 0xff {
                return Err(Base45Error::Overflow(i));
            }
            out.push(n as u8);
            i += 2;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_9285_vectors() {
        for (plain, encoded) in
            [("AB", "BB8"), ("Hello!!", "%69 VD92EX0"), ("base-45", "UJCLQE7W581"), ("ietf!", "QED8WEX0")]
        {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(decode("GGW"), Err(Base45Error::Overflow(0)));
        assert_eq!(decode("A"), Err(Base45Error::Length(1)));
        assert!(matches!(decode("ab"), Err(Base45Error::Character('a', 0))));
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = encode(&data);
            prop_assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
            prop_assert_eq!(decode(&text).unwrap(), data);
        }
    }
}
