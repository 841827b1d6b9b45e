//! The evidence page of an incident (`/incidencias/{folio}/evidencia`): everything the
//! record says about it on one page that prints cleanly to PDF from the browser: the
//! header, every clock, the whole timeline with each event's hash, the emails sent and
//! received, and the hash of the last event with how to verify it. The same reading
//! rules as the incident page (another agency's incident is a 404).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::format;
use super::pages::{Layout, html, refused};
use super::session::Viewer;
use super::views::{self, ClockView, MailItem, Names, ReceivedItem};
use crate::http::AppState;

/// One event of the record.
pub struct EvidenceEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub via: String,
    pub text: String,
    pub hash: String,
}

#[derive(Template)]
#[template(path = "evidence.html")]
struct EvidencePage {
    layout: Layout,
    folio: String,
    state: String,
    severity: String,
    kind: String,
    agency: String,
    procedures: Vec<String>,
    channel: String,
    occurred: String,
    reported: String,
    description: String,
    escalation_level: u32,
    clocks: Vec<ClockView>,
    events: Vec<EvidenceEvent>,
    mails: Vec<MailItem>,
    received: Vec<ReceivedItem>,
    last_hash: String,
    last_seq: i64,
    printed: String,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Response {
    let folio = match super::incident::parse_folio(&raw) {
        Ok(f) => f,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let service = &state.service;
    let caller = &viewer.caller;
    let loaded = tokio::try_join!(
        service.incident(caller, folio),
        service.events(caller, folio),
        service.incident_mail(caller, folio),
        service.incident_messages(caller, folio),
        service.procedures(caller),
        service.agencies(caller),
        service.org_chart(),
    );
    let (doc, events, mail, received, procedures, agencies, org) = match loaded {
        Ok(l) => l,
        Err(e) => return refused(Some(&viewer), &e),
    };
    let now = service.now();
    let names = Names::new(&procedures, &agencies);
    let people = views::people_of(&events, &org);
    let last = events.last();
    let page = EvidencePage {
        layout: Layout::new(Some(&viewer), &format!("Evidencia {}", doc.folio), ""),
        folio: doc.folio.clone(),
        state: views::state_label(&doc.state),
        severity: views::severity_label(doc.severity.as_deref()),
        kind: views::kind_label(&doc.kind),
        agency: names.agency_name(doc.agency_id),
        procedures: names.procedures_of(&doc),
        channel: views::channel_label(&doc.channel),
        occurred: format::instant(doc.occurred_at),
        reported: format::instant(doc.reported_at),
        description: doc.description.clone(),
        escalation_level: doc.escalation_level,
        clocks: doc
            .clocks
            .iter()
            .map(|c| views::clock_view(c, now))
            .collect(),
        events: events
            .iter()
            .map(|e| EvidenceEvent {
                seq: e.seq,
                at: format::instant(e.at),
                actor: views::actor_label(e),
                via: views::via_label(e.via.as_ref()),
                text: views::describe(e, &people),
                hash: e.hash.clone(),
            })
            .collect(),
        mails: views::mail_items(&mail),
        received: views::received_items(&received),
        last_hash: last.map(|e| e.hash.clone()).unwrap_or_default(),
        last_seq: last.map_or(0, |e| e.seq),
        printed: format::instant(now),
    };
    html(StatusCode::OK, &page)
}
