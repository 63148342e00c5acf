//! The ids the bundle takes from outside, checked before they reach a key, a path or a secret name.

/// Tenant ids are ours: 1-64 letters, digits, `-` or `_`, so they can sit in keys and secret names.
pub fn tenant_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Lever's and the vendor's ids (opportunities, commands, messages, roles): 1-128 letters, digits,
/// `-`, `_`, `.` or `:`, never a path.
pub fn plain_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// 32 bytes from the OS's generator (`/dev/urandom`, present on Lambda), hex-encoded: OAuth states,
/// connect links and their sessions.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// How a token is stored: hex SHA-256 (the tokens are random, so no salt or slow hash is needed).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_plain_ids() {
        assert!(tenant_id("acme_1-x"));
        assert!(
            !tenant_id("") && !tenant_id(&"a".repeat(65)) && !tenant_id("a.b") && !tenant_id("a/b")
        );
        assert!(plain_id("250d8f03-738a:c.1_x"));
        assert!(
            !plain_id("")
                && !plain_id(&"a".repeat(129))
                && !plain_id("../users")
                && !plain_id("a b")
        );
    }
}
