//! Authentic events. Every service signs what its relay publishes (Ed25519 over the envelope's
//! bytes, in NATS headers), and a consumer acts on an event only when the service entitled to
//! its type signed it ([`kechuang_proto::EventType::producer`]), whatever the NATS server
//! lets anyone publish. What fails is dead-lettered with the reason ([`Unauthentic`]).
//!
//! Keys live in one directory (`KC_EVENT_KEYS`): `<service>.pub.pem` of every service (SPKI)
//! and `<service>.key.pem` (PKCS#8) of the services a process runs. `kechuang event-keys DIR`
//! writes a set; `openssl genpkey -algorithm ed25519` keys work too.

use async_nats::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use kechuang_proto::EventType;
use kechuang_proto::events::Envelope;
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The header naming the service that signed the message.
pub const PRODUCER_HEADER: &str = "Kc-Producer";
/// The header carrying the base64 Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "Kc-Signature";
/// Signed before the body, so that a kechuang event signature means nothing anywhere else.
const CONTEXT: &[u8] = b"kechuang event v1\0";

/// Why a key directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("event keys: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("event keys: {path} is not an Ed25519 {what} in PEM: {reason}")]
    Format {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("event keys: {0}.key.pem does not belong to {0}.pub.pem")]
    Mismatch(String),
    #[error("event keys: cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a message on the bus is not acted upon.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthentic {
    #[error("unsigned: no {PRODUCER_HEADER} / {SIGNATURE_HEADER} header")]
    Unsigned,
    #[error("signed by an unknown producer {0:?}")]
    UnknownProducer(String),
    #[error("the signature of {0:?} does not verify")]
    BadSignature(String),
    #[error("cannot decode the envelope: {0}")]
    Malformed(String),
    #[error("signed by {signer:?} but the envelope names producer {named:?}")]
    ProducerMismatch { signer: String, named: String },
    #[error("the envelope says {named:?} but carries a {carried:?} payload")]
    TypeMismatch { named: String, carried: String },
    #[error("{producer:?} may not emit {event_type:?} (only {entitled:?} may)")]
    NotEntitled {
        producer: String,
        event_type: String,
        entitled: String,
    },
    #[error("a {event_type:?} event arrived on subject {subject:?}")]
    WrongSubject { event_type: String, subject: String },
}

/// Signs a service's events.
#[derive(Clone)]
pub struct Signer {
    producer: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.producer)
    }
}

impl Signer {
    pub fn new(producer: impl Into<String>, key: SigningKey) -> Self {
        Self {
            producer: producer.into(),
            key,
        }
    }

    /// A fresh random key (which nobody trusts until its public half is deployed).
    pub fn generate(producer: impl Into<String>) -> Self {
        Self::new(
            producer,
            SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        )
    }

    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// Adds the producer and the signature of `body` to `headers`.
    pub fn seal(&self, body: &[u8], headers: &mut HeaderMap) {
        let signature = self.key.sign(&signed_bytes(body));
        headers.insert(PRODUCER_HEADER, self.producer.as_str());
        headers.insert(SIGNATURE_HEADER, B64.encode(signature.to_bytes()).as_str());
    }
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(CONTEXT.len() + body.len());
    bytes.extend_from_slice(CONTEXT);
    bytes.extend_from_slice(body);
    bytes
}

/// The keys one service holds: its own signing key and every producer's public key.
#[derive(Clone)]
pub struct EventKeys {
    signer: Signer,
    trusted: BTreeMap<String, VerifyingKey>,
}

impl std::fmt::Debug for EventKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventKeys")
            .field("signer", &self.signer.producer)
            .field("trusted", &self.trusted.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EventKeys {
    /// Reads `own`'s key pair and the public keys of `producers` from `dir`.
    pub fn load(dir: &Path, own: &str, producers: &[&str]) -> Result<Self, KeyError> {
        let mut trusted = BTreeMap::new();
        for producer in producers.iter().chain(std::iter::once(&own)) {
            let path = public_path(dir, producer);
            let pem = read(&path)?;
            let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| KeyError::Format {
                path: path.clone(),
                what: "public key",
                reason: e.to_string(),
            })?;
            trusted.insert(producer.to_string(), key);
        }
        let path = private_path(dir, own);
        let pem = read(&path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Format {
            path: path.clone(),
            what: "private key",
            reason: e.to_string(),
        })?;
        if trusted.get(own) != Some(&key.verifying_key()) {
            return Err(KeyError::Mismatch(own.to_string()));
        }
        Ok(Self {
            signer: Signer::new(own, key),
            trusted,
        })
    }

    pub fn signer(&self) -> Signer {
        self.signer.clone()
    }

    /// The envelope in `body` if a trusted producer signed it, is entitled to its type, and it
    /// came on that type's subject (`<subject_prefix>.<event_type>`).
    pub fn verify(
        &self,
        subject: &str,
        subject_prefix: &str,
        headers: Option<&HeaderMap>,
        body: &[u8],
    ) -> Result<Envelope, Unauthentic> {
        let header = |name| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
        let (Some(producer), Some(signature)) = (header(PRODUCER_HEADER), header(SIGNATURE_HEADER))
        else {
            return Err(Unauthentic::Unsigned);
        };
        let short = |s: &str| s.chars().take(40).collect::<String>();
        let key = self
            .trusted
            .get(producer)
            .ok_or_else(|| Unauthentic::UnknownProducer(short(producer)))?;
        let bad = || Unauthentic::BadSignature(producer.to_string());
        let signature = B64.decode(signature).map_err(|_| bad())?;
        let signature = Signature::from_slice(&signature).map_err(|_| bad())?;
        key.verify_strict(&signed_bytes(body), &signature)
            .map_err(|_| bad())?;
        let envelope = Envelope::decode(body).map_err(|e| Unauthentic::Malformed(e.to_string()))?;
        if envelope.producer != producer {
            return Err(Unauthentic::ProducerMismatch {
                signer: producer.to_string(),
                named: short(&envelope.producer),
            });
        }
        let carried = envelope.payload.as_ref().map_or("", |p| p.event_type());
        if carried != envelope.event_type {
            return Err(Unauthentic::TypeMismatch {
                named: short(&envelope.event_type),
                carried: carried.to_string(),
            });
        }
        let entitled = envelope.payload.as_ref().map_or("", |p| p.producer());
        if entitled != producer {
            return Err(Unauthentic::NotEntitled {
                producer: producer.to_string(),
                event_type: envelope.event_type.clone(),
                entitled: entitled.to_string(),
            });
        }
        if subject
            .strip_prefix(subject_prefix)
            .and_then(|s| s.strip_prefix('.'))
            != Some(envelope.event_type.as_str())
        {
            return Err(Unauthentic::WrongSubject {
                event_type: envelope.event_type.clone(),
                subject: short(subject),
            });
        }
        Ok(envelope)
    }
}

fn public_path(dir: &Path, service: &str) -> PathBuf {
    dir.join(format!("{service}.pub.pem"))
}

fn private_path(dir: &Path, service: &str) -> PathBuf {
    dir.join(format!("{service}.key.pem"))
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a fresh key pair for each of `services` that has none in `dir` (created if missing;
/// private keys readable by the owner only). Returns the services it wrote keys for.
pub fn generate(dir: &Path, services: &[&str]) -> Result<Vec<String>, KeyError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut written = Vec::new();
    for service in services {
        let private = private_path(dir, service);
        if private.exists() {
            continue;
        }
        let key = Signer::generate(*service).key;
        let format = |e: ed25519_dalek::pkcs8::Error| KeyError::Format {
            path: private.clone(),
            what: "private key",
            reason: e.to_string(),
        };
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(format)?;
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Format {
                path: public_path(dir, service),
                what: "public key",
                reason: e.to_string(),
            })?;
        write_private(&private, pem.as_bytes()).map_err(write_err(&private))?;
        let public_file = public_path(dir, service);
        std::fs::write(&public_file, public).map_err(write_err(&public_file))?;
        written.push(service.to_string());
    }
    Ok(written)
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests;
