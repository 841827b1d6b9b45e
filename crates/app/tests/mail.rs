//! Outbound email against a real SMTP server process (Python's aiosmtpd writing a
//! Maildir): the messages of a whole protocol run arrive with the right recipients,
//! subjects and Spanish bodies; with the server down for a while, every message still
//! arrives once, per incident in order; text people type cannot add a header or a
//! recipient.
//!
//! The server is `python3 -m aiosmtpd` (`INCIDENCIAS_TEST_PYTHON` names another Python).
//! Outside CI, without aiosmtpd these tests say so loudly and pass; with CI=true they fail.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use common::api::Api;
use incidencias::mail::worker::{MailSettings, OutboxWorker};
use incidencias::store::OutboxState;
use mail_parser::MessageParser;
use serde_json::json;

struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("INCIDENCIAS_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts aiosmtpd on `port` writing to `maildir`; `None` (after a loud notice) when it is
/// not installed outside CI.
fn start_smtp(maildir: &Path, port: u16) -> Option<Smtp> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let available = Process::new(python())
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and aiosmtpd is not installed (.ci/run installs it)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: mail test needs aiosmtpd (pip install aiosmtpd==1.4.6)"
        );
        return None;
    }
    let mut child = Process::new(python())
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    // Ready when it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Smtp {
                child,
                port,
                maildir: maildir.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("aiosmtpd did not start on port {port}");
}

/// A received message: headers that matter and the plain body.
#[derive(Debug)]
struct Received {
    message_id: String,
    subject: String,
    to: Vec<String>,
    cc: Vec<String>,
    text: String,
    html: String,
    auto_submitted: String,
    /// Every header name, as sent.
    header_names: Vec<String>,
    /// The envelope recipients, as aiosmtpd's Mailbox records them (`X-RcptTo`).
    envelope_to: String,
}

fn received(maildir: &Path) -> Vec<Received> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return out;
    };
    for entry in entries.flatten() {
        let raw = std::fs::read(entry.path()).expect("read message");
        let m = MessageParser::default().parse(&raw).expect("parse message");
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        };
        out.push(Received {
            message_id: m.message_id().unwrap_or_default().to_string(),
            subject: m.subject().unwrap_or_default().to_string(),
            to: addrs(m.to()),
            cc: addrs(m.cc()),
            text: m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
            html: m
                .html_part(0)
                .and_then(|p| p.text_contents())
                .unwrap_or_default()
                .to_string(),
            auto_submitted: m
                .header_raw("Auto-Submitted")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            header_names: m.headers().iter().map(|h| h.name().to_string()).collect(),
            envelope_to: m
                .header_raw("X-RcptTo")
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
        });
    }
    out
}

/// The signed part of an action link (`…/acciones/<token>`) changes with every key; the
/// rest of a message is a pure function of the protocol run and the manual clock.
fn redact_links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/acciones/") {
        let (before, after) = rest.split_at(i + "/acciones/".len());
        out.push_str(before);
        out.push_str("[firma]");
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\''))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every message of a run, in the order the protocol produced them (our Message-IDs carry
/// the event's sequence number), as one reviewable text.
/// A Message-ID as stored in the outbox: without the mark it was sent with (96 bits of
/// HMAC under the database's own link secret, so different on every run).
fn unmarked(id: &str) -> String {
    let id = id.trim_matches(['<', '>']);
    let Some((local, domain)) = id.rsplit_once('@') else {
        return id.to_string();
    };
    match local.rsplit_once('.') {
        Some((base, mark)) if mark.len() == 24 && mark.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{base}@{domain}")
        }
        _ => id.to_string(),
    }
}

fn transcript(mail: &[Received]) -> String {
    let order = |m: &Received| {
        let mut parts = m.message_id.trim_matches(['<', '>']).split('.');
        let _folio = parts.next();
        let seq: u64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        (seq, m.message_id.clone())
    };
    let mut sorted: Vec<&Received> = mail.iter().collect();
    sorted.sort_by_key(|m| order(m));
    let mut out = String::new();
    for (i, m) in sorted.iter().enumerate() {
        out.push_str(&format!(
            "══════ {} de {}\nMessage-ID: {}\nSubject: {}\nTo: {}\nCc: {}\n────── texto\n{}\n────── html\n{}\n",
            i + 1,
            sorted.len(),
            unmarked(&m.message_id),
            m.subject,
            m.to.join(", "),
            m.cc.join(", "),
            redact_links(m.text.trim_end()),
            redact_links(m.html.trim_end()),
        ));
    }
    out
}

/// A test certificate authority and a server certificate it signed for 127.0.0.1, made
/// with the openssl command: (CA PEM, server cert path, server key path).
fn test_certificates(dir: &Path) -> (Vec<u8>, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Process::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (Debian's openssl package)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Autoridad de pruebas",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        std::fs::read(dir.join("ca.pem")).expect("read CA"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// tests/smtp_tls_server.py: aiosmtpd with TLS (`starttls` or `tls`) and AUTH required.
fn start_tls_smtp(mode: &str, port: u16, maildir: &Path, cert: &Path, key: &Path) -> Smtp {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_tls_server.py");
    let mut child = Process::new(python())
        .arg(script)
        .args([mode, &port.to_string()])
        .args([maildir, cert, key])
        .args(["mesa@ugd.gob.mx", "clave-de-prueba"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtp_tls_server.py");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Smtp {
                child,
                port,
                maildir: maildir.to_path_buf(),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("smtp_tls_server.py did not start on port {port}");
}

fn worker_with(api: &Api, smtp_url: String, ca_pem: Option<Vec<u8>>) -> OutboxWorker {
    OutboxWorker::new(
        api.service.clone(),
        &MailSettings {
            smtp_url,
            from: "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>".into(),
            reply_to: None,
            base_url: "https://incidencias.gob.mx".into(),
            ca_pem,
        },
    )
    .expect("worker")
}

/// STARTTLS and TLS from the first byte, each with credentials: a server whose authority
/// is not trusted gets nothing (not even the password), wrong credentials send nothing,
/// and with the authority from INCIDENCIAS_TLS_CA_FILE every message arrives.
async fn smtp_over_starttls_and_tls_with_credentials(url: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Checks aiosmtpd is there (or skips loudly); the plain server is not used further.
    let Some(_plain) = start_smtp(&dir.path().join("plain"), free_port()) else {
        return;
    };
    let (ca, cert, key) = test_certificates(dir.path());
    let api = Api::new(&url).await;
    for (mode, scheme, query) in [("starttls", "smtp", "?tls=required"), ("tls", "smtps", "")] {
        let port = free_port();
        let smtp = start_tls_smtp(mode, port, &dir.path().join(mode), &cert, &key);
        let folio = whole_protocol(&api).await;
        let pending = |api: &Api| {
            let store = api.store.clone();
            async move {
                store
                    .list_outbox(Some(OutboxState::Pending), 100)
                    .await
                    .expect("outbox")
            }
        };
        let queued = pending(&api).await.len();
        assert!(
            queued >= 9,
            "{mode}: a whole run queues its messages ({queued})"
        );
        let good = format!("{scheme}://mesa%40ugd.gob.mx:clave-de-prueba@127.0.0.1:{port}{query}");
        let bad = format!("{scheme}://mesa%40ugd.gob.mx:otra@127.0.0.1:{port}{query}");

        let sent = worker_with(&api, good.clone(), None)
            .drain()
            .await
            .expect("drain");
        assert_eq!(sent, 0, "{mode}: an unknown authority gets nothing");
        assert!(received(&smtp.maildir).is_empty());
        let rows = pending(&api).await;
        assert!(
            rows.iter()
                .any(|r| r.last_error.as_deref().is_some_and(|e| !e.is_empty())),
            "{mode}: the failure is kept on the row: {:?}",
            rows.iter().map(|r| &r.last_error).collect::<Vec<_>>()
        );

        api.advance(3600);
        let sent = worker_with(&api, bad, Some(ca.clone()))
            .drain()
            .await
            .expect("drain");
        assert_eq!(sent, 0, "{mode}: wrong credentials send nothing");
        assert!(received(&smtp.maildir).is_empty());

        api.advance(3600);
        let mut delivered = 0;
        // One message per incident per pass (mail goes out in order per incident).
        for _ in 0..30 {
            delivered += worker_with(&api, good.clone(), Some(ca.clone()))
                .drain()
                .await
                .expect("drain");
            if pending(&api).await.is_empty() {
                break;
            }
        }
        let mail = received(&smtp.maildir);
        assert_eq!(mail.len(), delivered, "{mode}");
        assert_eq!(mail.len(), queued, "{mode}: every queued message arrived");
        assert!(
            mail.iter()
                .all(|m| m.subject.starts_with(&format!("[{folio}] "))),
            "{mode}"
        );
    }
}

/// A server that accepts connections and never says a word (a hung relay): each message
/// costs one bounded attempt, kept on its row, and the worker goes on.
async fn a_server_that_never_answers_costs_one_bounded_attempt(url: String) {
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
    let api = Api::new(&url).await;
    let folio = api.report().await;
    let started = std::time::Instant::now();
    let sent = worker(&api, port)
        .with_send_timeout(Duration::from_secs(1))
        .drain()
        .await
        .expect("drain");
    let took = started.elapsed();
    assert_eq!(sent, 0);
    assert!(took < Duration::from_secs(15), "bounded: {took:?}");
    let rows = api
        .store
        .list_outbox(Some(OutboxState::Pending), 10)
        .await
        .expect("outbox");
    let row = rows
        .iter()
        .find(|r| r.folio.as_deref() == Some(folio.as_str()))
        .expect("the message is still queued");
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("dejó de responder")),
        "{:?}",
        row.last_error
    );
}

fn worker(api: &Api, port: u16) -> OutboxWorker {
    OutboxWorker::new(
        api.service.clone(),
        &MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{port}"),
            from: "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>".into(),
            reply_to: Some("mesa@ugd.gob.mx".into()),
            base_url: "https://incidencias.gob.mx".into(),
            ca_pem: None,
        },
    )
    .expect("worker")
}

/// Runs an incident through the whole protocol; returns its folio.
async fn whole_protocol(api: &Api) -> String {
    let folio = api.report().await;
    api.step(
        &folio,
        "notify",
        &api.helpdesk,
        json!({"severity": "critical"}),
    )
    .await;
    api.advance(60);
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.step(&folio, "banner", &api.agency, json!({"shown": true}))
        .await;
    api.advance(600);
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Certificado renovado"}),
    )
    .await;
    api.advance(60);
    api.step(
        &folio,
        "validation",
        &api.validator,
        json!({"passed": true}),
    )
    .await;
    api.step(&folio, "banner", &api.agency, json!({"shown": false}))
        .await;
    let now = api.clock_now();
    let form = json!({
        "detected_at": (now - jiff::SignedDuration::from_mins(12)).to_string(),
        "restored_at": (now - jiff::SignedDuration::from_mins(2)).to_string(),
        "symptoms": "Error 500", "impact": "300 usuarios", "root_cause": "Certificado vencido",
        "actions_taken": ["Renovación"], "verification": "Prueba", "preventive_actions": "Alerta",
        "prepared_by_name": "Ana López", "prepared_by_position": "Directora"
    });
    let put = api
        .call(
            axum::http::Method::PUT,
            &format!("/api/v1/incidents/{folio}/report-form"),
            &api.agency,
            Some(form),
        )
        .await;
    assert_eq!(put.status, axum::http::StatusCode::OK, "{}", put.text);
    api.step(
        &folio,
        "report-form/review",
        &api.helpdesk,
        json!({"complete": true}),
    )
    .await;
    api.step(&folio, "close", &api.helpdesk, json!({})).await;
    folio
}

async fn a_whole_protocol_run_mails_every_step_to_the_right_people(url: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let Some(smtp) = start_smtp(&dir.path().join("maildir"), port) else {
        return;
    };
    let api = Api::new(&url).await;
    let folio = whole_protocol(&api).await;
    let sent = worker(&api, smtp.port).drain().await.expect("drain");
    let mail = received(&smtp.maildir);
    assert_eq!(mail.len(), sent, "every sent message arrived");
    let by_subject: HashMap<String, &Received> =
        mail.iter().map(|m| (m.subject.clone(), m)).collect();
    let find = |title: &str| {
        by_subject
            .get(&format!("[{folio}] {title}"))
            .copied()
            .unwrap_or_else(|| panic!("no «{title}» among {:?}", by_subject.keys()))
    };
    let responsible = "responsable@sepru.gob.mx".to_string();
    let helpdesk = "mesa@ugd.gob.mx".to_string();
    let notification = find("Notificación de incidencia, severidad Crítica");
    assert_eq!(notification.to, vec![responsible.clone()]);
    assert!(
        notification.text.contains("confirmando de enterado"),
        "{}",
        notification.text
    );
    assert!(notification.text.contains("(hora del centro de México)"));
    assert_eq!(find("Incidencia reportada").to, vec![helpdesk.clone()]);
    assert_eq!(
        find("Confirmación de enterado recibida").to,
        vec![helpdesk.clone()]
    );
    assert_eq!(find("Aviso de resolución").to, vec![helpdesk.clone()]);
    let validation = find("Solicitud de validación de normas y estándares");
    assert_eq!(validation.to, ["cedn@ugd.gob.mx".to_string()]);
    assert_eq!(validation.cc, vec![helpdesk.clone()]);
    let passed = find("Validación exitosa");
    assert_eq!(passed.to, vec![responsible.clone()]);
    assert!(passed.text.contains("retirar la cortinilla"));
    assert_eq!(find("Formato de incidencias entregado").to, [helpdesk]);
    assert_eq!(find("Cierre de la incidencia").to, [responsible]);
    // Each message once, with the Message-ID its outbox row fixed.
    let ids: std::collections::HashSet<&str> = mail.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), mail.len());
    assert!(
        mail.iter()
            .all(|m| m.message_id.ends_with("@incidencias.gob.mx"))
    );
    // Each sent with its mark, which a reply names to prove it answers what we sent.
    assert!(
        mail.iter()
            .all(|m| unmarked(&m.message_id) != m.message_id.trim_matches(['<', '>'])),
        "every Message-ID carries its mark: {:?}",
        mail.iter().map(|m| &m.message_id).collect::<Vec<_>>()
    );
    assert!(
        mail.iter().all(|m| m.auto_submitted == "auto-generated"),
        "marked as automatic, so responders do not answer"
    );
    // The whole run as people read it: reviewed once, then any change to a recipient, a
    // subject or a word of a body shows up as a diff. Same snapshot on both backends.
    insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("whole_protocol_run_messages", transcript(&mail));
    });
}

async fn with_smtp_down_for_a_while_every_message_still_arrives_once_in_order(url: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let api = Api::new(&url).await;
    let folio = whole_protocol(&api).await;
    let worker = worker(&api, port);
    // Nobody listens: every first attempt fails and is put off with backoff.
    let first = worker.drain().await.expect("drain while down");
    assert_eq!(first, 0);
    let Some(smtp) = start_smtp(&dir.path().join("maildir"), port) else {
        return;
    };
    // Before the backoff ends nothing is retried; after it, everything goes.
    assert_eq!(worker.drain().await.expect("drain"), 0);
    let mut total = 0;
    for _ in 0..20 {
        api.advance(3600);
        total += worker.drain().await.expect("drain");
    }
    let queued = api
        .store
        .list_outbox(None, 1000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| r.folio.as_deref() == Some(folio.as_str()))
        .collect::<Vec<_>>();
    assert!(
        queued.iter().all(|r| r.state == OutboxState::Sent),
        "{queued:?}"
    );
    let mail = received(&smtp.maildir);
    assert_eq!(mail.len(), total);
    assert_eq!(mail.len(), queued.len(), "none missing, none twice");
    // Per incident in order: arrival order follows the outbox order.
    let mut arrived: Vec<(std::time::SystemTime, String)> =
        std::fs::read_dir(smtp.maildir.join("new"))
            .expect("maildir")
            .flatten()
            .map(|e| {
                let raw = std::fs::read(e.path()).expect("read");
                let id = MessageParser::default()
                    .parse(&raw)
                    .and_then(|m| m.message_id().map(str::to_string))
                    .unwrap_or_default();
                (e.metadata().and_then(|m| m.modified()).expect("mtime"), id)
            })
            .collect();
    arrived.sort();
    let mut expected: Vec<(i64, String)> = queued
        .iter()
        .map(|r| (r.id, r.message_id.clone()))
        .collect();
    expected.sort();
    let expected_ids: Vec<String> = expected
        .into_iter()
        .map(|(_, m)| m.trim_matches(|c| c == '<' || c == '>').to_string())
        .collect();
    let arrived_ids: Vec<String> = arrived.into_iter().map(|(_, m)| unmarked(&m)).collect();
    assert_eq!(arrived_ids, expected_ids);
}

/// Text that people type (a description, a resolution summary) carrying CR/LF and header
/// lines reaches the SMTP server as text: no added header, no added recipient.
async fn typed_text_cannot_add_headers_or_recipients(url: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let Some(smtp) = start_smtp(&dir.path().join("maildir"), port) else {
        return;
    };
    let api = Api::new(&url).await;
    let injected = "Falla\r\nBcc: intruso@example.com\r\nSubject: Falso\r\n\r\nCuerpo falso";
    let occurred = api.clock_now() - jiff::SignedDuration::from_mins(5);
    let created = api
        .post(
            "/api/v1/incidents",
            &api.helpdesk,
            json!({"procedure_ids": [api.procedure], "kind": "unavailable",
                   "description": injected, "occurred_at": occurred.to_string(), "channel": "phone"}),
        )
        .await;
    assert_eq!(
        created.status,
        axum::http::StatusCode::CREATED,
        "{}",
        created.text
    );
    let folio = created.field("folio").as_str().expect("folio").to_string();
    api.step(&folio, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.step(&folio, "acknowledge", &api.agency, json!({}))
        .await;
    api.step(
        &folio,
        "resolution",
        &api.agency,
        json!({"summary": "Listo\nCc: intruso@example.com\nX-Priority: 1"}),
    )
    .await;
    let sent = worker(&api, smtp.port).drain().await.expect("drain");
    let mail = received(&smtp.maildir);
    assert_eq!(mail.len(), sent);
    assert!(
        mail.len() >= 4,
        "reported, notification, ack, resolution: {}",
        mail.len()
    );
    for m in &mail {
        assert!(
            !m.header_names
                .iter()
                .any(|h| h.eq_ignore_ascii_case("Bcc") || h.eq_ignore_ascii_case("X-Priority")),
            "{}: injected header among {:?}",
            m.subject,
            m.header_names
        );
        assert_eq!(
            m.header_names
                .iter()
                .filter(|h| h.eq_ignore_ascii_case("Subject"))
                .count(),
            1,
            "one Subject: {:?}",
            m.header_names
        );
        assert!(
            m.subject.starts_with(&format!("[{folio}] ")),
            "{}",
            m.subject
        );
        assert!(
            !m.envelope_to.contains("intruso") && !m.cc.iter().any(|c| c.contains("intruso")),
            "{}: envelope {} cc {:?}",
            m.subject,
            m.envelope_to,
            m.cc
        );
        assert!(!m.envelope_to.is_empty(), "aiosmtpd records the envelope");
    }
    // The text is still there for the reader, as text.
    let reported = mail
        .iter()
        .find(|m| m.subject.ends_with("Incidencia reportada"))
        .expect("reported message");
    assert!(
        reported.text.contains("Bcc: intruso@example.com"),
        "{}",
        reported.text
    );
}

on_both_backends!(
    a_server_that_never_answers_costs_one_bounded_attempt,
    smtp_over_starttls_and_tls_with_credentials,
    typed_text_cannot_add_headers_or_recipients,
    a_whole_protocol_run_mails_every_step_to_the_right_people,
    with_smtp_down_for_a_while_every_message_still_arrives_once_in_order,
);
