//! `mail ingest`, `outbox list`, `outbox retry`.

use std::io::Read;

use super::{CliError, OutboxState, service};
use crate::config::GlobalArgs;
use crate::store::Store;
use crate::store::open::OpenMode;

/// Reads one message from stdin and hands it to the service, like the API's inbound door.
pub async fn ingest(global: &GlobalArgs) -> Result<i32, CliError> {
    let mut raw = Vec::new();
    // One byte more than allowed, so the service can tell an oversized message.
    std::io::stdin()
        .take(crate::mail::inbound::MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut raw)?;
    let store = Store::open_with(global.database_url(), OpenMode::ExistingWritable).await?;
    let result = service(&store, global).ingest(&raw).await;
    store.close().await;
    let r = result?;
    println!(
        "{}{}{}",
        r.outcome,
        r.folio.map(|f| format!(" {f}")).unwrap_or_default(),
        r.reason.map(|w| format!(" ({w})")).unwrap_or_default()
    );
    Ok(0)
}

pub async fn outbox_list(
    url: &str,
    state: Option<OutboxState>,
    limit: i64,
) -> Result<i32, CliError> {
    let store = Store::open_with(url, OpenMode::Existing).await?;
    let rows = store
        .list_outbox(state.map(OutboxState::as_str), limit)
        .await;
    store.close().await;
    for r in rows? {
        println!(
            "{:>6}  {:<8} {:<16} {:<24} {} intentos  {}{}",
            r.id,
            r.state,
            r.folio.unwrap_or_default(),
            r.kind,
            r.attempts,
            r.to.join(", "),
            r.last_error.map(|e| format!("  ({e})")).unwrap_or_default()
        );
    }
    Ok(0)
}

pub async fn outbox_retry(url: &str, id: Option<i64>) -> Result<i32, CliError> {
    let store = Store::open_with(url, OpenMode::ExistingWritable).await?;
    let result = store.retry_outbox(id, jiff::Timestamp::now()).await;
    store.close().await;
    println!("{} correos de nuevo en cola.", result?);
    Ok(0)
}
