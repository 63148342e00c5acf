//! The connect pages' sessions: a connect link ([`crate::admin::links`]) is exchanged once for a
//! random session token, kept in a `__Host-` cookie (HttpOnly, Secure, SameSite=Lax) and stored
//! hashed on the tenant's link record, so revoking or replacing the link ends the session too.
//! Every form carries a CSRF token derived from the session's.

use crate::admin::Admin;
use crate::admin::links::SESSION_TTL_MS;
use crate::clock::Clock;
use crate::ids::token_hash;
use crate::store::{AdminStore, StoreError};
use hmac::{Hmac, Mac};

/// The cookie's name: `__Host-` makes the browser insist on Secure, Path=/ and no Domain.
pub const COOKIE: &str = "__Host-lever-bridge-connect";

/// A browser's session on one tenant's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant: String,
    token: String,
}

/// Why a link did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    Expired,
    Used,
    /// Revoked, replaced by a newer link, or never minted.
    Invalid,
}

/// Why a request has no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefused {
    /// No cookie, or not one of ours.
    Missing,
    /// A session of another tenant's pages.
    OtherTenant,
    /// Expired, or its link revoked or replaced.
    Ended,
}

fn mac(key: &str, what: &str) -> Hmac<sha2::Sha256> {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    m.update(what.as_bytes());
    m
}

impl Session {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> String {
        hex::encode(mac(&self.token, "csrf").finalize().into_bytes())
    }

    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        hex::decode(given).is_ok_and(|bytes| mac(&self.token, "csrf").verify_slice(&bytes).is_ok())
    }

    /// The `Set-Cookie` value that gives the browser this session.
    pub fn set_cookie(&self) -> String {
        cookie::Cookie::build((COOKIE, format!("{}.{}", self.tenant, self.token)))
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(cookie::SameSite::Lax)
            .max_age(cookie::time::Duration::milliseconds(SESSION_TTL_MS))
            .build()
            .to_string()
    }
}

/// The `Set-Cookie` value that removes the session's cookie (after a disconnection).
pub fn clear_cookie() -> String {
    cookie::Cookie::build((COOKIE, ""))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The tenant and token of our cookie in a `Cookie` header.
fn from_header(header: Option<&str>) -> Option<(String, String)> {
    cookie::Cookie::split_parse(header?)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .and_then(|c| {
            let (tenant, token) = c.value().split_once('.')?;
            (crate::ids::tenant_id(tenant) && token.len() == 64)
                .then(|| (tenant.to_string(), token.to_string()))
        })
}

/// Exchanges a link's token for a session: once, before the link expires.
pub async fn open<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    tenant: &str,
    token: &str,
) -> Result<Result<Session, LinkRefused>, StoreError>
where
    S: AdminStore,
    C: Clock,
{
    let hash = token_hash(token);
    let now = admin.clock.now_ms();
    let Ok(session_token) = crate::ids::random_token() else {
        return Err(StoreError::Unavailable("no random source".into()));
    };
    if admin
        .store
        .open_connect_link(
            tenant,
            &hash,
            &token_hash(&session_token),
            now + SESSION_TTL_MS,
            now,
        )
        .await?
    {
        tracing::info!(tenant, "connect link opened");
        return Ok(Ok(Session {
            tenant: tenant.to_string(),
            token: session_token,
        }));
    }
    let why = match admin.store.connect_link(tenant).await? {
        Some(l) if l.token_hash != hash => LinkRefused::Invalid,
        Some(l) if l.opened_at.is_some() => LinkRefused::Used,
        Some(_) => LinkRefused::Expired,
        None => LinkRefused::Invalid,
    };
    tracing::info!(tenant, refused = ?why, "connect link refused");
    Ok(Err(why))
}

/// The request's session on `tenant`'s pages, from its `Cookie` header.
pub async fn check<L, S, K, C>(
    admin: &Admin<L, S, K, C>,
    tenant: &str,
    cookie_header: Option<&str>,
) -> Result<Result<Session, SessionRefused>, StoreError>
where
    S: AdminStore,
    C: Clock,
{
    let Some((owner, token)) = from_header(cookie_header) else {
        return Ok(Err(SessionRefused::Missing));
    };
    if owner != tenant {
        return Ok(Err(SessionRefused::OtherTenant));
    }
    let hash = token_hash(&token);
    let live = admin.store.connect_link(tenant).await?.is_some_and(|l| {
        l.session_hash.as_deref() == Some(hash.as_str())
            && l.session_expires_at > admin.clock.now_ms()
    });
    Ok(if live {
        Ok(Session {
            tenant: owner,
            token,
        })
    } else {
        Err(SessionRefused::Ended)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            tenant: "acme".into(),
            token: "ab".repeat(32),
        }
    }

    #[test]
    fn the_cookie_is_host_only_secure_and_reads_back() {
        let s = session();
        let c = s.set_cookie();
        assert!(c.starts_with("__Host-lever-bridge-connect=acme."), "{c}");
        for part in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=7200",
        ] {
            assert!(c.contains(part), "{part} in {c}");
        }
        assert!(!c.contains("Domain"), "{c}");
        let header = format!("other=1; {}", c.split(';').next().unwrap());
        assert_eq!(
            from_header(Some(&header)),
            Some(("acme".into(), "ab".repeat(32)))
        );
        assert_eq!(from_header(Some("__Host-lever-bridge-connect=acme")), None);
        assert_eq!(from_header(Some("__Host-lever-bridge-connect=a/b.x")), None);
        assert_eq!(from_header(None), None);
    }

    #[test]
    fn csrf_tokens_are_the_sessions_own() {
        let s = session();
        assert!(s.csrf_ok(&s.csrf()));
        let other = Session {
            tenant: "acme".into(),
            token: "cd".repeat(32),
        };
        assert!(!other.csrf_ok(&s.csrf()));
        assert!(!s.csrf_ok("") && !s.csrf_ok("zz") && !s.csrf_ok(&"0".repeat(64)));
    }
}
