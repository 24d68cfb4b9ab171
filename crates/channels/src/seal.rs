//! Signed tokens in links (unsubscribe, open pixel, click redirect): URL-safe base64 of
//! the payload followed by 16 bytes of HMAC-SHA256 over a purpose tag and the payload,
//! so a token made for one purpose never passes for another and cannot be forged or
//! altered without the shop's secret.

use base64::Engine as _;
use hmac::Mac as _;

const MAC_LEN: usize = 16;

fn mac(secret: &[u8], purpose: &str, payload: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = crate::hmac_sha256(secret);
    mac.update(purpose.as_bytes());
    mac.update(b":");
    mac.update(payload.as_bytes());
    mac
}

/// A token carrying `payload` for `purpose`.
pub fn seal(secret: &[u8], purpose: &str, payload: &str) -> String {
    let mut bytes = payload.as_bytes().to_vec();
    bytes.extend(&mac(secret, purpose, payload).finalize().into_bytes()[..MAC_LEN]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The payload of a genuine token for `purpose`; `None` for a forged, truncated,
/// garbled or other-purpose one. The comparison is constant-time.
pub fn unseal(secret: &[u8], purpose: &str, token: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let split = bytes.len().checked_sub(MAC_LEN)?;
    let (payload, tag) = bytes.split_at(split);
    let payload = std::str::from_utf8(payload).ok()?;
    mac(secret, purpose, payload).verify_truncated_left(tag).ok()?;
    Some(payload.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_for_their_purpose_and_secret() {
        let t = seal(b"k", "open", "m1");
        assert_eq!(unseal(b"k", "open", &t).as_deref(), Some("m1"));
        assert_eq!(unseal(b"k", "click", &t), None);
        assert_eq!(unseal(b"other", "open", &t), None);
        assert_eq!(unseal(b"k", "open", &t[1..]), None);
        assert_eq!(unseal(b"k", "open", "!!"), None);
    }
}
