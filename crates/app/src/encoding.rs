//! Small encodings used across the layers, in one place: hex and SHA-256 digests (event
//! hashes, token and request fingerprints, received mail), and making text safe for a mail
//! header or for HTML.

use sha2::{Digest, Sha256};

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// SHA-256 of a text, hex: for API tokens and request fingerprints.
pub fn sha256_hex(text: &[u8]) -> String {
    hex(&Sha256::digest(text))
}

/// Text safe inside a header: no line breaks or other control characters (they would let
/// a name or description add headers), at most `max` characters.
pub fn header_safe(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

/// Text safe inside HTML (emails and the link pages).
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A strong HTTP `ETag` for `bytes`: the first 128 bits of their SHA-256, quoted.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &sha256_hex(bytes)[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn escaped_html_cannot_open_a_tag_or_leave_an_attribute() {
        assert_eq!(
            escape_html(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
