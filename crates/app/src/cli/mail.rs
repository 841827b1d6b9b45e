//! `mail ingest`, `outbox list`, `outbox retry`.

use std::io::Read;

use super::{CliError, service};
use crate::config::GlobalArgs;
use crate::service::Caller;
use crate::service::OutboxState;
use crate::store::Store;
use crate::store::open::OpenMode;

/// Reads one message from stdin and hands it to the service, like the API's inbound door.
pub async fn ingest(global: &GlobalArgs) -> Result<i32, CliError> {
    let mut raw = Vec::new();
    // One byte more than allowed, so the service can tell an oversized message.
    std::io::stdin()
        .take(crate::service::MAX_MESSAGE_BYTES as u64 + 1)
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

/// The flags of the fields the outbox commands take.
const OUTBOX_FLAGS: &[(&str, &str)] = &[("state", "--state"), ("limit", "--limit"), ("id", "--id")];

pub async fn outbox_list(
    global: &GlobalArgs,
    state: Option<OutboxState>,
    limit: i64,
) -> Result<i32, CliError> {
    let store = Store::open_with(global.database_url(), OpenMode::Existing).await?;
    let rows = service(&store, global)
        .outbox(&Caller::operator(), state, limit)
        .await;
    store.close().await;
    for r in rows.map_err(|e| CliError::with_flags(e, OUTBOX_FLAGS))? {
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

pub async fn outbox_retry(global: &GlobalArgs, id: Option<i64>) -> Result<i32, CliError> {
    let store = Store::open_with(global.database_url(), OpenMode::ExistingWritable).await?;
    let result = service(&store, global)
        .retry_outbox(&Caller::operator(), id)
        .await;
    store.close().await;
    let n = result.map_err(|e| CliError::with_flags(e, OUTBOX_FLAGS))?;
    println!("{n} correos de nuevo en cola.");
    Ok(0)
}
