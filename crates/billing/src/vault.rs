//! Credential vault: provider keys encrypted at rest with AES-256-GCM.
//!
//! Stored form: `v1:<key id>:<base64(nonce ‖ ciphertext)>`. The AAD binds a ciphertext to
//! `org_id|provider`, so a row copied to another org or provider fails to decrypt. Master
//! keys come from the environment or a file as `id:base64key,id2:base64key`; the last one
//! encrypts, all of them decrypt, so rotation is: append a key, restart, re-encrypt.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    #[error("no master key is configured (set SWITCHBOARD_MASTER_KEYS)")]
    NotConfigured,
    #[error("master key spec is invalid: {0}")]
    BadSpec(String),
    #[error("stored credential is malformed")]
    Malformed,
    #[error("stored credential was sealed with master key {0:?}, which is not configured")]
    UnknownKeyId(String),
    #[error("stored credential does not decrypt (wrong key, org or provider)")]
    Decrypt,
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "vault_not_configured",
            Self::BadSpec(_) => "vault_bad_master_keys",
            Self::Malformed => "vault_malformed",
            Self::UnknownKeyId(_) => "vault_unknown_key_id",
            Self::Decrypt => "vault_decrypt_failed",
        }
    }
}

pub struct Vault {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Vault").field("key_ids", &ids).finish()
    }
}

fn aad(org_id: &str, provider: &str) -> Vec<u8> {
    format!("{org_id}|{provider}").into_bytes()
}

impl Vault {
    /// Parse `id:base64key[,id:base64key…]`; each key is 32 bytes. The last one encrypts.
    pub fn from_spec(spec: &SecretString) -> Result<Vault, VaultError> {
        let mut keys = Vec::new();
        for part in spec.expose_secret().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, b64) = part.split_once(':').ok_or_else(|| VaultError::BadSpec("expected id:base64key".into()))?;
            if id.is_empty() || id.contains(':') {
                return Err(VaultError::BadSpec("empty or invalid key id".into()));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| VaultError::BadSpec(format!("key {id:?} is not base64")))?;
            let cipher = Aes256Gcm::new_from_slice(&raw)
                .map_err(|_| VaultError::BadSpec(format!("key {id:?} must be 32 bytes, got {}", raw.len())))?;
            keys.push((id.to_string(), cipher));
        }
        if keys.is_empty() {
            return Err(VaultError::NotConfigured);
        }
        Ok(Vault { keys })
    }

    /// A fresh random master key in spec form, for `switchboard keys rotate-master`.
    pub fn generate_key_spec(id: &str) -> SecretString {
        let key = aes_gcm::Key::<Aes256Gcm>::generate();
        SecretString::from(format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode(key)))
    }

    pub fn current_key_id(&self) -> &str {
        self.keys.last().map(|(id, _)| id.as_str()).unwrap_or("")
    }

    pub fn seal(&self, org_id: &str, provider: &str, secret: &SecretString) -> Result<String, VaultError> {
        let (id, cipher) = self.keys.last().ok_or(VaultError::NotConfigured)?;
        let nonce = Nonce::generate();
        let aad = aad(org_id, provider);
        let ct = cipher
            .encrypt(&nonce, Payload { msg: secret.expose_secret().as_bytes(), aad: &aad })
            .map_err(|_| VaultError::Decrypt)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("v1:{id}:{}", base64::engine::general_purpose::STANDARD.encode(blob)))
    }

    pub fn open(&self, org_id: &str, provider: &str, sealed: &str) -> Result<SecretString, VaultError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VaultError::Malformed);
        };
        let (_, cipher) =
            self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| VaultError::UnknownKeyId(id.to_string()))?;
        let blob = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| VaultError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(VaultError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce = Nonce::try_from(nonce).map_err(|_| VaultError::Malformed)?;
        let aad = aad(org_id, provider);
        let pt = cipher.decrypt(&nonce, Payload { msg: ct, aad: &aad }).map_err(|_| VaultError::Decrypt)?;
        String::from_utf8(pt).map(SecretString::from).map_err(|_| VaultError::Decrypt)
    }

    /// Whether a stored value should be re-sealed with the current master key.
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed.split(':').nth(1).is_some_and(|id| id != self.current_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ids: &[&str]) -> SecretString {
        let parts: Vec<String> =
            ids.iter().map(|id| Vault::generate_key_spec(id).expose_secret().to_string()).collect();
        SecretString::from(parts.join(","))
    }

    #[test]
    fn seals_and_opens_bound_to_org_and_provider() {
        let v = Vault::from_spec(&spec(&["k1"])).unwrap();
        let key = SecretString::from("sk-LEAKCANARY-123456".to_string());
        let sealed = v.seal("org_a", "openai", &key).unwrap();
        assert!(!sealed.contains("LEAKCANARY"));
        assert!(sealed.starts_with("v1:k1:"));
        assert_eq!(v.open("org_a", "openai", &sealed).unwrap().expose_secret(), "sk-LEAKCANARY-123456");
        assert_eq!(v.open("org_b", "openai", &sealed).err(), Some(VaultError::Decrypt));
        assert_eq!(v.open("org_a", "groq", &sealed).err(), Some(VaultError::Decrypt));
        assert_ne!(v.seal("org_a", "openai", &key).unwrap(), sealed, "fresh nonce each time");
    }

    #[test]
    fn rotation_keeps_old_rows_readable() {
        let s = spec(&["old"]);
        let old = Vault::from_spec(&s).unwrap();
        let sealed = old.seal("o", "p", &SecretString::from("abc".to_string())).unwrap();
        let both =
            SecretString::from(format!("{},{}", s.expose_secret(), Vault::generate_key_spec("new").expose_secret()));
        let v = Vault::from_spec(&both).unwrap();
        assert_eq!(v.current_key_id(), "new");
        assert!(v.is_stale(&sealed));
        assert_eq!(v.open("o", "p", &sealed).unwrap().expose_secret(), "abc");
        let resealed = v.seal("o", "p", &v.open("o", "p", &sealed).unwrap()).unwrap();
        assert!(!v.is_stale(&resealed));
    }

    #[test]
    fn bad_specs_and_blobs_are_typed() {
        assert_eq!(Vault::from_spec(&SecretString::from(String::new())).err(), Some(VaultError::NotConfigured));
        assert!(matches!(Vault::from_spec(&SecretString::from("k1:short".to_string())), Err(VaultError::BadSpec(_))));
        let v = Vault::from_spec(&spec(&["k1"])).unwrap();
        assert_eq!(v.open("o", "p", "garbage").err(), Some(VaultError::Malformed));
        assert_eq!(v.open("o", "p", "v1:k9:AAAA").err(), Some(VaultError::UnknownKeyId("k9".into())));
        assert_eq!(v.open("o", "p", "v1:k1:AAAA").err(), Some(VaultError::Malformed));
    }
}
