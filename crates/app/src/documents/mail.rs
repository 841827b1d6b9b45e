//! Mail as the service answers it: the outbox, what a received message did, the received
//! messages.

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
    pub created_at_ms: i64,
    pub next_attempt_at_ms: i64,
    pub sent_at_ms: Option<i64>,
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
            created_at_ms: r.created_at,
            next_attempt_at_ms: r.next_attempt_at,
            sent_at_ms: r.sent_at,
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
    pub received_at_ms: i64,
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
            received_at_ms: m.received_at.as_millisecond(),
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
