//! Encryption at rest for the credentials the hub holds (OAuth tokens, client secrets, signing
//! secrets) and for the messages the relay stores until they are delivered, and a secret string
//! type that never shows its content in `Debug` or logs.
//!
//! Each value is sealed with AES-256-GCM under the hub's key, with a fresh random nonce, and bound
//! to a *context* (for example `connection:<id>:bot_token`) as associated data, so a ciphertext
//! copied into another row or field no longer decrypts.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

pub use secrecy::{ExposeSecret, SecretString};

/// The file, inside the data directory, that holds the key when none is given.
pub const KEY_FILE_NAME: &str = "secret.key";

/// The first byte of every ciphertext: lets a future key rotation or algorithm change tell old
/// values from new ones.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    #[error(
        "the secret key must be 32 bytes encoded in base64 (for example from `openssl rand -base64 32`); {0}"
    )]
    MalformedKey(String),
    #[error("cannot read or create the key file {path}: {cause}")]
    KeyFile { path: PathBuf, cause: io::Error },
    #[error(
        "the key file {path} can be read by other users (mode {mode:o}); restrict it with `chmod 600 {path}`"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error("a stored secret is not in a format this version understands")]
    UnknownFormat,
    #[error(
        "a stored secret cannot be decrypted: it was sealed with another key, for another field, or was altered"
    )]
    Undecryptable,
    #[error("a stored secret decrypted to bytes that are not UTF-8 text")]
    NotText,
}

/// Seals and opens secrets with the hub's AES-256-GCM key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher([REDACTED])")
    }
}

impl Cipher {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Reads a key given as base64 text (as in `SWITCHBOARD_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, SecretsError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| SecretsError::MalformedKey(format!("it is not base64 ({e})")))?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SecretsError::MalformedKey(format!("it decodes to {} bytes", bytes.len()))
        })?;
        Ok(Self::from_key(&key))
    }

    /// The key from `explicit_key` when given; otherwise the key file in `data_dir`, created
    /// with mode 0600 on first start.
    pub fn load(explicit_key: Option<&str>, data_dir: &Path) -> Result<Self, SecretsError> {
        match explicit_key {
            Some(text) => Self::from_base64(text),
            None => Self::load_or_create_key_file(&data_dir.join(KEY_FILE_NAME)),
        }
    }

    fn load_or_create_key_file(path: &Path) -> Result<Self, SecretsError> {
        let key_file_error = |cause| SecretsError::KeyFile {
            path: path.to_owned(),
            cause,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let key = Aes256Gcm::generate_key(OsRng);
                file.write_all(format!("{}\n", BASE64.encode(key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(key_file_error)?;
                Ok(Self {
                    aead: Aes256Gcm::new(&key),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let mode = fs::metadata(path)
                    .map_err(key_file_error)?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(SecretsError::KeyFileTooOpen {
                        path: path.to_owned(),
                        mode: mode & 0o777,
                    });
                }
                let text = fs::read_to_string(path).map_err(key_file_error)?;
                Self::from_base64(&text)
            }
            Err(e) => Err(key_file_error(e)),
        }
    }

    /// Seals `secret` for storage; `context` names where it will be stored.
    pub fn seal(&self, secret: &SecretString, context: &str) -> Vec<u8> {
        self.seal_bytes(secret.expose_secret().as_bytes(), context)
    }

    /// Opens what [`Cipher::seal`] sealed under the same `context`.
    pub fn open(&self, stored: &[u8], context: &str) -> Result<SecretString, SecretsError> {
        String::from_utf8(self.open_bytes(stored, context)?)
            .map(SecretString::from)
            .map_err(|_| SecretsError::NotText)
    }

    /// Seals content that is not a credential (a message on its way through the relay), so
    /// that what the database keeps of it, even in freed pages, is ciphertext; `context` names
    /// where it will be stored.
    pub fn seal_bytes(&self, plain: &[u8], context: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let sealed = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for inputs under 64 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Cipher::seal_bytes`] sealed under the same `context`.
    pub fn open_bytes(&self, stored: &[u8], context: &str) -> Result<Vec<u8>, SecretsError> {
        let (&format, rest) = stored.split_first().ok_or(SecretsError::UnknownFormat)?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(SecretsError::UnknownFormat);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        self.aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Undecryptable)
    }

    /// Whether `stored` is in the format [`Cipher::seal_bytes`] writes (which says nothing of
    /// whether it opens): tells sealed values from plaintext kept before they were sealed.
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.first() == Some(&FORMAT_V1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_and_context() {
        let cipher = Cipher::from_key(&[7; 32]);
        let sealed = cipher.seal(&secret("xoxb-123"), "connection:a:bot_token");
        let opened = cipher.open(&sealed, "connection:a:bot_token").unwrap();
        assert_eq!(opened.expose_secret(), "xoxb-123");
    }

    #[test]
    fn the_ciphertext_hides_the_secret_and_differs_each_time() {
        let cipher = Cipher::from_key(&[7; 32]);
        let a = cipher.seal(&secret("xoxb-123"), "ctx");
        let b = cipher.seal(&secret("xoxb-123"), "ctx");
        assert_ne!(a, b);
        assert!(!a.windows(8).any(|w| w == b"xoxb-123"));
    }

    #[test]
    fn another_context_or_key_or_a_flipped_bit_is_refused() {
        let cipher = Cipher::from_key(&[7; 32]);
        let sealed = cipher.seal(&secret("s3cret"), "connection:a:bot_token");
        assert!(matches!(
            cipher.open(&sealed, "connection:b:bot_token"),
            Err(SecretsError::Undecryptable)
        ));
        assert!(matches!(
            Cipher::from_key(&[8; 32]).open(&sealed, "connection:a:bot_token"),
            Err(SecretsError::Undecryptable)
        ));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            cipher.open(&tampered, "connection:a:bot_token"),
            Err(SecretsError::Undecryptable)
        ));
        assert!(matches!(
            cipher.open(&[], "x"),
            Err(SecretsError::UnknownFormat)
        ));
        assert!(matches!(
            cipher.open(&[2; 40], "x"),
            Err(SecretsError::UnknownFormat)
        ));
    }

    #[test]
    fn bytes_seal_and_open_like_secrets_and_are_told_from_plaintext() {
        let cipher = Cipher::from_key(&[7; 32]);
        let sealed = cipher.seal_bytes(b"{\"text\":\"canary\"}", "relay_inbox:c:Ev1");
        assert!(Cipher::is_sealed(&sealed));
        assert!(!Cipher::is_sealed(b"{\"text\":\"canary\"}"));
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(
            cipher.open_bytes(&sealed, "relay_inbox:c:Ev1").unwrap(),
            b"{\"text\":\"canary\"}"
        );
        assert!(matches!(
            cipher.open_bytes(&sealed, "relay_inbox:c:Ev2"),
            Err(SecretsError::Undecryptable)
        ));
        // Either way round: a value sealed as text opens as bytes, and the other way.
        let secret = cipher.seal(&secret("xoxb-1"), "ctx");
        assert_eq!(cipher.open_bytes(&secret, "ctx").unwrap(), b"xoxb-1");
        let bytes = cipher.seal_bytes(b"xoxb-2", "ctx");
        assert_eq!(
            cipher.open(&bytes, "ctx").unwrap().expose_secret(),
            "xoxb-2"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets_or_keys() {
        let token = secret("xoxp-very-secret");
        let cipher = Cipher::from_key(&[7; 32]);
        let printed = format!("{token:?} {cipher:?}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("REDACTED"), "{printed}");
    }

    #[test]
    fn an_explicit_key_must_be_32_bytes_of_base64() {
        assert!(Cipher::from_base64(&BASE64.encode([1u8; 32])).is_ok());
        let short = Cipher::from_base64(&BASE64.encode([1u8; 16])).unwrap_err();
        assert!(short.to_string().contains("decodes to 16 bytes"), "{short}");
        let garbage = Cipher::from_base64("not base64!").unwrap_err();
        assert!(garbage.to_string().contains("not base64"), "{garbage}");
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Cipher::load(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = first.seal(&secret("token"), "ctx");
        let second = Cipher::load(None, dir.path()).unwrap();
        assert_eq!(
            second.open(&sealed, "ctx").unwrap().expose_secret(),
            "token"
        );
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Cipher::load(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Cipher::load(None, dir.path()).unwrap_err();
        assert!(
            matches!(err, SecretsError::KeyFileTooOpen { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_key_wins_over_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = BASE64.encode([3u8; 32]);
        let cipher = Cipher::load(Some(&key), dir.path()).unwrap();
        assert!(!dir.path().join(KEY_FILE_NAME).exists());
        let sealed = cipher.seal(&secret("x"), "ctx");
        assert!(Cipher::from_key(&[3; 32]).open(&sealed, "ctx").is_ok());
    }
}
