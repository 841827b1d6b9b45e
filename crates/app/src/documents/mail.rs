//! Mail as the service answers it: the outbox, what a received message did, the received
//! messages.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{InboundRow, OutboxRow};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutboxDoc {
    pub id: i64,
    pub folio: Option<String>,
    /// Template name.
    pub kind: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub message_id: String,
    pub last_error: Option<String>,
    /// When the change that caused it was written.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the worker tries (again) to send it.
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<Timestamp>,
}

/// An instant the store keeps as epoch milliseconds. The store only writes instants it
/// read from a `Timestamp`, so the fallback (the epoch) marks a corrupted row rather than
/// failing the whole list.
fn instant(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl From<OutboxRow> for OutboxDoc {
    fn from(r: OutboxRow) -> OutboxDoc {
        OutboxDoc {
            id: r.id,
            folio: r.folio,
            kind: r.kind,
            to: r.to,
            cc: r.cc,
            state: r.state.as_str().to_string(),
            attempts: r.attempts,
            message_id: r.message_id,
            last_error: r.last_error,
            created_at: instant(r.created_at),
            next_attempt_at: instant(r.next_attempt_at),
            sent_at: r.sent_at.map(instant),
        }
    }
}

/// What became of one received email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InboundDoc {
    /// `acknowledged`, `resolution_notified`, `recorded`, `new_incident` or `triage`.
    pub outcome: String,
    pub folio: Option<String>,
    /// Why, in Spanish (for triage and refusals).
    pub reason: Option<String>,
}

/// One received email as kept: where it went and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceivedDoc {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    pub folio: Option<String>,
    /// `acknowledged`, `resolution_notified`, `recorded`, `new_incident` or `triage`.
    pub outcome: String,
    /// Why it went to triage (in Spanish).
    pub reason: Option<String>,
    /// What the sender wrote, without the quoted reply (at most 2,000 characters).
    pub excerpt: String,
}

impl From<InboundRow> for ReceivedDoc {
    fn from(r: InboundRow) -> ReceivedDoc {
        let m = r.record;
        ReceivedDoc {
            id: r.id,
            received_at: m.received_at,
            message_id: m.message_id,
            sender: m.sender,
            subject: m.subject,
            folio: m.folio,
            outcome: m.outcome.as_str().to_string(),
            reason: m.reason,
            excerpt: m.excerpt,
        }
    }
}
