//! An attacker with access to NATS: publishes envelopes on the platform's subjects, unsigned,
//! signed with keys nobody trusts, or with a genuine service's key for events it may not emit,
//! and reads back what the services dead-lettered.

use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::{self, Context as JetStream};
use kechuang_platform::seal::{self, EventKeys, Signer};
use kechuang_platform::testing::{event_keys_of, signers};
use kechuang_platform::{NewEvent, Settings};
use kechuang_proto::EventType;
use kechuang_proto::events::Envelope;
use prost::Message;
use std::collections::HashMap;

/// How a forged event is signed.
#[derive(Debug, Clone, Copy)]
pub enum Forgery {
    /// No signature.
    Unsigned,
    /// A key pair the attacker made, under the entitled producer's name.
    StrangerKey,
    /// A genuine service's key (`demand-intake`'s), under the entitled producer's name.
    InsiderPosingAsProducer,
    /// A genuine service's key (`demand-intake`'s), under its own name.
    InsiderInOwnName,
}

impl Forgery {
    pub const ALL: [Forgery; 4] = [
        Forgery::Unsigned,
        Forgery::StrangerKey,
        Forgery::InsiderPosingAsProducer,
        Forgery::InsiderInOwnName,
    ];
}

pub struct Forger {
    settings: Settings,
    jetstream: JetStream,
    /// The platform's own signers (an insider's, or a leaked key).
    signers: HashMap<String, Signer>,
    /// Checks what is genuine, as the services do.
    verifier: EventKeys,
}

impl Forger {
    pub async fn connect(settings: &Settings) -> Self {
        let client = async_nats::connect(&settings.nats_url).await.expect("NATS");
        Self {
            settings: settings.clone(),
            jetstream: jetstream::new(client),
            signers: signers(settings),
            verifier: event_keys_of(settings, "subsidy"),
        }
    }

    /// Publishes `event` forged as `how`; returns its envelope.
    pub async fn publish(&self, event: NewEvent, how: Forgery) -> Envelope {
        let entitled = event.payload.producer();
        let insider = self.signers["demand-intake"].clone();
        let (named, signer): (&str, Option<Signer>) = match how {
            Forgery::Unsigned => (entitled, None),
            Forgery::StrangerKey => (entitled, Some(Signer::generate(entitled))),
            Forgery::InsiderPosingAsProducer => (entitled, Some(insider)),
            Forgery::InsiderInOwnName => ("demand-intake", Some(insider)),
        };
        let envelope = event.into_envelope(named, chrono::Utc::now());
        let body = envelope.encode_to_vec();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        if let Some(signer) = signer {
            signer.seal(&body, &mut headers);
            // The insider's key, under the name of the producer it poses as.
            if matches!(how, Forgery::InsiderPosingAsProducer) {
                headers.insert(seal::PRODUCER_HEADER, entitled);
            }
        }
        self.raw(&envelope.event_type, headers, body).await;
        envelope
    }

    /// Publishes a genuine event again, with its own signature, under a new message id: a
    /// replay past JetStream's duplicate window.
    pub async fn replay(&self, envelope: &Envelope) {
        let body = envelope.encode_to_vec();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        self.signers[&envelope.producer].seal(&body, &mut headers);
        self.raw(&envelope.event_type, headers, body).await;
    }

    /// Publishes `event` signed with its entitled producer's own key: what a service whose key
    /// leaked (or a dishonest insider holding it) could send. The receiver's own records are
    /// the last wall.
    pub async fn publish_with_stolen_key(&self, event: NewEvent) -> Envelope {
        let producer = event.payload.producer();
        let envelope = event.into_envelope(producer, chrono::Utc::now());
        self.replay(&envelope).await;
        envelope
    }

    async fn raw(&self, event_type: &str, headers: HeaderMap, body: Vec<u8>) {
        let subject = format!("{}.{event_type}", self.settings.subject_prefix);
        self.jetstream
            .publish_with_headers(subject, headers, body.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// The messages on `subject`, in stream order.
    async fn messages_on(&self, subject: &str) -> Vec<StreamMessage> {
        let Ok(mut stream) = self.jetstream.get_stream(&self.settings.stream_name).await else {
            return Vec::new();
        };
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await
                && m.subject.as_str() == subject
            {
                out.push(m);
            }
        }
        out
    }

    /// The errors of the dead letters of `service`, in stream order.
    pub async fn dead_letters(&self, service: &str) -> Vec<String> {
        let subject = format!("{}.dlq.{service}", self.settings.subject_prefix);
        self.messages_on(&subject)
            .await
            .into_iter()
            .map(|m| {
                m.headers
                    .get("Kc-Dlq-Error")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Every genuine (authentically signed) envelope of `event_type` in the stream.
    pub async fn genuine(&self, event_type: &str) -> Vec<Envelope> {
        let subject = format!("{}.{event_type}", self.settings.subject_prefix);
        let prefix = &self.settings.subject_prefix;
        self.messages_on(&subject)
            .await
            .into_iter()
            .filter_map(|m| {
                self.verifier
                    .verify(&subject, prefix, Some(&m.headers), &m.payload)
                    .ok()
            })
            .collect()
    }
}
