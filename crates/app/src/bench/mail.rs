//! `incidencias bench mail`: draining the outbox to an SMTP server, against tight loops
//! sending the same messages directly over connections with `TCP_NODELAY` (the wire's own
//! limit, with one and with the pool's number of connections), and lettre's pooled
//! transport as the outbox used it before (its sockets lack `TCP_NODELAY`). Needs a
//! running SMTP server, e.g. `python3 -m aiosmtpd -n -l 127.0.0.1:2525`.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use jiff::Timestamp;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Scratch, invalid, median};
use crate::clock::SystemClock;
use crate::mail::smtp::SmtpTarget;
use crate::mail::worker::{MailSettings, OutboxWorker};
use crate::service::Service;
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct MailBench {
    /// SMTP server to send to.
    #[arg(long, default_value = "smtp://127.0.0.1:2525")]
    pub smtp_url: String,
    /// Messages per measurement.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Conexiones SMTP simultáneas de la bandeja y de la línea base.
    #[arg(long, default_value_t = crate::mail::worker::CONNECTIONS)]
    pub connections: usize,
    /// Mensajes por ronda del camino anterior (lettre con sus propios sockets, ~20/s).
    #[arg(long, default_value_t = 200)]
    pub legacy_messages: usize,
}

/// A store whose outbox holds `n` notification emails, one incident each.
async fn queued(url: &str, n: usize) -> Result<Store, StoreError> {
    let store = Store::open(url).await?;
    let now = Timestamp::now().as_millisecond();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let ids: Vec<usize> = chunk.to_vec();
        store
            .write(move |conn| {
                Box::pin(async move {
                    for i in ids {
                        let folio = format!("INC-2026-{:06}", i + 1);
                        let payload = serde_json::json!({
                            "folio": folio, "severity": "high",
                            "procedures": "BENCH-01-001 Trámite de prueba",
                            "ack_due_at": "2026-11-27T15:30:00Z",
                            "resolution_due_at": "2026-11-27T19:00:00Z",
                        });
                        sqlx::query(
                            "INSERT INTO outbox (folio, seq, kind, recipients, payload, message_id, \
                             state, attempts, next_attempt_at, created_at) \
                             VALUES (NULL, 3, 'notification', $1, $2, $3, 'pending', 0, $4, $4)",
                        )
                        .bind(r#"{"to":["responsable@bench.gob.mx"],"cc":[]}"#.to_string())
                        .bind(payload.to_string())
                        .bind(format!("<{folio}.3.notification.0@incidencias.gob.mx>"))
                        .bind(now)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    }
                    Ok(())
                })
            })
            .await?;
    }
    Ok(store)
}

/// Sends `messages` over `connections` connections the bench opens itself (with
/// `TCP_NODELAY`), each connection a tight loop over its share: the wire's own limit.
async fn raw_loop(
    target: &SmtpTarget,
    messages: &[lettre::Message],
    connections: usize,
) -> Result<f64, StoreError> {
    let share = messages.len().div_ceil(connections.max(1)).max(1);
    let start = Instant::now();
    let loops = messages.chunks(share).map(|chunk| async move {
        let mut conn = target
            .connect(std::time::Duration::from_secs(20))
            .await
            .map_err(invalid)?;
        for m in chunk {
            conn.send(m.envelope(), &m.formatted())
                .await
                .map_err(invalid)?;
        }
        Ok::<(), StoreError>(())
    });
    for r in futures_util::future::join_all(loops).await {
        r?;
    }
    Ok(messages.len() as f64 / start.elapsed().as_secs_f64())
}

/// The rendered messages of a fresh outbox of `n` rows (claimed and let go).
async fn rendered(n: usize, settings: &MailSettings) -> Result<Vec<lettre::Message>, StoreError> {
    let scratch = Scratch::new("mail-direct")?;
    let store = queued(&scratch.url(), n).await?;
    let service = Service::new(store.clone(), Arc::new(SystemClock));
    let rows = service
        .claim_mail(
            "baseline",
            jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
            n as i64,
            &settings.base_url,
        )
        .await
        .map_err(invalid)?;
    let worker = OutboxWorker::new(service, settings).map_err(invalid)?;
    let messages = rows
        .iter()
        .map(|r| worker.message_for(r))
        .collect::<Result<_, _>>()
        .map_err(invalid)?;
    store.close().await;
    Ok(messages)
}

/// The outbox worker with `connections`: claim, render, send, mark sent (durably).
async fn drained(n: usize, settings: &MailSettings, connections: usize) -> Result<f64, StoreError> {
    let scratch = Scratch::new("mail-outbox")?;
    let store = queued(&scratch.url(), n).await?;
    let worker = OutboxWorker::new(Service::new(store.clone(), Arc::new(SystemClock)), settings)
        .map_err(invalid)?
        .with_connections(connections);
    let start = Instant::now();
    let sent = worker.drain().await.map_err(invalid)?;
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    store.close().await;
    if sent != n {
        return Err(invalid(format!("la bandeja envió {sent} de {n}")));
    }
    Ok(rate)
}

pub async fn mail_bench(args: MailBench) -> Result<i32, StoreError> {
    let settings = MailSettings {
        smtp_url: args.smtp_url.clone(),
        from: "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>".into(),
        reply_to: None,
        base_url: "https://incidencias.gob.mx".into(),
        ca_pem: None,
    };
    let target = SmtpTarget::from_settings(&settings).map_err(invalid)?;
    let n = args.messages;
    let pool = args.connections.max(1);
    let legacy_n = n.min(args.legacy_messages);
    // name, messages per round, rates per round
    let mut rows: Vec<(String, usize, Vec<f64>)> = vec![
        (
            "lettre's pooled transport, its own sockets (no TCP_NODELAY; the old path)".into(),
            legacy_n,
            Vec::new(),
        ),
        (
            "raw loop: lettre connection, TCP_NODELAY, 1 connection".into(),
            n,
            Vec::new(),
        ),
        (
            format!("raw loop: lettre connection, TCP_NODELAY, {pool} connections (baseline)"),
            n,
            Vec::new(),
        ),
        ("outbox drain, 1 connection".into(), n, Vec::new()),
        (format!("outbox drain, {pool} connections"), n, Vec::new()),
    ];
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        let messages = rendered(n, &settings).await?;
        if legacy_n > 0 {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&args.smtp_url)
                .map_err(invalid)?
                .build();
            let start = Instant::now();
            for m in messages.iter().take(legacy_n) {
                transport.send(m.clone()).await.map_err(invalid)?;
            }
            rows[0]
                .2
                .push(legacy_n as f64 / start.elapsed().as_secs_f64());
        }
        rows[1].2.push(raw_loop(&target, &messages, 1).await?);
        rows[2].2.push(raw_loop(&target, &messages, pool).await?);
        rows[3].2.push(drained(n, &settings, 1).await?);
        rows[4].2.push(drained(n, &settings, pool).await?);
    }
    println!(
        "| measurement | messages | msg/s (median of {}) | per round |",
        args.rounds
    );
    println!("|---|---|---|---|");
    for (name, count, rates) in &rows {
        if rates.is_empty() {
            continue;
        }
        let each = rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {name} | {count} | {:.0} | {each} |",
            median(rates.clone())
        );
    }
    let m = |i: usize| median(rows[i].2.clone());
    if m(2) > 0.0 && m(1) > 0.0 {
        println!(
            "\nratio outbox drain / raw loop: {:.2} with {pool} connections, {:.2} with 1",
            m(4) / m(2),
            m(3) / m(1)
        );
    }
    if m(0) > 0.0 {
        println!(
            "outbox drain ({pool} connections) / lettre's transport (old path): {:.1}x",
            m(4) / m(0)
        );
    }
    Ok(0)
}
