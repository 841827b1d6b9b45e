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
    /// For a message that landed in triage: how the help desk resolved it (`attached`,
    /// `opened` or `discarded`); null while it waits in the queue.
    pub triage_action: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub triaged_at: Option<Timestamp>,
    /// The user who resolved it (0: the command line's operator).
    pub triaged_by: Option<i64>,
    /// The discard reason or the help desk's note.
    pub triage_note: Option<String>,
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
            triage_action: r.triage.as_ref().map(|t| t.action.as_str().to_string()),
            triaged_at: r.triage.as_ref().map(|t| t.at),
            triaged_by: r.triage.as_ref().map(|t| t.by),
            triage_note: r.triage.and_then(|t| t.note),
        }
    }
}

/// A message waiting in the help desk's triage queue, with what the service suggests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriageItem {
    /// The received message's id (`received` lists it too).
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub sender: String,
    pub subject: String,
    /// What the sender wrote, without the quoted reply (at most 2,000 characters).
    pub excerpt: String,
    /// Why the router could not decide (in Spanish).
    pub reason: Option<String>,
    /// The folio the message names (in its reply headers or subject), if any, whether or
    /// not such an incident exists.
    pub folio: Option<String>,
    /// What the help desk could do with it.
    pub suggestion: TriageSuggestion,
}

/// The service's guess for a message in triage: attach it to the incident it names when
/// that incident exists; otherwise the report it could open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriageSuggestion {
    /// An existing incident the message names: attach it there.
    pub attach_to: Option<String>,
    /// The report the message could open (from its subject, excerpt and sender; the
    /// full suggestion, read from the whole message, is `suggest_report`).
    pub report: ReportSuggestion,
}

/// A first draft of step 1 from a received message, for the help desk to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportSuggestion {
    /// The procedure: one whose homoclave the message names, else the only procedure of
    /// the agency of the sender's mail domain; null when neither says one.
    pub procedure_id: Option<i64>,
    /// The agency the procedure or the sender's mail domain points to.
    pub agency_id: Option<i64>,
    /// How the procedure (or agency) was found, or why none was (in Spanish).
    pub reason: String,
    /// A guess of what fails: `unavailable`, `slow`, `intermittent`, `cannot_complete`.
    pub kind: String,
    /// Subject and what the sender wrote.
    pub description: String,
    /// The message's `Date` (when it is not after its receipt), else when it was received.
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: Timestamp,
}

/// One outbox email exactly as the worker would send it, except that the one-click link
/// tokens are masked (`/acciones/[firma oculta]`): whoever previews a message may not act
/// as its recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutboxPreview {
    pub doc: OutboxDoc,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Why the stored row cannot be rendered (the worker fails it for the same reason);
    /// subject, text and html are then empty.
    pub error: Option<String>,
}
