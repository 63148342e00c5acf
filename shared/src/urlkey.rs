//! Unguessable webhook URLs: `<base>/webhooks/<tenantId>/<key>/<event>`.
//!
//! The key is `<generation>.<MAC>`: an HMAC-SHA256 of the tenant id and the generation under a
//! secret of the deployment (a Secrets Manager secret the stack generates), cut to 128 bits. A
//! webhook function checks it in constant time before anything else, with no call and no write, so
//! requests to made-up tenants or with a wrong key cost nothing. The tenant's current generation
//! is kept in its webhooks secret: rotating (a leaked URL) moves it on, and the old URLs stop.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC the key carries.
const MAC_BYTES: usize = 16;

/// A new tenant's first generation is drawn from `1..FIRST_GENERATIONS`.
pub const FIRST_GENERATIONS: u32 = 1 << 30;

/// How far ahead of a webhook instance's cached generation a key may be and still prove a
/// rotation the instance has not read yet (rotations move one generation at a time; a tenant
/// connected again starts a random distance away).
pub const ROTATIONS_AHEAD: u32 = 3;

/// The deployment's URL-key secret.
#[derive(Clone)]
pub struct UrlKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for UrlKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKeys(..)")
    }
}

impl UrlKeys {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        UrlKeys {
            secret: secret.as_ref().to_vec(),
        }
    }

    fn mac(&self, tenant: &str, generation: u32) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(tenant.as_bytes());
        mac.update(b"/");
        mac.update(generation.to_string().as_bytes());
        mac
    }

    /// The key of the tenant's URLs at `generation`.
    pub fn key(&self, tenant: &str, generation: u32) -> String {
        let full = self.mac(tenant, generation).finalize().into_bytes();
        format!("{generation}.{}", hex::encode(&full[..MAC_BYTES]))
    }

    /// The generation `key` was made for, when it is the tenant's (compared in constant time).
    pub fn check(&self, tenant: &str, key: &str) -> Option<u32> {
        let (generation, mac) = key.split_once('.')?;
        let generation: u32 = generation.parse().ok()?;
        if mac.len() != 2 * MAC_BYTES {
            return None;
        }
        let given = hex::decode(mac).ok()?;
        self.mac(tenant, generation)
            .verify_truncated_left(&given)
            .ok()
            .map(|()| generation)
    }
}

impl UrlKeys {
    /// A MAC of `data` for `purpose` under the deployment's secret (128 bits, hex): what the
    /// stack hands out and takes back with no call, e.g. the OAuth state.
    pub fn sign(&self, purpose: &str, data: &str) -> String {
        let full = self.purpose_mac(purpose, data).finalize().into_bytes();
        hex::encode(&full[..MAC_BYTES])
    }

    /// Whether `mac` is [`UrlKeys::sign`]'s for `purpose` and `data` (in constant time).
    pub fn verify(&self, purpose: &str, data: &str, mac: &str) -> bool {
        mac.len() == 2 * MAC_BYTES
            && hex::decode(mac).is_ok_and(|given| {
                self.purpose_mac(purpose, data)
                    .verify_truncated_left(&given)
                    .is_ok()
            })
    }

    fn purpose_mac(&self, purpose: &str, data: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        // A purpose with `#` cannot collide with a URL key's input (`<tenant>/<generation>`).
        mac.update(b"#");
        mac.update(purpose.as_bytes());
        mac.update(b"#");
        mac.update(data.as_bytes());
        mac
    }
}

/// A webhook URL: `<base>/webhooks/<tenant>/<key>/<event>`.
pub fn webhook_url(base: &str, tenant: &str, key: &str, event: &str) -> String {
    format!(
        "{}/webhooks/{tenant}/{key}/{event}",
        base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_tenants_and_its_generations_only() {
        let keys = UrlKeys::new("deployment secret");
        let k = keys.key("acme", 0);
        assert_eq!(k.len(), 2 + 2 * MAC_BYTES);
        assert_eq!(keys.check("acme", &k), Some(0));
        assert_eq!(keys.check("acme2", &k), None, "another tenant");
        assert_eq!(keys.check("acme", &keys.key("acme", 1)), Some(1));
        assert_eq!(
            UrlKeys::new("other").check("acme", &k),
            None,
            "another deployment"
        );
        let mut wrong = k.clone();
        wrong.replace_range(5..6, if &k[5..6] == "0" { "1" } else { "0" });
        for bad in [
            "",
            ".",
            "0.",
            "x.00",
            &k[..k.len() - 1],
            &wrong,
            "99999999999.00",
        ] {
            assert_eq!(keys.check("acme", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_signature_is_its_purposes_and_datas_only() {
        let keys = UrlKeys::new("deployment secret");
        let mac = keys.sign("oauth-state", "1.abc");
        assert!(keys.verify("oauth-state", "1.abc", &mac));
        assert!(!keys.verify("oauth-state", "1.abd", &mac));
        assert!(!keys.verify("other", "1.abc", &mac));
        assert!(!UrlKeys::new("another").verify("oauth-state", "1.abc", &mac));
        assert!(
            !keys.verify("oauth-state", "1.abc", "zz") && !keys.verify("oauth-state", "1.abc", "")
        );
        // Never a URL key: those MAC `<tenant>/<generation>`.
        assert_ne!(
            keys.key("acme", 1).split_once('.').unwrap().1,
            keys.sign("acme", "1")
        );
    }
}
