//! Officer tokens: made by `seva officer add`, shown once, stored as SHA-256, presented as
//! `Authorization: Bearer <token>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::error::ApiError;
use crate::store::Officer;

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "seva_";

/// A fresh token: the prefix and 256 random bits in hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What the database keeps of a token: its SHA-256 in hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The bearer token of a request, if it has one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// The officer a request acts for. A missing, unknown, revoked or expired token is 401; a
/// client address that presented too many wrong (unknown, revoked, expired) tokens is 429 for
/// a while ([`super::throttle`]).
#[derive(Debug, Clone)]
pub struct Authed(pub Officer);

impl FromRequestParts<ApiState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let client = state.throttle.client(parts);
        if let Some(ip) = client {
            state
                .throttle
                .check(ip)
                .map_err(|p| ApiError::TooManyAttempts {
                    retry_after_secs: p.retry_after_secs,
                })?;
        }
        let wrong = || {
            if let Some(ip) = client {
                state.throttle.failed(ip);
            }
            ApiError::Unauthorized
        };
        let token = match bearer(parts) {
            Some(token) => token,
            // No header at all is not a guess; a header that is not a bearer token is.
            None if !parts.headers.contains_key(AUTHORIZATION) => {
                return Err(ApiError::Unauthorized);
            }
            None => return Err(wrong()),
        };
        let officer = state
            .runtime
            .store()
            .officer_by_token_hash(&hash_token(token), state.runtime.clock().now())
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(wrong)?;
        Ok(Authed(officer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed_to_hex() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        let h = hash_token(&a);
        assert_eq!(h.len(), 64);
        assert_ne!(h, a);
    }
}
