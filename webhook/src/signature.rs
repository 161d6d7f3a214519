//! `X-Hub-Signature-256` verification.
//!
//! Meta signs every webhook POST with `sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the
//! **app secret** (not the verify token, not the access token). The digest covers the bytes
//! exactly as sent (Meta escapes non-ASCII as `\uXXXX`), so it must be checked on the raw body
//! before any parsing: re-serialising parsed JSON would never match.
//! <https://developers.facebook.com/docs/graph-api/webhooks/getting-started#event-notifications>

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header name, lowercase as `http::HeaderMap` stores it.
pub const HEADER: &str = "x-hub-signature-256";

const PREFIX: &str = "sha256=";
const DIGEST_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. None of these carry the secret or the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("signature header malformed")]
    Malformed,
    #[error("signature headers disagree")]
    Conflicting,
    #[error("signature does not match")]
    Mismatch,
}

/// `sha256=<lowercase hex>` for `body`, as Meta would send it (for tests and fakes).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Reads one header value into the 32 digest bytes. Accepts upper- or lowercase hex and a
/// `SHA256=` prefix in any case, with surrounding spaces.
fn decode(value: &[u8]) -> Result<[u8; DIGEST_LEN], SignatureError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| SignatureError::Malformed)?
        .trim();
    if value.len() != PREFIX.len() + DIGEST_LEN * 2
        || !value.is_char_boundary(PREFIX.len())
        || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
    {
        return Err(SignatureError::Malformed);
    }
    let mut out = [0u8; DIGEST_LEN];
    hex::decode_to_slice(&value[PREFIX.len()..], &mut out)
        .map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

/// Verifies the signature header values received (all of them: a request may repeat the
/// header) against `body`. Several values are accepted only when they all name the same digest.
/// The comparison is constant time (`hmac`'s `verify_slice`).
pub fn verify<'a, I>(secret: &[u8], body: &[u8], values: I) -> Result<(), SignatureError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut digest: Option<[u8; DIGEST_LEN]> = None;
    for value in values {
        let d = decode(value)?;
        match digest {
            None => digest = Some(d),
            // Not secret-dependent: both values came from the request.
            Some(first) if first != d => return Err(SignatureError::Conflicting),
            Some(_) => {}
        }
    }
    let digest = digest.ok_or(SignatureError::Missing)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

/// Verifies the `X-Hub-Signature-256` header(s) of a request.
pub fn verify_headers(
    secret: &[u8],
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify(
        secret,
        body,
        headers.get_all(HEADER).iter().map(|v| v.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";

    #[test]
    fn sign_matches_the_published_test_vector() {
        assert_eq!(sign(b"secret", b"test"), format!("sha256={VECTOR}"));
    }

    #[test]
    fn verify_accepts_lower_and_upper_hex() {
        let lower = format!("sha256={VECTOR}");
        let upper = format!("sha256={}", VECTOR.to_uppercase());
        assert_eq!(verify(b"secret", b"test", [lower.as_bytes()]), Ok(()));
        assert_eq!(verify(b"secret", b"test", [upper.as_bytes()]), Ok(()));
    }

    #[test]
    fn verify_refuses_missing_malformed_wrong_and_conflicting() {
        let good = format!("sha256={VECTOR}");
        let other = sign(b"secret", b"other");
        assert_eq!(verify(b"secret", b"test", []), Err(SignatureError::Missing));
        assert_eq!(
            verify(b"secret", b"test", [&b"sha1=abc"[..]]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"secret", b"test", [VECTOR.as_bytes()]),
            Err(SignatureError::Malformed)
        );
        let short = &good[..good.len() - 2];
        assert_eq!(
            verify(b"secret", b"test", [short.as_bytes()]),
            Err(SignatureError::Malformed)
        );
        let nonhex = good.replace('0', "g");
        assert_eq!(
            verify(b"secret", b"test", [nonhex.as_bytes()]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"secret", b"test", [&[0xff, 0xfe][..]]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"secret", b"test", [other.as_bytes()]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"wrong", b"test", [good.as_bytes()]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", b"test", [good.as_bytes(), other.as_bytes()]),
            Err(SignatureError::Conflicting)
        );
        let upper = format!("SHA256={}", VECTOR.to_uppercase());
        assert_eq!(
            verify(b"secret", b"test", [good.as_bytes(), upper.as_bytes()]),
            Ok(())
        );
    }
}
