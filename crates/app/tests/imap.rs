//! Inbound email through a real IMAP server (Debian's dovecot, started by `.ci/run`):
//! the poller takes what is unread, then waits in IDLE and takes a reply within moments of
//! its arrival; what it took is flagged \Seen; a message it cannot read goes to triage; the
//! same bytes delivered twice act once; a stop ends it promptly.
//!
//! The server is `INCIDENCIAS_TEST_IMAP_URL` (default
//! `imap://prueba:secreto@127.0.0.1:10143`); it must accept any user name with that
//! password (each test uses a mailbox of its own). Outside CI, without it these tests say
//! so loudly and pass; with CI=true they fail.

mod common;

use std::time::{Duration, Instant};

use common::api::Api;
use common::imap::{TestSession, client, count, deliver, settings_for};
use incidencias::mail::imap::{ImapPoller, ImapSettings};
use serde_json::json;

const FOLIO: &str = "INC-2026-000001";

/// Waits up to `limit` until `n` messages of the mailbox are flagged \\Seen.
async fn seen_within(mailbox: &mut TestSession, n: usize, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let seen = count(mailbox, "SEEN").await;
        if seen == n {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what} ({seen} seen)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to `limit` for `check`, polling every 50 ms; how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reply acknowledging the step-2 email, as the trusted receiving server put it in the
/// mailbox (`authenticated`: its Authentication-Results on top).
fn acknowledgment() -> Vec<u8> {
    common::api::authenticated(
        &format!(
            "From: Responsable <responsable@sepru.gob.mx>\r\n\
         To: mesa@ugd.gob.mx\r\n\
         Subject: RE: [{FOLIO}] Notificación de incidencia, severidad Alta\r\n\
         Message-ID: <acuse-imap-1@sepru.gob.mx>\r\n\
         In-Reply-To: <{FOLIO}.3.notification.0@incidencias.gob.mx>\r\n\
         Date: Fri, 27 Nov 2026 03:06:00 -0600\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Enterados, ya estamos trabajando en la corrección.\r\n\
         \r\n\
         > Confirme de enterado respondiendo este correo.\r\n"
        )
        .into_bytes(),
    )
}

async fn replies_are_taken_promptly_in_idle_flagged_seen_and_never_twice(url: String) {
    let settings = settings_for("idle");
    let Some(mut mailbox) = client(&settings).await else {
        return;
    };
    let api = Api::new(&url).await;
    assert_eq!(api.report().await, FOLIO);
    api.step(FOLIO, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    let version_notified = api.incident(FOLIO).await["version"].clone();

    // Waiting before the poller starts: not an email at all.
    deliver(&mut mailbox, b"esto no es un correo\r\n").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(ImapPoller::new(api.service.clone(), settings.clone()).run(stopped));
    seen_within(
        &mut mailbox,
        1,
        Duration::from_secs(20),
        "the unread message is taken",
    )
    .await;
    let triage = api
        .store
        .list_inbound(
            Some(incidencias::store::InboundDisposition::Triage),
            None,
            10,
        )
        .await
        .expect("list inbound");
    assert_eq!(triage.len(), 1, "the unreadable message is in triage");
    assert!(
        triage[0]
            .record
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no se pudo leer como correo")),
        "{:?}",
        triage[0].record.reason
    );
    assert_eq!(api.incident(FOLIO).await["version"], version_notified);

    // Now the poller sits in IDLE (renewal in 10 minutes): the reply is taken because the
    // server told it, within seconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    deliver(&mut mailbox, &acknowledgment()).await;
    let took = within(
        Duration::from_secs(10),
        "the reply acknowledges",
        || async { api.incident(FOLIO).await["state"] == "in_correction" },
    )
    .await;
    eprintln!("reply taken {took:?} after delivery");
    seen_within(
        &mut mailbox,
        2,
        Duration::from_secs(10),
        "the reply is flagged seen",
    )
    .await;
    assert_eq!(count(&mut mailbox, "UNSEEN").await, 0);
    let acknowledged = api.incident(FOLIO).await;

    // The same bytes again (a client that re-sent, a delivery retried): taken and flagged,
    // but nothing acts twice and the record keeps one copy.
    deliver(&mut mailbox, &acknowledgment()).await;
    seen_within(
        &mut mailbox,
        3,
        Duration::from_secs(10),
        "the copy is flagged seen",
    )
    .await;
    let after = api.incident(FOLIO).await;
    assert_eq!(after["version"], acknowledged["version"], "acted once");
    let all = api
        .store
        .list_inbound(None, None, 10)
        .await
        .expect("list inbound");
    assert_eq!(
        all.iter()
            .map(|r| r.record.outcome.as_str())
            .collect::<Vec<_>>(),
        ["acknowledged", "triage"],
        "one record per distinct message, newest first"
    );

    // A stop ends the session (DONE, LOGOUT) promptly.
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .expect("the poller stops within 5 s")
        .expect("the poller task ended cleanly");
    let _ = mailbox.logout().await;
}

async fn a_refused_login_is_retried_and_a_stop_still_ends_it(url: String) {
    let settings = settings_for("clave");
    let Some(mut mailbox) = client(&settings).await else {
        return;
    };
    let api = Api::new(&url).await;
    deliver(&mut mailbox, &acknowledgment()).await;
    let wrong = ImapSettings {
        password: "no-es-la-clave".into(),
        ..settings
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(ImapPoller::new(api.service.clone(), wrong).run(stopped));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !poller.is_finished(),
        "a refused login does not end the poller"
    );
    assert_eq!(count(&mut mailbox, "UNSEEN").await, 1, "nothing taken");
    let inbound = api
        .store
        .list_inbound(None, None, 10)
        .await
        .expect("list inbound");
    assert!(inbound.is_empty(), "nothing recorded: {inbound:?}");
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .expect("the poller stops within 5 s while retrying")
        .expect("ended cleanly");
    let _ = mailbox.logout().await;
}

/// An 11 MB message is not downloaded into the service: its header goes to triage with
/// the reason, it is flagged, and the message after it is taken as usual.
async fn an_oversized_message_goes_to_triage_and_the_next_one_is_taken(url: String) {
    let settings = settings_for("grande");
    let Some(mut mailbox) = client(&settings).await else {
        return;
    };
    let api = Api::new(&url).await;
    let mut huge = b"From: Ciudadano <ciudadano@ejemplo.com>\r\nTo: mesa@ugd.gob.mx\r\n\
                     Subject: Anexos del expediente\r\n\r\n"
        .to_vec();
    for _ in 0..(11 * 1024 * 1024 / 76) {
        huge.extend_from_slice(&[b'A'; 74]);
        huge.extend_from_slice(b"\r\n");
    }
    deliver(&mut mailbox, &huge).await;
    deliver(
        &mut mailbox,
        b"From: otra@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\nSubject: Consulta\r\n\r\nHola\r\n",
    )
    .await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(ImapPoller::new(api.service.clone(), settings).run(stopped));
    seen_within(
        &mut mailbox,
        2,
        Duration::from_secs(30),
        "both messages are taken",
    )
    .await;
    let triage = api
        .store
        .list_inbound(
            Some(incidencias::store::InboundDisposition::Triage),
            None,
            10,
        )
        .await
        .expect("list inbound");
    assert_eq!(triage.len(), 2, "{triage:?}");
    let big = triage
        .iter()
        .find(|r| r.record.subject == "Anexos del expediente")
        .expect("the oversized message is listed by its subject");
    assert_eq!(big.record.sender, "ciudadano@ejemplo.com");
    assert!(
        big.record
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("excede el máximo de 10 MB")),
        "{:?}",
        big.record.reason
    );
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .expect("stops")
        .expect("ended cleanly");
    let _ = mailbox.logout().await;
}

on_both_backends!(
    an_oversized_message_goes_to_triage_and_the_next_one_is_taken,
    replies_are_taken_promptly_in_idle_flagged_seen_and_never_twice,
    a_refused_login_is_retried_and_a_stop_still_ends_it,
);

/// A server that accepts the connection and never greets (a hung mailbox host): the
/// poller does not hang the service's shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_obeyed_while_the_server_never_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    let db = common::TestDb::sqlite();
    let api = Api::new(&db.url).await;
    let settings = ImapSettings::from_url(&format!("imap://mesa:clave@127.0.0.1:{port}/INBOX"))
        .expect("settings");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(ImapPoller::new(api.service.clone(), settings).run(stopped));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!poller.is_finished(), "still waiting for the greeting");
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(8), poller)
        .await
        .expect("the poller stops within 8 s although the server never answered")
        .expect("ended cleanly");
}
