//! `incidencias bench mail`: draining the outbox to an SMTP server, against a tight loop
//! of lettre sending the same messages directly (the transport's own limit). Needs a
//! running SMTP server, e.g. `python3 -m aiosmtpd -n -l 127.0.0.1:2525`.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use jiff::Timestamp;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Scratch, invalid, median};
use crate::clock::SystemClock;
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

pub async fn mail_bench(args: MailBench) -> Result<i32, StoreError> {
    let settings = MailSettings {
        smtp_url: args.smtp_url.clone(),
        from: "Mesa de ayuda gob.mx <mesa@incidencias.gob.mx>".into(),
        reply_to: None,
        base_url: "https://incidencias.gob.mx".into(),
        ca_pem: None,
    };
    let mut outbox_rates = Vec::new();
    let mut direct_rates = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("ronda {round}/{}...", args.rounds);
        // Baseline: the same rendered messages, sent by lettre in a tight loop.
        let scratch = Scratch::new("mail-direct")?;
        let store = queued(&scratch.url(), args.messages).await?;
        let service = Service::new(store.clone(), Arc::new(SystemClock));
        let rows = service
            .claim_mail(
                "baseline",
                jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
                args.messages as i64,
                &settings.base_url,
            )
            .await
            .map_err(invalid)?;
        let worker = OutboxWorker::new(service, &settings).map_err(invalid)?;
        let messages: Vec<_> = rows
            .iter()
            .map(|r| worker.message_for(r))
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
        store.close().await;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&args.smtp_url)
            .map_err(invalid)?
            .build();
        let start = Instant::now();
        for m in messages {
            transport.send(m).await.map_err(invalid)?;
        }
        direct_rates.push(args.messages as f64 / start.elapsed().as_secs_f64());

        // The outbox worker: claim, render, send, mark sent (durably) per message.
        let scratch = Scratch::new("mail-outbox")?;
        let store = queued(&scratch.url(), args.messages).await?;
        let worker = OutboxWorker::new(
            Service::new(store.clone(), Arc::new(SystemClock)),
            &settings,
        )
        .map_err(invalid)?;
        let start = Instant::now();
        let sent = worker.drain().await.map_err(invalid)?;
        outbox_rates.push(sent as f64 / start.elapsed().as_secs_f64());
        store.close().await;
    }
    let (direct, outbox) = (median(direct_rates.clone()), median(outbox_rates.clone()));
    println!(
        "| measurement ({} messages) | msg/s (median of {}) | per round |",
        args.messages, args.rounds
    );
    println!("|---|---|---|");
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| lettre tight loop (baseline) | {direct:.0} | {} |",
        fmt(&direct_rates)
    );
    println!(
        "| outbox drain (lease, render, send, mark sent) | {outbox:.0} | {} |",
        fmt(&outbox_rates)
    );
    if direct > 0.0 {
        println!("\nratio outbox / baseline: {:.2}", outbox / direct);
    }
    Ok(0)
}
