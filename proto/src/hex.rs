//! Bytes written as hex text, as the tools take a frame or an OID's value
//! (`rawnicctl send`, `rawnicctl oid set --hex`, ndisim's `inject HEX`).
//! Feature `alloc`: the driver never parses text, so it does not need it.

use alloc::vec::Vec;
use core::fmt;

/// Why text is not hex bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator.
    NotHexDigit(char),
    /// This many hex digits, an odd number: the last byte lacks one.
    OddDigits(usize),
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::NotHexDigit(c) => write!(f, "{c:?} is not a hex digit"),
            HexError::OddDigits(n) => write!(f, "{n} hex digits is an odd number: every byte takes two"),
        }
    }
}

impl core::error::Error for HexError {}

/// Parses hex bytes; whitespace, `:`, `-` and `.` between bytes are
/// ignored, and a leading `0x` is allowed.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let t = text.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let mut digits = Vec::with_capacity(t.len());
    for c in t.chars().filter(|c| !c.is_ascii_whitespace() && !":-.".contains(*c)) {
        digits.push(c.to_digit(16).ok_or(HexError::NotHexDigit(c))? as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(HexError::OddDigits(digits.len()));
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    #[test]
    fn hex_parses_with_separators() {
        assert_eq!(parse_hex("ff ff:ff-ff.00\n01").unwrap(), vec![0xff, 0xff, 0xff, 0xff, 0, 1]);
        assert_eq!(parse_hex("0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse_hex("  0X0a1B  ").unwrap(), vec![0x0a, 0x1b]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn hex_errors_say_what_is_wrong() {
        assert_eq!(parse_hex("abc"), Err(HexError::OddDigits(3)));
        assert_eq!(parse_hex("abc").unwrap_err().to_string(), "3 hex digits is an odd number: every byte takes two");
        assert_eq!(parse_hex("zz"), Err(HexError::NotHexDigit('z')));
        assert_eq!(parse_hex("zz").unwrap_err().to_string(), "'z' is not a hex digit");
        // A bad digit is reported before the count: the first one found.
        assert_eq!(parse_hex("0g1"), Err(HexError::NotHexDigit('g')));
        assert_eq!(parse_hex("aé"), Err(HexError::NotHexDigit('é')));
    }
}
