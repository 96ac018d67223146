//! A service holding another service's NATS credentials... does not: each user of
//! `deploy/nats/permissions.conf` may publish only its own subjects and use only its own
//! durable consumers.

use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::{Client, ConnectOptions, Event};
use kechuang_deploy_check::{NatsServer, test_password};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connects as `user`, collecting the server's error messages (permission violations).
async fn connect_as(
    server: &NatsServer,
    user: &str,
) -> anyhow::Result<(Client, Arc<Mutex<Vec<String>>>)> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let client = ConnectOptions::with_user_and_password(user.into(), test_password(user))
        // As the services connect (services/platform/src/bus.rs): replies to its own inbox.
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .event_callback(move |event| {
            let sink = sink.clone();
            async move {
                if let Event::ServerError(e) = event {
                    sink.lock().expect("not poisoned").push(e.to_string());
                }
            }
        })
        .connect(server.address())
        .await?;
    Ok((client, errors))
}

fn jetstream_of(client: Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client)
}

async fn stream_with_events(server: &NatsServer) -> anyhow::Result<jetstream::stream::Stream> {
    let (admin, _) = connect_as(server, "admin").await?;
    let js = jetstream_of(admin);
    Ok(js
        .create_stream(stream::Config {
            name: "KC_EVENTS".into(),
            subjects: vec!["kc.>".into()],
            ..Default::default()
        })
        .await?)
}

async fn messages_on(stream: &mut jetstream::stream::Stream, subject: &str) -> anyhow::Result<u64> {
    let info = stream.info_with_subjects(subject).await?;
    let mut total = 0;
    futures::pin_mut!(info);
    while let Some(entry) = futures::StreamExt::next(&mut info).await {
        total += entry?.1 as u64;
    }
    Ok(total)
}

/// Waits until the server has reported a violation mentioning `subject`.
async fn violation_reported(errors: &Mutex<Vec<String>>, subject: &str) -> bool {
    for _ in 0..100 {
        if errors
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|e| e.contains("Permissions Violation") && e.contains(subject))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn subsidy_cannot_publish_the_fund_ledgers_events_and_the_fund_ledger_can()
-> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let mut events = stream_with_events(&server).await?;

    let (subsidy, subsidy_errors) = connect_as(&server, "subsidy").await?;
    let subsidy_js = jetstream_of(subsidy);
    let forged = match subsidy_js.publish("kc.fund.posted", "forged".into()).await {
        Ok(ack) => ack.await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(forged.is_err(), "subsidy stored an event on kc.fund.posted");
    assert!(
        violation_reported(&subsidy_errors, "kc.fund.posted").await,
        "no permissions violation reported: {:?}",
        subsidy_errors.lock().expect("not poisoned")
    );
    assert_eq!(messages_on(&mut events, "kc.fund.posted").await?, 0);

    // The same connection may publish its own events.
    subsidy_js
        .publish("kc.subsidy.approved", "own".into())
        .await?
        .await?;
    assert_eq!(messages_on(&mut events, "kc.subsidy.approved").await?, 1);
    // And read back the audit trail's latest anchor, as VerifyAuditTrail does.
    subsidy_js
        .publish("kc.audit.anchored", "anchor".into())
        .await?
        .await?;
    let anchor = subsidy_js
        .get_stream("KC_EVENTS")
        .await?
        .get_last_raw_message_by_subject("kc.audit.anchored")
        .await?;
    assert_eq!(anchor.payload.as_ref(), b"anchor");

    let (ledger, ledger_errors) = connect_as(&server, "fund-ledger").await?;
    jetstream_of(ledger)
        .publish("kc.fund.posted", "real".into())
        .await?
        .await?;
    assert_eq!(messages_on(&mut events, "kc.fund.posted").await?, 1);
    assert!(ledger_errors.lock().expect("not poisoned").is_empty());
    Ok(())
}

#[tokio::test]
async fn every_service_is_confined_to_its_own_aggregates() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let mut events = stream_with_events(&server).await?;
    let owners = [
        (
            "demand-intake",
            ["kc.enterprise.registered", "kc.demand.submitted"].as_slice(),
        ),
        (
            "matching",
            [
                "kc.achievement.registered",
                "kc.pairing.proposed",
                "kc.contract.signed",
            ]
            .as_slice(),
        ),
        (
            "subsidy",
            [
                "kc.policy.created",
                "kc.payment.recorded",
                "kc.subsidy.disbursed",
                "kc.registration.certified",
                "kc.registration.refused",
                "kc.audit.anchored",
            ]
            .as_slice(),
        ),
        ("fund-ledger", ["kc.fund.reserved"].as_slice()),
    ];
    for (user, own) in owners {
        let (client, errors) = connect_as(&server, user).await?;
        let js = jetstream_of(client);
        for subject in own
            .iter()
            .copied()
            .chain([format!("kc.dlq.{user}").as_str()])
        {
            js.publish(subject.to_string(), user.to_string().into())
                .await?
                .await
                .map_err(|e| anyhow::anyhow!("{user} on {subject}: {e}"))?;
        }
        for (other, theirs) in owners.iter().filter(|(o, _)| *o != user) {
            for subject in theirs
                .iter()
                .copied()
                .chain([format!("kc.dlq.{other}").as_str()])
            {
                let before = messages_on(&mut events, subject).await?;
                let stored = match js
                    .publish(subject.to_string(), user.to_string().into())
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                assert!(!stored, "{user} stored an event on {subject}");
                assert!(
                    violation_reported(&errors, subject).await,
                    "{user} on {subject}"
                );
                assert_eq!(messages_on(&mut events, subject).await?, before);
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_service_can_only_create_and_pull_its_own_durables_with_their_own_filters()
-> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let _events = stream_with_events(&server).await?;
    let (subsidy, errors) = connect_as(&server, "subsidy").await?;
    let js = jetstream_of(subsidy);
    let stream = js.get_stream("KC_EVENTS").await?;

    // Its own durable with its own filter, as the platform creates it.
    let own = stream
        .get_or_create_consumer(
            "subsidy-fund",
            pull::Config {
                durable_name: Some("subsidy-fund".into()),
                filter_subject: "kc.fund.*".into(),
                ..Default::default()
            },
        )
        .await;
    assert!(own.is_ok(), "subsidy-fund: {:?}", own.err());

    // Its own durable name reading demand events, and another service's durable.
    for (durable, filter) in [
        ("subsidy-fund", "kc.demand.*"),
        ("subsidy-snoop", "kc.fund.*"),
        ("fund-ledger-subsidy", "kc.subsidy.*"),
    ] {
        let created = stream
            .create_consumer(pull::Config {
                durable_name: Some(durable.into()),
                filter_subject: filter.into(),
                ..Default::default()
            })
            .await;
        assert!(created.is_err(), "subsidy created {durable} on {filter}");
        assert!(violation_reported(&errors, durable).await, "{durable}");
    }
    Ok(())
}

#[tokio::test]
async fn a_service_cannot_read_the_replies_addressed_to_another() -> anyhow::Result<()> {
    let server = NatsServer::start()?;
    let (subsidy, errors) = connect_as(&server, "subsidy").await?;
    // Its own inbox works: a request to the JetStream API gets a reply there. What the reply
    // says does not matter (a fresh server's JetStream may still answer that it is starting,
    // in a shape the client cannot parse); that it arrives does. Retried while the server
    // warms up: no responders or a timeout just after it starts listening.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let own = loop {
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            subsidy.request("$JS.API.INFO", "".into()),
        )
        .await;
        match answer {
            Ok(Ok(reply)) => break Ok(reply),
            failed if std::time::Instant::now() > deadline => break Err(format!("{failed:?}")),
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    };
    assert!(own.is_ok(), "no reply on its own inbox: {:?}", own.err());
    // The ledger's inbox (publish acks, pulled messages) is not its to read.
    let _snoop = subsidy.subscribe("_INBOX_fund-ledger.>").await?;
    assert!(
        violation_reported(&errors, "_INBOX_fund-ledger").await,
        "subsidy subscribed to the ledger's inbox"
    );
    Ok(())
}
