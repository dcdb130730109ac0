//! What a message to send may be.

use ecosim_domain::codes::Msisdn;

use super::encoding::{Encoding, segments};

/// The longest message accepted, in segments.
pub(crate) const MAX_SEGMENTS: usize = 10;

/// An alphanumeric sender alias (up to 11 GSM characters) or a phone number.
pub(crate) fn check_sender(from: &str) -> Result<(), String> {
    if Msisdn::parse(from).is_ok() {
        return Ok(());
    }
    let n = from.chars().count();
    if n == 0 || n > 11 {
        return Err(format!("an alias has 1 to 11 characters, this has {n}"));
    }
    if !from.chars().all(|c| c.is_ascii_alphanumeric() || " .-_&".contains(c)) {
        return Err("an alias uses letters, digits, spaces and . - _ &".into());
    }
    Ok(())
}

/// A delivery-report URL: http(s), no spaces.
pub(crate) fn check_callback(url: &str) -> Result<(), &'static str> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8 && !url.contains(' ');
    if ok { Ok(()) } else { Err("must be an http(s) URL") }
}

/// A text's encoding and segments, if it can be sent (not empty, at most
/// [`MAX_SEGMENTS`]).
pub(crate) fn check_text(text: &str) -> Result<(Encoding, usize), String> {
    if text.is_empty() {
        return Err("is empty".into());
    }
    let (encoding, n) = segments(text);
    if n > MAX_SEGMENTS {
        return Err(format!("needs {n} segments ({}); at most {MAX_SEGMENTS} are sent", encoding.as_str()));
    }
    Ok((encoding, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_numbers_and_texts() {
        assert!(check_sender("sistema Ts").is_ok());
        assert!(check_sender("+393331234567").is_ok());
        assert!(check_sender("twelve chars").is_err());
        assert!(check_sender("Min*Salute").is_err());
        assert!(check_callback("http://x.test/cb").is_ok());
        assert!(check_callback("ftp://x.test").is_err());
        assert_eq!(check_text("ciao").map(|(_, n)| n), Ok(1));
        assert!(check_text("").is_err());
        assert!(check_text(&"a".repeat(153 * 10 + 1)).unwrap_err().contains("11 segments"));
    }
}
