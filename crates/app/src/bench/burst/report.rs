//! The burst's printed results: rates, lateness, the outbox drain, and the OK / FALLA
//! lines of the exactly-once proofs.

use std::collections::HashSet;
use std::time::Duration;

use incidencias_core::escalation::ActionKind;
use jiff::Timestamp;

use super::record::{Mail, Record};
use super::{BurstBench, Load};
use crate::bench::percentile_ms;

/// Lateness (ms) of each kind: p50, p99, max and how many.
fn lateness(rec: &Record, kind: ActionKind) -> (usize, f64, f64, f64) {
    let mut late: Vec<Duration> = rec
        .fired
        .iter()
        .filter(|(_, k, _)| *k == kind)
        .filter_map(|(key, _, at)| rec.due.get(key).map(|(_, due)| at - due))
        .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
        .collect();
    late.sort();
    (
        late.len(),
        percentile_ms(&late, 0.50),
        percentile_ms(&late, 0.99),
        percentile_ms(&late, 1.0),
    )
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Prints the results and the proofs; `true` when every proof holds.
#[allow(clippy::too_many_arguments)]
pub(super) fn report(
    args: &BurstBench,
    load: &Load,
    load_end: Timestamp,
    rec: &Record,
    keys: &[String],
    mail: &[Mail],
    received: &[Option<String>],
    timed_out: bool,
) -> bool {
    let n = args.incidents;
    println!(
        "| ráfaga: {} instancias, 1 PostgreSQL, {n} incidencias en {} s | valor |",
        args.instances, args.seconds
    );
    println!("|---|---|");
    let rate = load.created as f64 / load.elapsed.as_secs_f64().max(1e-9);
    println!(
        "| altas por la API (creadas / notificadas / errores) | {} / {} / {} |",
        load.created, load.notified, load.errors
    );
    println!(
        "| ritmo de altas logrado (objetivo {:.1}/s) | {rate:.1}/s |",
        n as f64 / args.seconds as f64
    );
    let p = |v: &[Duration]| {
        format!(
            "{:.1} / {:.1} ms",
            percentile_ms(v, 0.5),
            percentile_ms(v, 0.99)
        )
    };
    println!("| alta: latencia p50 / p99 | {} |", p(&load.create_ms));
    println!(
        "| notificación: latencia p50 / p99 | {} |",
        p(&load.notify_ms)
    );
    println!(
        "| máximo retraso del generador respecto a su calendario | {:.0} ms |",
        load.behind.as_secs_f64() * 1000.0
    );
    println!(
        "| último vencimiento de acuse, después del fin de la carga | {:.1} s |",
        secs(rec.last_due - load_end.as_millisecond())
    );
    println!();
    println!("| acción del reloj de acuse | disparadas | retraso p50 | p99 | máximo |");
    println!("|---|---|---|---|---|");
    for (name, kind) in [
        ("avisos", ActionKind::Warning),
        ("incumplimientos", ActionKind::Breach),
        ("escalamientos", ActionKind::Escalation),
    ] {
        let (count, p50, p99, max) = lateness(rec, kind);
        println!("| {name} | {count} | {p50:.0} ms | {p99:.0} ms | {max:.0} ms |");
    }
    println!();
    let sent: Vec<&Mail> = mail.iter().filter(|m| m.state == "sent").collect();
    let first_queued = mail.iter().map(|m| m.created_at).min().unwrap_or(0);
    let first_sent = sent.iter().filter_map(|m| m.sent_at).min().unwrap_or(0);
    let last_sent = sent.iter().filter_map(|m| m.sent_at).max().unwrap_or(0);
    let mut delay: Vec<Duration> = sent
        .iter()
        .filter_map(|m| m.sent_at.map(|s| s - m.created_at))
        .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()))
        .collect();
    delay.sort();
    let span = secs(last_sent - first_queued);
    println!("| bandeja de salida al SMTP local | valor |");
    println!("|---|---|");
    println!("| correos enviados | {} |", sent.len());
    println!(
        "| del primer correo encolado al último enviado | {span:.1} s (ritmo medio {:.0} correos/s) |",
        sent.len() as f64 / span.max(1e-9)
    );
    println!(
        "| del primer envío al último | {:.1} s |",
        secs(last_sent - first_sent)
    );
    println!(
        "| del fin de la carga al último enviado | {:.1} s |",
        secs(last_sent - load_end.as_millisecond())
    );
    println!(
        "| espera en la bandeja p50 / p99 / máximo | {:.0} / {:.0} / {:.0} ms |",
        percentile_ms(&delay, 0.5),
        percentile_ms(&delay, 0.99),
        percentile_ms(&delay, 1.0)
    );
    println!();

    let mut ok = true;
    let mut proof = |holds: bool, text: String| {
        println!("{} {text}", if holds { "OK   " } else { "FALLA" });
        ok &= holds;
    };
    proof(
        load.errors == 0 && load.created == n && load.notified == n,
        format!(
            "carga: {} de {n} creadas y {} notificadas, {} errores",
            load.created, load.notified, load.errors
        ),
    );
    for s in &load.samples {
        println!("      {s}");
    }
    proof(
        !timed_out,
        format!("todo terminó antes de {} s de espera", args.wait_s),
    );
    let expected: HashSet<&String> = rec.due.keys().collect();
    let event_keys: HashSet<&String> = rec.fired.iter().map(|(k, _, _)| k).collect();
    let stored: HashSet<&String> = keys.iter().collect();
    // A warning not fired because its incident's first firing came when the breach of the
    // same clock was already due: `escalation::due_actions` drops it by design (a warning
    // that a deadline approaches, once it has passed). A symptom of lateness, not a loss.
    let (dropped, lost): (Vec<&String>, Vec<&String>) =
        expected.difference(&stored).partition(|key| {
            rec.breach_of
                .get(key.as_str())
                .is_some_and(|(folio, breach)| {
                    rec.first_fire
                        .get(folio)
                        .is_some_and(|first| first >= breach)
                })
        });
    proof(
        rec.fired.len() == event_keys.len()
            && keys.len() == stored.len()
            && event_keys == stored
            && stored.is_subset(&expected)
            && lost.is_empty(),
        format!(
            "acciones de reloj una vez cada una: esperadas {}, eventos {} ({} claves distintas), \
             fired_actions {} ({} claves distintas), disparadas sin esperarse {}, esperadas \
             sin disparar {} (de ellas, avisos descartados por llegar con el incumplimiento \
             ya vencido: {})",
            expected.len(),
            rec.fired.len(),
            event_keys.len(),
            keys.len(),
            stored.len(),
            stored.difference(&expected).count(),
            dropped.len() + lost.len(),
            dropped.len()
        ),
    );
    proof(
        dropped.is_empty(),
        format!(
            "ningún aviso descartado por retraso: {} de {} avisos llegaron cuando ya vencía \
             el incumplimiento",
            dropped.len(),
            rec.breach_of.len()
        ),
    );
    let sent_ids: HashSet<&str> = sent.iter().map(|m| m.message_id.as_str()).collect();
    let got: HashSet<&str> = received.iter().flatten().map(String::as_str).collect();
    let unsent = mail.len() - sent.len();
    proof(
        unsent == 0
            && sent_ids.len() == sent.len()
            && received.len() == sent.len()
            && got.len() == received.len()
            && got == sent_ids,
        format!(
            "correos una vez cada uno: {} filas en la bandeja ({} enviadas, {unsent} sin enviar), \
             {} archivos en el Maildir ({} Message-ID distintos, {} sin Message-ID), enviados \
             que no llegaron {}, llegados que no se enviaron {}",
            mail.len(),
            sent.len(),
            received.len(),
            got.len(),
            received.iter().filter(|r| r.is_none()).count(),
            sent_ids.difference(&got).count(),
            got.difference(&sent_ids).count()
        ),
    );
    ok
}
