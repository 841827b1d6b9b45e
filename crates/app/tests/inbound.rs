//! Received email, as real clients write it: the corpus in `tests/inbound/*.eml` (Outlook,
//! Gmail, Thunderbird, Apple Mail, Zimbra, Mutt, auto-responders; quoted replies, HTML-only,
//! base64 and quoted-printable bodies, UTF-8 and ISO-8859-1 encoded words, attachments,
//! header injection) is ingested one message at a time, each against a fresh database in
//! which INC-2026-000001 has just been notified (awaiting acknowledgment). The outcome, the
//! folio and the side effects on the incident match `tests/inbound/expected.json`.
//!
//! Also: a 25 MB message is refused and changes nothing; malformed input neither panics nor
//! changes anything; the corpus covers every outcome.

mod common;

use std::path::{Path, PathBuf};

use common::TestDb;
use common::api::{Api, authenticated};
use incidencias::service::{InboundOutcome, ServiceError};
use serde::Deserialize;
use serde_json::{Value, json};

const FOLIO: &str = "INC-2026-000001";
const OUTCOMES: [&str; 5] = [
    "acknowledged",
    "resolution_notified",
    "recorded",
    "new_incident",
    "triage",
];

/// One entry of `expected.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    file: String,
    outcome: String,
    folio: Option<String>,
    why: String,
    /// For a resolution notice: a phrase of the new text the summary must hold.
    #[serde(default)]
    summary_contains: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("inbound")
}

fn expectations() -> Vec<Expected> {
    let path = corpus_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("expected.json is a list of {file, outcome, folio, why}")
}

fn read(file: &str) -> Vec<u8> {
    let path = corpus_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fresh database of the same backend as `url` (each message gets its own, so one that
/// acts does not change what the next one finds).
async fn fresh_db(url: &str) -> TestDb {
    if url.starts_with("sqlite:") {
        TestDb::sqlite()
    } else {
        TestDb::postgres()
            .await
            .expect("PostgreSQL answered for this test a moment ago")
    }
}

/// The seeded catalogue with INC-2026-000001 reported and notified (severity high), and
/// the clock five minutes later; returns the incident document as it stands.
async fn notified(url: &str) -> (Api, Value) {
    let api = Api::new(url).await;
    let folio = api.report().await;
    assert_eq!(folio, FOLIO, "the first incident's folio");
    api.step(FOLIO, "notify", &api.helpdesk, json!({"severity": "high"}))
        .await;
    api.advance(5 * 60);
    let doc = api.incident(FOLIO).await;
    assert_eq!(doc["state"], "awaiting_ack", "notified: {doc}");
    (api, doc)
}

/// What the incident and the list look like after `result`, compared with `before`;
/// the problems found, if any.
async fn side_effects(
    api: &Api,
    e: &Expected,
    result: &InboundOutcome,
    before: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let after = api.incident(FOLIO).await;
    let total = api.total().await;
    match e.outcome.as_str() {
        "acknowledged" => {
            if after["state"] != "in_correction" {
                problems.push(format!(
                    "state after acknowledgment is {}, expected in_correction",
                    after["state"]
                ));
            }
        }
        "resolution_notified" => {
            if after["state"] != "awaiting_validation" {
                problems.push(format!(
                    "state after resolution notice is {}, expected awaiting_validation",
                    after["state"]
                ));
            }
            let summary = after["rounds"][0]["summary"].as_str().unwrap_or_default();
            if let Some(phrase) = &e.summary_contains
                && !summary.contains(phrase.as_str())
            {
                problems.push(format!(
                    "resolution summary {summary:?} lacks the new text {phrase:?}"
                ));
            }
            // The quoted notification is not part of what the agency wrote.
            for quoted in [
                "Confirme de enterado",
                "Acciones requeridas",
                "Severidad: Alta",
            ] {
                if summary.contains(quoted) {
                    problems.push(format!(
                        "resolution summary holds the quoted text {quoted:?}: {summary:?}"
                    ));
                }
            }
        }
        _ => {
            if after["state"] != before["state"] || after["version"] != before["version"] {
                problems.push(format!(
                    "{} must not change the incident: state {} → {}, version {} → {}",
                    e.outcome, before["state"], after["state"], before["version"], after["version"]
                ));
            }
        }
    }
    if e.outcome == "new_incident" {
        if total != 2 {
            problems.push(format!("{total} incidents, expected 2 (a new one)"));
        }
        if let Some(folio) = &result.folio {
            let doc = api.incident(folio).await;
            if doc["channel"] != "email" {
                problems.push(format!("new incident's channel is {}", doc["channel"]));
            }
            if doc["state"] != "reported" {
                problems.push(format!("new incident's state is {}", doc["state"]));
            }
        }
    } else if total != 1 {
        problems.push(format!("{total} incidents, expected still 1"));
    }
    problems
}

/// Every message of the corpus, each on a fresh database.
async fn corpus_outcomes(url: String) {
    let expected = expectations();
    let mut failures = Vec::new();
    for e in &expected {
        let db = fresh_db(&url).await;
        let (api, before) = notified(&db.url).await;
        // As the trusted receiving server hands it over (authenticity is tried in
        // inbound_authenticity.rs): what each message says decides.
        let raw = authenticated(&read(&e.file));
        match api.service.ingest(&raw).await {
            Ok(result) => {
                let mut problems = Vec::new();
                if result.outcome.as_str() != e.outcome {
                    problems.push(format!(
                        "outcome {:?}, expected {:?} (reason: {:?})",
                        result.outcome, e.outcome, result.reason
                    ));
                }
                if result.folio != e.folio {
                    problems.push(format!("folio {:?}, expected {:?}", result.folio, e.folio));
                }
                problems.extend(side_effects(&api, e, &result, &before).await);
                if !problems.is_empty() {
                    failures.push(format!(
                        "{}: {}\n    why: {}",
                        e.file,
                        problems.join("; "),
                        e.why
                    ));
                }
            }
            Err(err) => failures.push(format!(
                "{}: ingest failed: {err:?}, expected {:?}\n    why: {}",
                e.file, e.outcome, e.why
            )),
        }
        drop(api);
        db.cleanup().await;
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages went wrong:\n  {}",
        failures.len(),
        expected.len(),
        failures.join("\n  ")
    );
}

/// A 25 MB message (a reply acknowledging the step-2 email with a large attachment) is
/// refused as invalid on the field `message`, and the incident does not change.
async fn oversized_message_is_refused(url: String) {
    let (api, before) = notified(&url).await;
    let mut raw = String::with_capacity(26 * 1024 * 1024);
    raw.push_str(
        "From: Responsable <responsable@sepru.gob.mx>\r\n\
         To: Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>\r\n\
         Subject: Re: [INC-2026-000001] Notificacion de incidencia, severidad Alta\r\n\
         Date: Fri, 27 Nov 2026 09:20:00 -0600\r\n\
         Message-ID: <grande.1@sepru.gob.mx>\r\n\
         In-Reply-To: <INC-2026-000001.3.notification.0@incidencias.gob.mx>\r\n\
         References: <INC-2026-000001.3.notification.0@incidencias.gob.mx>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"limite\"\r\n\
         \r\n\
         --limite\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Enterado.\r\n\
         --limite\r\n\
         Content-Type: application/octet-stream; name=\"respaldo.bin\"\r\n\
         Content-Disposition: attachment; filename=\"respaldo.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n",
    );
    // 76-character base64 lines (of 57 zero bytes each) up to 25 MB.
    let line = format!("{}\r\n", "A".repeat(76));
    while raw.len() < 25 * 1024 * 1024 {
        raw.push_str(&line);
    }
    raw.push_str("--limite--\r\n");
    match api.service.ingest(raw.as_bytes()).await {
        Err(ServiceError::Invalid(errors)) => assert!(
            errors.iter().any(|e| e.field == "message"),
            "the error names the field message: {errors:?}"
        ),
        other => panic!("a 25 MB message must be refused as invalid, got {other:?}"),
    }
    let after = api.incident(FOLIO).await;
    assert_eq!(after["state"], before["state"], "state unchanged");
    assert_eq!(after["version"], before["version"], "version unchanged");
    assert_eq!(api.total().await, 1, "no incident created");
}

/// Garbage and broken MIME: refused as invalid or sent to triage, never a panic, and
/// nothing changes.
async fn malformed_input_changes_nothing(url: String) {
    let (api, before) = notified(&url).await;
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("malformed.eml.txt", read("malformed.eml.txt")),
        ("empty", Vec::new()),
        ("NUL bytes", vec![0; 64]),
        ("only a blank line", b"\r\n\r\n".to_vec()),
        (
            "headers without a sender",
            b"Subject: [INC-2026-000001] Enterado\r\n\r\nEnterado.\r\n".to_vec(),
        ),
        (
            "sender without an address",
            b"From: Responsable\r\nSubject: Enterado\r\n\r\nEnterado.\r\n".to_vec(),
        ),
        (
            "multipart without a boundary, binary junk",
            b"From: responsable@sepru.gob.mx\r\n\
              Subject: falla\r\n\
              MIME-Version: 1.0\r\n\
              Content-Type: multipart/mixed\r\n\
              Content-Transfer-Encoding: base64\r\n\r\n\
              --\r\n\xff\xfe\x00\x01\x80\x81=?UTF-8?B?////?=\r\n--"
                .to_vec(),
        ),
    ];
    for (name, raw) in inputs {
        match api.service.ingest(&raw).await {
            Err(ServiceError::Invalid(_)) => {}
            Ok(o) => assert_eq!(
                o.outcome.as_str(),
                "triage",
                "{name}: malformed input is refused or goes to triage: {o:?}"
            ),
            Err(other) => panic!("{name}: malformed input is refused as invalid, got {other:?}"),
        }
        let after = api.incident(FOLIO).await;
        assert_eq!(after["state"], before["state"], "{name}: state unchanged");
        assert_eq!(
            after["version"], before["version"],
            "{name}: version unchanged"
        );
        assert_eq!(api.total().await, 1, "{name}: no incident created");
    }
}

/// The same message taken eight times at once (two instances reading one mailbox, the
/// MTA pipe and IMAP both delivering): one action, one record, every answer the same.
async fn the_same_message_taken_concurrently_acts_once(url: String) {
    let (api, before) = notified(&url).await;
    let ack = authenticated(&read("01-outlook-ack.eml"));
    let new_report = authenticated(&read("27-header-injection-new-incident.eml"));
    for (raw, outcome) in [(ack, "acknowledged"), (new_report, "new_incident")] {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (service, raw) = (api.service.clone(), raw.clone());
            tasks.push(tokio::spawn(async move { service.ingest(&raw).await }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("task").expect("ingest"));
        }
        assert!(
            answers
                .iter()
                .all(|a| a == &answers[0] && a.outcome.as_str() == outcome),
            "{outcome}: {answers:?}"
        );
    }
    let after = api.incident(FOLIO).await;
    assert_eq!(after["state"], "in_correction");
    assert_eq!(
        after["version"].as_u64(),
        before["version"].as_u64().map(|v| v + 1),
        "acknowledged once"
    );
    assert_eq!(api.total().await, 2, "one new incident, not eight");
    let received = api
        .store
        .list_inbound(None, None, 100)
        .await
        .expect("list inbound");
    assert_eq!(received.len(), 2, "one record per message: {received:?}");
}

on_both_backends!(
    the_same_message_taken_concurrently_acts_once,
    corpus_outcomes,
    oversized_message_is_refused,
    malformed_input_changes_nothing
);

/// The corpus is big enough, every file is listed once and exists, every outcome is
/// covered, and the messages use CRLF line endings as mail does.
#[test]
fn corpus_covers_every_outcome() {
    let expected = expectations();
    assert!(
        expected.len() >= 20,
        "at least 20 messages, found {}",
        expected.len()
    );
    for outcome in OUTCOMES {
        assert!(
            expected.iter().any(|e| e.outcome == outcome),
            "no message expects {outcome}"
        );
    }
    let mut listed = std::collections::BTreeSet::new();
    for e in &expected {
        assert!(
            OUTCOMES.contains(&e.outcome.as_str()),
            "{}: unknown outcome {}",
            e.file,
            e.outcome
        );
        assert!(!e.why.trim().is_empty(), "{}: explain why", e.file);
        assert!(listed.insert(e.file.clone()), "{} listed twice", e.file);
        if e.outcome != "triage" {
            assert!(
                e.folio.is_some(),
                "{}: {} is about a folio",
                e.file,
                e.outcome
            );
        }
        let raw = read(&e.file);
        assert!(
            raw.len() < 64 * 1024,
            "{}: keep corpus messages small",
            e.file
        );
        for (i, b) in raw.iter().enumerate() {
            if *b == b'\n' {
                assert!(
                    i > 0 && raw[i - 1] == b'\r',
                    "{}: bare LF at byte {i}; mail uses CRLF",
                    e.file
                );
            }
        }
    }
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    assert_eq!(
        on_disk, listed,
        "every .eml is in expected.json and vice versa"
    );
}
