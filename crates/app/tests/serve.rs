//! The binary as a newcomer and an operator run it: `demo` serves seeded data whose
//! printed credentials work; `serve` refuses a second server on one SQLite file and
//! stops cleanly on SIGTERM; the mailbox named by INCIDENCIAS_IMAP_URL is read, and a
//! malformed one stops the start.

use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::process::{Demo, http, read_until, spawn, spawn_with, terminate, token_in};

#[test]
fn demo_serves_seeded_data_and_the_printed_credentials_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Demo {
        mut child,
        url,
        lines,
    } = Demo::start(dir.path());
    let token_of = |email: &str| token_in(&lines, email);
    let helpdesk = token_of("mesa@ugd.gob.mx");
    let agency = token_of("responsable@sbd.gob.mx");
    let password = lines
        .iter()
        .find_map(|l| l.split("Contraseña de todos los usuarios: ").nth(1))
        .expect("the password is printed")
        .trim()
        .to_string();

    let (status, body) = http(
        &url,
        "GET",
        "/api/v1/incidents?per_page=100",
        Some(&helpdesk),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(list["total"], 20, "about twenty incidents");
    let states: std::collections::BTreeSet<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["state"].as_str())
        .collect();
    for state in [
        "reported",
        "awaiting_ack",
        "in_correction",
        "awaiting_validation",
        "validated",
        "closed",
        "dismissed",
    ] {
        assert!(
            states.contains(state),
            "a demo incident is {state}: {states:?}"
        );
    }
    let (status, body) = http(
        &url,
        "GET",
        "/api/v1/incidents?per_page=100",
        Some(&agency),
        None,
    );
    assert_eq!(status, 200);
    let own: Value = serde_json::from_str(&body).expect("json");
    let total = own["total"].as_u64().expect("total");
    assert!(
        total > 0 && total < 20,
        "an agency sees only its own: {total}"
    );
    let login = format!("{{\"email\":\"mesa@ugd.gob.mx\",\"password\":\"{password}\"}}");
    let (status, body) = http(&url, "POST", "/api/v1/login", None, Some(&login));
    assert_eq!(status, 200, "printed password works: {body}");
    assert_eq!(terminate(&mut child), Some(0), "stops cleanly on SIGTERM");
}

#[test]
fn a_second_server_on_one_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = spawn(dir.path(), &["serve", "--bind", "127.0.0.1:0"]);
    let lines = read_until(&mut first, |l| {
        l.iter().any(|x| x.contains("escuchando en"))
    });
    let url = lines
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address printed")
        .to_string();
    let (status, _) = http(&url, "GET", "/readyz", None, None);
    assert_eq!(status, 200);
    let second = Command::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .output()
        .expect("run second server");
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("otro proceso de incidencias ya está sirviendo"),
        "{err}"
    );
    assert_eq!(terminate(&mut first), Some(0));
}

/// The help desk's mailbox configured by INCIDENCIAS_IMAP_URL: a message waiting there is
/// taken by the running service (listed for the help desk), and SIGTERM still stops it
/// cleanly while it sits in IDLE.
#[test]
fn the_service_reads_the_help_desk_mailbox_named_by_incidencias_imap_url() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let settings = common::imap::settings_for("serve");
    let Some(mut mailbox) = rt.block_on(common::imap::client(&settings)) else {
        return;
    };
    let message = b"From: Ciudadano <ciudadano@ejemplo.com>\r\nTo: mesa@ugd.gob.mx\r\n\
                    Subject: No puedo pagar mi derecho\r\nMessage-ID: <c-1@ejemplo.com>\r\n\r\n\
                    El pago en linea no funciona.\r\n";
    rt.block_on(common::imap::deliver(&mut mailbox, message));
    let imap_url = format!(
        "imap://{}:{}@{}:{}/INBOX",
        settings.user, settings.password, settings.host, settings.port
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // The most talkative logging there is, async-imap's own stream included: the IMAP
    // password (sent in LOGIN) must still not appear.
    let mut child = spawn_with(
        dir.path(),
        &["demo", "--bind", "127.0.0.1:0"],
        &[
            ("INCIDENCIAS_IMAP_URL", imap_url.as_str()),
            ("INCIDENCIAS_LOG", "trace,async_imap::imap_stream=trace"),
        ],
    );
    // Logs go to stderr: read all of it, to the end (a full pipe would stall the child).
    let stderr = child.stderr.take().expect("stderr");
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("stdout");
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut o) = output.lock() {
                    o.push(line);
                }
            }
        })
    };
    let started = Instant::now();
    let lines = loop {
        let lines = output.lock().map(|o| o.clone()).unwrap_or_default();
        if lines.iter().any(|x| x.starts_with("Ejemplo:")) {
            break lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "demo did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("incidencias (demostración) en http://"))
        .expect("the URL is printed")
        .to_string();
    let helpdesk = lines
        .iter()
        .find(|l| l.starts_with("mesa@ugd.gob.mx"))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("the help desk's token is printed")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let triage = loop {
        let (status, body) = http(
            &url,
            "GET",
            "/api/v1/inbound-email?outcome=triage",
            Some(&helpdesk),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).expect("json");
        if list.as_array().is_some_and(|a| !a.is_empty()) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the mailbox was not read in 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(triage[0]["subject"], "No puedo pagar mi derecho");
    assert_eq!(triage[0]["sender"], "ciudadano@ejemplo.com");
    assert_eq!(
        terminate(&mut child),
        Some(0),
        "stops cleanly while in IDLE"
    );
    reader.join().expect("stdout reader");
    let logs = logs.join().expect("stderr reader");
    assert!(logs.contains("buzón IMAP abierto"), "trace logging was on");
    assert!(
        !logs.contains(settings.password.as_str()),
        "the IMAP password never reaches the logs"
    );
    let seen = rt.block_on(common::imap::count(&mut mailbox, "SEEN"));
    assert_eq!(seen, 1, "the message was flagged as read");
}

#[test]
fn a_malformed_imap_url_stops_the_start_with_a_spanish_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .env("INCIDENCIAS_IMAP_URL", "pop3://mesa:clave@correo.gob.mx")
        .output()
        .expect("run serve");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INCIDENCIAS_IMAP_URL") && err.contains("imap:// o imaps://"),
        "{err}"
    );
    assert!(!err.contains("clave"), "the password is not echoed: {err}");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(!out.contains("escuchando"), "nothing was served: {out}");
}

#[test]
fn a_ca_file_without_certificates_stops_the_start_with_a_spanish_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("autoridad.pem");
    std::fs::write(&ca, "esto no es un certificado\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .env("INCIDENCIAS_SMTP_URL", "smtp://127.0.0.1:2525?tls=required")
        .env("INCIDENCIAS_TLS_CA_FILE", &ca)
        .output()
        .expect("run serve");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("INCIDENCIAS_TLS_CA_FILE")
            && err.contains("autoridad.pem")
            && err.contains("no contiene ningún certificado PEM"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("escuchando"));
}
