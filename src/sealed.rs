//! Hume API keys kept with a job, encrypted at rest.
//!
//! A job on the `hume` backend runs later, maybe after a restart, with the key its caller sent.
//! That key is stored only sealed with XChaCha20-Poly1305 (random 192-bit nonce, the job id as
//! associated data, so a sealed key cannot be moved to another job) and deleted when the job
//! ends. The server's own 32-byte key comes from `HUME_ACTION_SECRET_KEY` (64 hex characters) or
//! is generated once into `<data dir>/secret.key` with mode 0600.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::config::Secret;

/// The file a generated server key is kept in, inside the data directory.
pub const KEY_FILE: &str = "secret.key";

/// Why sealing could not be set up or a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("HUME_ACTION_SECRET_KEY must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("cannot read or create {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the stored API key could not be decrypted (the server's secret key changed?)")]
    Open,
}

/// Seals and opens secrets with the server's key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// The sealer with `configured` (hex) as key, else the key in `data_dir`, generated when absent.
    pub fn load(configured: Option<&Secret>, data_dir: &Path) -> Result<Self, SealError> {
        let key = match configured {
            Some(hex_key) => decode_key(hex_key.expose())?,
            None => key_from_file(&data_dir.join(KEY_FILE))?,
        };
        Ok(Self { cipher: XChaCha20Poly1305::new(&key.into()) })
    }

    /// `secret` sealed for the record `context` (a job id), as base64 text.
    pub fn seal(&self, secret: &Secret, context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload { msg: secret.expose().as_bytes(), aad: context.as_bytes() };
        let sealed = self.cipher.encrypt(&nonce, payload).expect("encryption of a short message cannot fail");
        BASE64.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The secret sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Secret, SealError> {
        let bytes = BASE64.decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < 24 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SealError::Open)?;
        let text = String::from_utf8(plain).map_err(|_| SealError::Open)?;
        text.parse().map_err(|_| SealError::Open)
    }
}

fn decode_key(hex_key: &str) -> Result<[u8; 32], SealError> {
    hex::decode(hex_key.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(SealError::BadKey)
}

/// Reads the key file, or creates it (mode 0600, never readable by others) with a random key.
fn key_from_file(path: &Path) -> Result<[u8; 32], SealError> {
    let failed = |source| SealError::KeyFile { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(failed)?;
            file.write_all(hex::encode(key).as_bytes()).and_then(|()| file.sync_all()).map_err(failed)?;
            Ok(key)
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_for_its_job_and_never_shows_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::load(None, dir.path()).unwrap();
        let key: Secret = "hume-key-123456".parse().unwrap();
        let sealed = sealer.seal(&key, "job-1");
        assert!(!sealed.contains("hume-key"));
        assert_eq!(sealer.open(&sealed, "job-1").unwrap().expose(), "hume-key-123456");
        assert!(sealer.open(&sealed, "job-2").is_err(), "bound to its job");
        // The generated key is reused by the next start, and is private to its owner.
        let again = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed, "job-1").unwrap().expose(), "hume-key-123456");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_must_be_32_bytes_of_hex() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Sealer::load(Some(&"abc".parse().unwrap()), dir.path()).is_err());
        let hex_key: Secret = "11".repeat(32).parse().unwrap();
        let sealer = Sealer::load(Some(&hex_key), dir.path()).unwrap();
        let sealed = sealer.seal(&"k".parse().unwrap(), "j");
        assert_eq!(sealer.open(&sealed, "j").unwrap().expose(), "k");
        assert!(!dir.path().join(KEY_FILE).exists(), "no key file when one is configured");
    }
}
