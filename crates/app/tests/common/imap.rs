//! A real IMAP server for tests (`INCIDENCIAS_TEST_IMAP_URL`, default
//! `imap://prueba:secreto@127.0.0.1:10143`, started by `.ci/imap-server`): it must accept
//! any user name with that password, so each test has a fresh mailbox of its own.

use std::time::Duration;

use incidencias::mail::imap::ImapSettings;

pub fn server_url() -> String {
    std::env::var("INCIDENCIAS_TEST_IMAP_URL")
        .unwrap_or_else(|_| "imap://prueba:secreto@127.0.0.1:10143".into())
}

/// The server's settings with a user of this test's own (a fresh, empty mailbox).
pub fn settings_for(test: &str) -> ImapSettings {
    let mut s = ImapSettings::from_url(&server_url()).expect("INCIDENCIAS_TEST_IMAP_URL");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    s.user = format!("{test}-{nanos}");
    // Long enough that only IDLE (not a renewal) can explain a prompt pick-up.
    s.idle_renewal = Duration::from_secs(600);
    s
}

pub type TestSession = async_imap::Session<tokio::net::TcpStream>;

/// The test's own IMAP client (what another mail client, or the MTA's delivery, does).
/// `None` after a loud notice when no server answers outside CI.
pub async fn client(s: &ImapSettings) -> Option<TestSession> {
    let tcp = match tokio::net::TcpStream::connect((s.host.as_str(), s.port)).await {
        Ok(t) => t,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true and no IMAP server at {}:{} ({e}); .ci/run starts dovecot",
                    s.host, s.port
                );
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: IMAP test needs an IMAP server at {}:{} ({e})\n\
                 *** set INCIDENCIAS_TEST_IMAP_URL or run .ci/run (CI=true makes this a failure)",
                s.host,
                s.port
            );
            return None;
        }
    };
    let mut c = async_imap::Client::new(tcp);
    c.read_response()
        .await
        .expect("greeting")
        .expect("greeting present");
    let mut session = c
        .login(&s.user, &s.password)
        .await
        .map_err(|(e, _)| e)
        .expect("test login");
    session.select("INBOX").await.expect("select INBOX");
    Some(session)
}

pub async fn deliver(session: &mut TestSession, raw: &[u8]) {
    session
        .append("INBOX", None, None, raw)
        .await
        .expect("APPEND");
}

pub async fn count(session: &mut TestSession, criterion: &str) -> usize {
    session
        .noop()
        .await
        .expect("NOOP (refresh the mailbox view)");
    session.uid_search(criterion).await.expect("SEARCH").len()
}
