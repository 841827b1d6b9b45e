//! One SQLite database, two processes: a write made by `incidencias mail ingest` (the MTA
//! pipe) while `serve` runs is what the server answers at once, even for an incident it
//! had just read (and cached).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::process::{Demo, http, terminate, token_in};

#[test]
fn a_reply_ingested_by_another_process_is_seen_by_the_server_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Demo {
        child: mut server,
        url,
        lines,
    } = Demo::start(dir.path());
    let token_of = |email: &str| token_in(&lines, email);
    let agency = token_of("responsable@sbd.gob.mx");
    let (status, body) = http(
        &url,
        "GET",
        "/api/v1/incidents?state=awaiting_ack",
        Some(&agency),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    let folio = list["items"][0]["folio"]
        .as_str()
        .expect("the demo has an incident of SBD awaiting acknowledgement")
        .to_string();
    let path = format!("/api/v1/incidents/{folio}");
    // Read once, so the server holds it in its cache.
    let (_, before) = http(&url, "GET", &path, Some(&agency), None);
    let before: Value = serde_json::from_str(&before).expect("json");
    assert_eq!(before["state"], "awaiting_ack");

    // As the trusted receiving server hands it over (INCIDENCIAS_MAIL_AUTHSERV_ID below).
    let reply = format!(
        "Authentication-Results: mx.prueba.gob.mx; dmarc=pass header.from=sbd.gob.mx\r\n\
         From: Responsable <responsable@sbd.gob.mx>\r\n\
         To: Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>\r\n\
         Subject: Re: [{folio}] Notificacion de incidencia\r\n\
         Date: Tue, 01 Dec 2026 09:20:00 -0600\r\n\
         Message-ID: <enterado.1@sbd.gob.mx>\r\n\
         In-Reply-To: <{folio}.2.notification.0@incidencias.gob.mx>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Enterado, ya trabajamos en ello.\r\n"
    );
    let database = format!("sqlite://{}/data/demo.db", dir.path().display());
    let mut ingest = Command::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["--database-url", &database, "mail", "ingest"])
        .env("INCIDENCIAS_LOG", "warn")
        .env("INCIDENCIAS_MAIL_AUTHSERV_ID", "mx.prueba.gob.mx")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mail ingest");
    ingest
        .stdin
        .take()
        .expect("stdin")
        .write_all(reply.as_bytes())
        .expect("write the message");
    let out = ingest.wait_with_output().expect("mail ingest ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("acknowledged"),
        "mail ingest acknowledged: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, after) = http(&url, "GET", &path, Some(&agency), None);
    assert_eq!(status, 200);
    let after: Value = serde_json::from_str(&after).expect("json");
    assert_eq!(
        after["state"], "in_correction",
        "the server answers the other process's write at once, not its cached copy"
    );
    assert!(after["version"].as_u64() > before["version"].as_u64());
    assert_eq!(terminate(&mut server), Some(0));
}
