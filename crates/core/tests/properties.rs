//! Property tests of the core.
//!
//! The main one drives whole incident lives: random command sequences, from random actors
//! (including the wrong ones), at random instants (including instants before the previous
//! event), under the seed policy or short random policies, and checks after every event
//! the protocol's invariants: closed implies the closing rule, elapsed time never negative
//! nor decreasing, a breached clock stays breached, replay equals the folded state, events
//! survive the JSON round trip, no escalation key fires twice, no escalation reaches the
//! same level twice nor moves the other side's level, automatic portal changes are the
//! system's, only a slow incident keeps its button, only a complete form is delivered and a
//! draft never moves the clock, and the public status shows an incident iff it is notified
//! and open.
//!
//! The others check that the parsers of `types.rs` never panic, accept exactly what they
//! display, and keep header-breaking characters out of email addresses; and that the
//! report-form `check` never panics and names exactly the blank required fields.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{Debug, Display};
use std::str::FromStr;

use common::{
    AGENCY, OTHER_AGENCY, RESPONSIBLE, SUPERIOR_1, VALIDATOR_ID, admin, agency, folio, helpdesk,
    ladder, other_agency, t0, validator,
};
use incidencias_core::report_form::{FormContext, FormProblem, check};
use incidencias_core::slo::{SEED_TARGETS, SeverityTargets, Targets, add_millis, to_millis};
use incidencias_core::{
    ActionKey, ActionKind, Actor, Change, Channel, Clock, ClockId, ClockName, ClockState, Command,
    DecideError, Email, Event, Folio, FormField, Homoclave, Incident, IncidentKind, IncidentReport,
    IncidentState, Ladder, NewReport, ParseError, ProcedureId, Role, Severity, SloPolicy, decide,
    due_actions, planned,
};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;

const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// `cases` cases, and no regression files: a failure prints its minimal input, which the
/// report turns into a named test (as at the end of this file); integration tests have no
/// `lib.rs` for proptest's default persistence to sit next to anyway.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// Who sends a step's command. `Natural` is the role the command is meant for, so that
/// sequences get somewhere; the others are as likely to be wrong as right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Natural,
    Helpdesk,
    Agency,
    OtherAgency,
    Validator,
    Admin,
    System,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        14 => Just(Who::Natural),
        2 => Just(Who::Helpdesk),
        2 => Just(Who::Agency),
        1 => Just(Who::OtherAgency),
        1 => Just(Who::Validator),
        1 => Just(Who::Admin),
        1 => Just(Who::System),
    ]
}

fn actor_of(who: Who, command: &Command) -> Actor {
    match who {
        Who::Natural => natural_actor(command),
        Who::Helpdesk => helpdesk(),
        Who::Agency => agency(),
        Who::OtherAgency => other_agency(),
        Who::Validator => validator(),
        Who::Admin => admin(),
        Who::System => Actor::System,
    }
}

/// The actor whose role the command is for.
fn natural_actor(command: &Command) -> Actor {
    match command.allowed_roles() {
        [] => Actor::System,
        [Role::Agency, ..] => agency(),
        [Role::Validator, ..] => validator(),
        _ => helpdesk(),
    }
}

/// Which escalation ladder a `Fire` or `Escalate` carries: the fixtures' full one, or
/// short chains (nobody, only the responsible, one superior, no central side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LadderPick {
    Full,
    Empty,
    ResponsibleOnly,
    OneSuperior,
    NoCentral,
}

const LADDERS: [LadderPick; 5] = [
    LadderPick::Full,
    LadderPick::Empty,
    LadderPick::ResponsibleOnly,
    LadderPick::OneSuperior,
    LadderPick::NoCentral,
];

fn ladder_of(pick: LadderPick) -> Ladder {
    match pick {
        LadderPick::Full => ladder(),
        LadderPick::Empty => Ladder::default(),
        LadderPick::ResponsibleOnly => Ladder {
            agency: vec![RESPONSIBLE],
            central: vec![VALIDATOR_ID],
        },
        LadderPick::OneSuperior => Ladder {
            agency: vec![RESPONSIBLE, SUPERIOR_1],
            central: vec![VALIDATOR_ID],
        },
        LadderPick::NoCentral => Ladder {
            agency: ladder().agency,
            central: Vec::new(),
        },
    }
}

fn ladder_pick() -> impl Strategy<Value = LadderPick> {
    prop_oneof![
        6 => Just(LadderPick::Full),
        1 => Just(LadderPick::Empty),
        1 => Just(LadderPick::ResponsibleOnly),
        1 => Just(LadderPick::OneSuperior),
        1 => Just(LadderPick::NoCentral),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL)
}

fn control_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        '\u{0}', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
    ])
}

/// Free text: mostly plausible, sometimes blank, with control characters, arbitrary, or
/// just over `max` characters.
fn text_up_to(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[A-Za-z0-9áéíóúñÑ ,.]{1,40}",
        2 => "[ \t\r\n]{0,2}[A-Za-z]{1,10}[ \t\r\n]{0,2}",
        1 => Just(String::new()),
        1 => "[ \t\r\n]{1,5}",
        1 => ("[a-z]{0,5}", control_char(), "[a-z]{0,5}")
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        1 => any::<String>(),
        1 => (1usize..3).prop_map(move |extra| "x".repeat(max + extra)),
    ]
}

fn long_text() -> impl Strategy<Value = String> {
    text_up_to(10_000)
}

fn short_text() -> impl Strategy<Value = String> {
    text_up_to(2_000)
}

fn good_text() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9áéíóúñ ,.]{0,30}"
}

/// An instant of a form, relative to what the incident knows when the form is sent.
#[derive(Debug, Clone, Copy)]
enum FormInstant {
    Absent,
    AfterOccurred(i64),
    AfterLastResolution(i64),
    AfterNow(i64),
}

fn form_instant() -> impl Strategy<Value = FormInstant> {
    prop_oneof![
        1 => Just(FormInstant::Absent),
        2 => (-HOUR..HOUR).prop_map(FormInstant::AfterOccurred),
        2 => (-HOUR..HOUR).prop_map(FormInstant::AfterLastResolution),
        1 => (-HOUR..HOUR).prop_map(FormInstant::AfterNow),
    ]
}

#[derive(Debug, Clone)]
struct FormSpec {
    detected: FormInstant,
    restored: FormInstant,
    texts: [String; 7],
    actions_taken: Vec<String>,
    attachments: Vec<String>,
}

/// Forms complete by construction (detected at or after the occurrence, restored at or
/// before the resolution notice), partial ones, contradictory and arbitrary ones.
fn form_spec() -> impl Strategy<Value = FormSpec> {
    let complete = (
        (0..30 * MINUTE).prop_map(FormInstant::AfterOccurred),
        (-MINUTE..=0).prop_map(FormInstant::AfterLastResolution),
        prop::array::uniform7(good_text()),
        prop::collection::vec(good_text(), 1..3),
        prop::collection::vec(good_text(), 0..2),
    );
    let partial = (
        prop_oneof![
            Just(FormInstant::Absent),
            Just(FormInstant::AfterOccurred(0))
        ],
        prop_oneof![
            Just(FormInstant::Absent),
            Just(FormInstant::AfterLastResolution(0))
        ],
        prop::array::uniform7(prop_oneof![
            good_text(),
            Just(String::new()),
            Just(" ".into())
        ]),
        prop::collection::vec(prop_oneof![good_text(), Just(" ".to_string())], 0..2),
        Just(Vec::new()),
    );
    let contradictory = (
        (-HOUR..-1).prop_map(FormInstant::AfterOccurred),
        (1..HOUR).prop_map(FormInstant::AfterLastResolution),
        prop::array::uniform7(good_text()),
        prop::collection::vec(good_text(), 1..3),
        Just(Vec::new()),
    );
    let arbitrary = (
        form_instant(),
        form_instant(),
        prop::array::uniform7(long_text()),
        prop_oneof![
            10 => prop::collection::vec(long_text(), 0..4),
            1 => (101usize..103).prop_map(|n| vec!["acción".to_string(); n]),
        ],
        prop::collection::vec(long_text(), 0..3),
    );
    prop_oneof![
        4 => complete,
        2 => partial,
        1 => contradictory,
        2 => arbitrary,
    ]
    .prop_map(
        |(detected, restored, texts, actions_taken, attachments)| FormSpec {
            detected,
            restored,
            texts,
            actions_taken,
            attachments,
        },
    )
}

fn build_form(spec: &FormSpec, incident: Option<&Incident>, now: Timestamp) -> IncidentReport {
    let resolve = |instant: FormInstant| {
        let (base, offset) = match instant {
            FormInstant::Absent => return None,
            FormInstant::AfterOccurred(ms) => (incident.map_or(now, |i| i.occurred_at), ms),
            FormInstant::AfterLastResolution(ms) => (
                incident
                    .and_then(Incident::last_resolution_at)
                    .unwrap_or(now),
                ms,
            ),
            FormInstant::AfterNow(ms) => (now, ms),
        };
        Some(add_millis(base, offset))
    };
    let [
        symptoms,
        impact,
        root_cause,
        verification,
        preventive,
        name,
        position,
    ] = spec.texts.clone();
    IncidentReport {
        detected_at: resolve(spec.detected),
        restored_at: resolve(spec.restored),
        symptoms,
        impact,
        root_cause,
        actions_taken: spec.actions_taken.clone(),
        verification,
        preventive_actions: preventive,
        prepared_by_name: name,
        prepared_by_position: position,
        attachments: spec.attachments.clone(),
    }
}

#[derive(Debug, Clone)]
struct ReportSpec {
    folio: Folio,
    agency: bool,
    procedure_ids: Vec<ProcedureId>,
    kind: IncidentKind,
    description: String,
    /// How long before `now` the failure occurred; negative: in the future.
    occurred_ago_ms: i64,
    channel: Channel,
}

fn report_spec() -> impl Strategy<Value = ReportSpec> {
    let folio = prop_oneof![
        9 => Just(folio()),
        1 => (1000u16..=9999, 1u32..=Folio::MAX_NUMBER)
            .prop_filter_map("valid folio", |(y, n)| Folio::new(y, n)),
    ];
    let procedures = prop_oneof![
        12 => prop::collection::vec((100i64..104).prop_map(ProcedureId), 1..3),
        1 => Just(Vec::new()),
        1 => (101i64..103).prop_map(|n| (0..n).map(ProcedureId).collect()),
    ];
    let ago = prop_oneof![
        8 => 0..2 * HOUR,
        2 => 2 * HOUR..48 * HOUR,
        1 => -HOUR..0,
        1 => Just(i64::MAX),
    ];
    (
        folio,
        prop::bool::weighted(0.9),
        procedures,
        prop::sample::select(IncidentKind::ALL),
        long_text(),
        ago,
        prop::sample::select(Channel::ALL),
    )
        .prop_map(
            |(folio, agency, procedure_ids, kind, description, occurred_ago_ms, channel)| {
                ReportSpec {
                    folio,
                    agency,
                    procedure_ids,
                    kind,
                    description,
                    occurred_ago_ms,
                    channel,
                }
            },
        )
}

fn build_report(spec: &ReportSpec, now: Timestamp) -> Command {
    Command::Report(NewReport {
        folio: spec.folio,
        agency_id: if spec.agency { AGENCY } else { OTHER_AGENCY },
        procedure_ids: spec.procedure_ids.clone(),
        kind: spec.kind,
        description: spec.description.clone(),
        occurred_at: add_millis(now, spec.occurred_ago_ms.saturating_neg()),
        channel: spec.channel,
    })
}

fn clock_id() -> impl Strategy<Value = ClockId> {
    (prop::sample::select(ClockName::ALL.to_vec()), 0u32..3).prop_map(|(name, round)| {
        if name == ClockName::Validation {
            ClockId::validation(round)
        } else {
            ClockId::single(name)
        }
    })
}

/// What a step asks. Most variants are one `Command` with generated fields; `Fire*` pick
/// their key from the incident when the step runs, and `Progress` is the protocol's next
/// natural step, so that random sequences also reach validation, the form and closure.
#[derive(Debug, Clone)]
enum CommandSpec {
    Report(ReportSpec),
    Notify {
        severity: Severity,
        disable_button: bool,
    },
    Acknowledge,
    SetBanner {
        shown: bool,
        message: Option<String>,
    },
    SetButton {
        enabled: bool,
    },
    ExemptBanner {
        reason: String,
    },
    NotifyResolution {
        summary: String,
    },
    RecordValidation {
        passed: bool,
        observations: Vec<String>,
    },
    SubmitReportForm(Box<FormSpec>),
    SaveReportFormDraft(Box<FormSpec>),
    ReviewReportForm {
        complete: bool,
        missing: Vec<String>,
        message: Option<String>,
    },
    ChangeSeverity {
        severity: Severity,
        reason: String,
    },
    Escalate {
        reason: String,
        ladder: LadderPick,
    },
    /// One of the actions `due_actions` returns now.
    FireDue {
        pick: Index,
        ladder: LadderPick,
    },
    /// A key already fired (or, if none was, a random one).
    FireStale {
        pick: Index,
        ladder: LadderPick,
    },
    FireRandom {
        clock: ClockId,
        kind: ActionKind,
        level: u32,
        foreign_folio: bool,
        ladder: LadderPick,
    },
    Close,
    Dismiss {
        reason: String,
    },
    Progress {
        severity: Severity,
        disable_button: bool,
        passed: bool,
        choice: u8,
    },
}

fn missing_field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FormField::ALL.to_vec()).prop_map(|f| f.as_str().to_string()),
        1 => Just("unknown_field".to_string()),
        1 => Just(" symptoms ".to_string()),
        1 => any::<String>(),
    ]
}

fn command_spec() -> impl Strategy<Value = CommandSpec> {
    prop_oneof![
        2 => report_spec().prop_map(CommandSpec::Report),
        3 => (severity(), prop::bool::weighted(0.8)).prop_map(|(severity, disable_button)| {
            CommandSpec::Notify {
                severity,
                disable_button,
            }
        }),
        3 => Just(CommandSpec::Acknowledge),
        3 => (any::<bool>(), prop::option::of(short_text()))
            .prop_map(|(shown, message)| CommandSpec::SetBanner { shown, message }),
        2 => any::<bool>().prop_map(|enabled| CommandSpec::SetButton { enabled }),
        1 => short_text().prop_map(|reason| CommandSpec::ExemptBanner { reason }),
        3 => long_text().prop_map(|summary| CommandSpec::NotifyResolution { summary }),
        3 => (
            prop::bool::weighted(0.6),
            prop_oneof![
                8 => prop::collection::vec(long_text(), 0..3),
                1 => (101usize..103).prop_map(|n| vec!["obs".to_string(); n]),
            ],
        )
            .prop_map(|(passed, observations)| CommandSpec::RecordValidation {
                passed,
                observations
            }),
        3 => form_spec().prop_map(|f| CommandSpec::SubmitReportForm(Box::new(f))),
        1 => form_spec().prop_map(|f| CommandSpec::SaveReportFormDraft(Box::new(f))),
        3 => (
            any::<bool>(),
            prop::collection::vec(missing_field_name(), 0..3),
            prop::option::of(short_text()),
        )
            .prop_map(|(complete, missing, message)| CommandSpec::ReviewReportForm {
                complete,
                missing,
                message,
            }),
        2 => (severity(), short_text())
            .prop_map(|(severity, reason)| CommandSpec::ChangeSeverity { severity, reason }),
        1 => (short_text(), ladder_pick())
            .prop_map(|(reason, ladder)| CommandSpec::Escalate { reason, ladder }),
        6 => (any::<Index>(), ladder_pick())
            .prop_map(|(pick, ladder)| CommandSpec::FireDue { pick, ladder }),
        1 => (any::<Index>(), ladder_pick())
            .prop_map(|(pick, ladder)| CommandSpec::FireStale { pick, ladder }),
        1 => (
            clock_id(),
            prop::sample::select(vec![ActionKind::Warning, ActionKind::Breach, ActionKind::Escalation]),
            0u32..5,
            prop::bool::weighted(0.2),
            ladder_pick(),
        )
            .prop_map(|(clock, kind, level, foreign_folio, ladder)| {
                CommandSpec::FireRandom {
                    clock,
                    kind,
                    level,
                    foreign_folio,
                    ladder,
                }
            }),
        2 => Just(CommandSpec::Close),
        1 => short_text().prop_map(|reason| CommandSpec::Dismiss { reason }),
        16 => (severity(), prop::bool::weighted(0.8), prop::bool::weighted(0.75), any::<u8>())
            .prop_map(|(severity, disable_button, passed, choice)| CommandSpec::Progress {
                severity,
                disable_button,
                passed,
                choice,
            }),
    ]
}

/// Time between steps, in milliseconds: mostly forward, from nothing to more than a day
/// (so that targets from a few seconds to 24 h are both met and breached), sometimes
/// backwards (`decide` must clamp to the last event).
fn delta_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0),
        6 => 0..10 * SECOND,
        5 => 0..5 * MINUTE,
        4 => 0..3 * HOUR,
        1 => 3 * HOUR..26 * HOUR,
        2 => -2 * HOUR..0,
    ]
}

#[derive(Debug, Clone)]
struct Step {
    who: Who,
    command: CommandSpec,
    delta_ms: i64,
    /// Sub-millisecond noise on `now` (decide truncates to milliseconds).
    nanos: i32,
    /// Decide under a policy that `problems()` rejects.
    bad_policy: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        who(),
        command_spec(),
        delta_ms(),
        prop_oneof![4 => Just(0), 1 => 0i32..1_000_000],
        prop::bool::weighted(0.03),
    )
        .prop_map(|(who, command, delta_ms, nanos, bad_policy)| Step {
            who,
            command,
            delta_ms,
            nanos,
            bad_policy,
        })
}

fn severity_targets(
    range: std::ops::RangeInclusive<u32>,
) -> impl Strategy<Value = SeverityTargets> {
    prop::array::uniform4(range).prop_map(|[critical, high, medium, low]| SeverityTargets {
        critical,
        high,
        medium,
        low,
    })
}

/// The seed policy, or one with targets of seconds to minutes so that warnings, breaches
/// and escalations fall inside a generated sequence.
fn policy() -> impl Strategy<Value = SloPolicy> {
    let short = (
        prop::array::uniform5(prop_oneof![
            3 => severity_targets(1..=30),
            1 => severity_targets(1..=900),
        ]),
        prop_oneof![
            Just(0.75),
            Just(0.5),
            (0.01f64..0.99).prop_map(|r| (r * 100.0).round() / 100.0)
        ],
        prop::option::of(1u32..120),
    )
        .prop_map(
            |([report, ack, resolution, validation, report_form], ratio, repeat)| SloPolicy {
                version: 2,
                targets: Targets {
                    report,
                    ack,
                    resolution,
                    validation,
                    report_form,
                },
                warning_ratio: ratio,
                escalation_repeat_s: repeat,
                ..SloPolicy::seed()
            },
        );
    prop_oneof![1 => Just(SloPolicy::seed()), 2 => short]
}

fn bad_policy() -> SloPolicy {
    let mut p = SloPolicy::seed();
    p.warning_ratio = 1.5;
    p.targets.ack.critical = 0;
    p.escalation_repeat_s = Some(0);
    p
}

#[derive(Debug, Clone)]
struct Scenario {
    policy: SloPolicy,
    /// Offset of the first step's instant from `t0`.
    start_offset_ms: i64,
    steps: Vec<Step>,
}

/// Up to 40 steps, most lives starting with a report (as they do in production), some
/// with whatever comes.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let reported_first =
        (report_spec(), prop::collection::vec(step(), 0..40)).prop_map(|(report, mut steps)| {
            let first = Step {
                who: Who::Natural,
                command: CommandSpec::Report(report),
                delta_ms: 0,
                nanos: 0,
                bad_policy: false,
            };
            steps.insert(0, first);
            steps
        });
    prop_oneof![
        5 => reported_first,
        1 => prop::collection::vec(step(), 0..40),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (policy(), -HOUR..HOUR, steps()).prop_map(|(policy, start_offset_ms, steps)| Scenario {
        policy,
        start_offset_ms,
        steps,
    })
}

// ---------------------------------------------------------------------------------------
// The simulation
// ---------------------------------------------------------------------------------------

/// What the sequences reached, so that the test can tell it is not vacuous.
#[derive(Debug, Default)]
struct Coverage {
    scenarios: usize,
    events: usize,
    states: HashSet<IncidentState>,
    fired: usize,
    automatic_escalations: usize,
    breaches: usize,
    failed_validations: usize,
    clamped_events: usize,
    forms_accepted: usize,
    refusals: usize,
}

struct Sim<'a> {
    policy: SloPolicy,
    history: Vec<Event>,
    state: Option<Incident>,
    now: Timestamp,
    fired: HashSet<ActionKey>,
    escalated: HashSet<(Option<ClockId>, incidencias_core::Side, u32)>,
    breached: HashSet<ClockId>,
    elapsed: HashMap<ClockId, i64>,
    coverage: &'a RefCell<Coverage>,
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl Sim<'_> {
    /// The instant `decide` will use for an existing incident.
    fn effective_now(&self) -> Timestamp {
        let now = to_millis(self.now);
        self.state
            .as_ref()
            .map_or(now, |s| now.max(s.last_event_at))
    }

    fn command(&self, spec: &CommandSpec) -> Command {
        let inc = self.state.as_ref();
        let now = self.effective_now();
        match spec {
            CommandSpec::Report(r) => build_report(r, self.now),
            CommandSpec::Notify {
                severity,
                disable_button,
            } => Command::Notify {
                severity: *severity,
                disable_button: *disable_button,
                occurred_at: None,
            },
            CommandSpec::Acknowledge => Command::Acknowledge,
            CommandSpec::SetBanner { shown, message } => Command::SetBanner {
                shown: *shown,
                message: message.clone(),
            },
            CommandSpec::SetButton { enabled } => Command::SetButton { enabled: *enabled },
            CommandSpec::ExemptBanner { reason } => Command::ExemptBanner {
                reason: reason.clone(),
            },
            CommandSpec::NotifyResolution { summary } => Command::NotifyResolution {
                summary: summary.clone(),
            },
            CommandSpec::RecordValidation {
                passed,
                observations,
            } => Command::RecordValidation {
                passed: *passed,
                observations: observations.clone(),
            },
            CommandSpec::SubmitReportForm(f) => {
                Command::SubmitReportForm(build_form(f, inc, self.now))
            }
            CommandSpec::SaveReportFormDraft(f) => {
                Command::SaveReportFormDraft(build_form(f, inc, self.now))
            }
            CommandSpec::ReviewReportForm {
                complete,
                missing,
                message,
            } => Command::ReviewReportForm {
                complete: *complete,
                missing: missing.clone(),
                message: message.clone(),
            },
            CommandSpec::ChangeSeverity { severity, reason } => Command::ChangeSeverity {
                severity: *severity,
                reason: reason.clone(),
            },
            CommandSpec::Escalate { reason, ladder } => Command::Escalate {
                reason: reason.clone(),
                ladder: ladder_of(*ladder),
            },
            CommandSpec::FireDue { pick, ladder } => {
                let l = ladder_of(*ladder);
                let due = inc.map(|i| due_actions(i, &l, now)).unwrap_or_default();
                let key = if due.is_empty() {
                    random_key(ClockId::ACK, ActionKind::Breach, 0, false)
                } else {
                    pick.get(&due).key
                };
                Command::Fire { key, ladder: l }
            }
            CommandSpec::FireStale { pick, ladder } => {
                let mut fired: Vec<ActionKey> = self.fired.iter().copied().collect();
                fired.sort();
                let key = if fired.is_empty() {
                    random_key(ClockId::RESOLUTION, ActionKind::Warning, 0, false)
                } else {
                    *pick.get(&fired)
                };
                Command::Fire {
                    key,
                    ladder: ladder_of(*ladder),
                }
            }
            CommandSpec::FireRandom {
                clock,
                kind,
                level,
                foreign_folio,
                ladder,
            } => Command::Fire {
                key: random_key(*clock, *kind, *level, *foreign_folio),
                ladder: ladder_of(*ladder),
            },
            CommandSpec::Close => Command::Close,
            CommandSpec::Dismiss { reason } => Command::Dismiss {
                reason: reason.clone(),
            },
            CommandSpec::Progress {
                severity,
                disable_button,
                passed,
                choice,
            } => progress(inc, *severity, *disable_button, *passed, *choice, self.now),
        }
    }

    fn run_step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.now = add_millis(self.now, step.delta_ms);
        if step.nanos > 0 {
            self.now = self
                .now
                .checked_add(jiff::SignedDuration::new(0, step.nanos))
                .unwrap_or(self.now);
        }
        let command = self.command(&step.command);
        let actor = actor_of(step.who, &command);
        let bad = bad_policy();
        let policy = if step.bad_policy { &bad } else { &self.policy };

        let expected_at = self.effective_now();
        let result = decide(self.state.as_ref(), &actor, &command, self.now, policy);
        // Pure: the same question gets the same answer.
        let again = decide(self.state.as_ref(), &actor, &command, self.now, policy);
        if result != again {
            return Err(fail(format!(
                "decide is not deterministic: {result:?} then {again:?}"
            )));
        }
        self.check_refusals(&actor, &command, step.bad_policy, &result)?;

        let events = match result {
            Ok(events) => events,
            Err(_) => {
                self.coverage.borrow_mut().refusals += 1;
                // Nothing happened; the invariants still hold at the current instant.
                if let Some(inc) = &self.state {
                    let v = inc.invariant_violations(expected_at);
                    if !v.is_empty() {
                        return Err(fail(format!("invariants broken after a refusal: {v:?}")));
                    }
                }
                return Ok(());
            }
        };
        if events.is_empty() {
            return Err(fail(format!("{} accepted with no event", command.name())));
        }
        // The stored record: events must survive JSON unchanged.
        let json = serde_json::to_string(&events)
            .map_err(|e| fail(format!("events do not serialize: {e}")))?;
        let back: Vec<Event> = serde_json::from_str(&json)
            .map_err(|e| fail(format!("events do not deserialize: {e}\n{json}")))?;
        if back != events {
            return Err(fail(format!(
                "events change through JSON:\n{events:?}\n{back:?}"
            )));
        }
        if let Command::Fire { key, .. } = &command
            && !self.fired.insert(*key)
        {
            return Err(fail(format!("action {key} fired twice")));
        }
        for event in &events {
            if event.at != expected_at {
                return Err(fail(format!(
                    "event at {} but decide's instant is {expected_at} (now {})",
                    event.at, self.now
                )));
            }
            if event.at != to_millis(self.now) {
                self.coverage.borrow_mut().clamped_events += 1;
            }
            let levels_before = self
                .state
                .as_ref()
                .map(|i| (i.agency_escalation_level, i.central_escalation_level));
            let before = self.state.clone();
            let next = Incident::apply(self.state.take(), event).map_err(|e| {
                fail(format!(
                    "a decided event does not apply: {e} ({:?})",
                    event.change
                ))
            })?;
            // Only a complete form is delivered; a draft never moves the clock.
            if let (Change::ReportFormSubmitted { form }, Some(before)) =
                (&event.change, before.as_ref())
                && !check(form, &before.form_context()).is_empty()
            {
                return Err(fail(format!("an incomplete form was delivered: {form:?}")));
            }
            if let (Change::ReportFormDraftSaved { .. }, Some(before)) =
                (&event.change, before.as_ref())
                && before.clock(ClockId::REPORT_FORM).map(Clock::is_running)
                    != next.clock(ClockId::REPORT_FORM).map(Clock::is_running)
            {
                return Err(fail("saving a draft moved the report_form clock".into()));
            }
            // Automatic portal changes are the system's; a person's own are theirs.
            let automatic = match &event.change {
                Change::ButtonSet { cause, .. } => {
                    Some(*cause != incidencias_core::ButtonCause::Manual)
                }
                Change::BannerSet { cause, .. } => {
                    Some(*cause != incidencias_core::BannerCause::Agency)
                }
                _ => None,
            };
            if let Some(automatic) = automatic
                && automatic != (event.actor == Actor::System)
            {
                return Err(fail(format!(
                    "{:?} recorded with actor {:?}",
                    event.change, event.actor
                )));
            }
            // Never the same official twice for the same clock (or by hand) and level.
            if let Change::Escalated {
                clock, side, level, ..
            } = &event.change
                && !self.escalated.insert((*clock, *side, *level))
            {
                return Err(fail(format!(
                    "escalated twice to level {level} on the {} side ({clock:?})",
                    side.as_str()
                )));
            }
            // Levels are counted per side: an escalation moves only its own side's level.
            if let (Some((agency_before, central_before)), Change::Escalated { side, .. }) =
                (levels_before, &event.change)
            {
                let unmoved = match side {
                    incidencias_core::Side::Agency => {
                        (next.central_escalation_level, central_before)
                    }
                    incidencias_core::Side::Central => {
                        (next.agency_escalation_level, agency_before)
                    }
                };
                if unmoved.0 != unmoved.1 {
                    return Err(fail(format!(
                        "an escalation on the {} side moved the other side's level",
                        side.as_str()
                    )));
                }
            }
            self.state = Some(next);
            self.history.push(event.clone());
            self.record(event);
            self.check_after_event(event.at)?;
        }
        Ok(())
    }

    fn record(&self, event: &Event) {
        let mut c = self.coverage.borrow_mut();
        c.events += 1;
        if let Some(s) = &self.state {
            c.states.insert(s.state);
        }
        match &event.change {
            Change::ClockBreached { .. } | Change::WarningIssued { .. } => c.fired += 1,
            Change::Escalated { clock: Some(_), .. } => {
                c.fired += 1;
                c.automatic_escalations += 1;
            }
            Change::ValidationRecorded { passed: false, .. } => c.failed_validations += 1,
            Change::ReportFormReviewed { complete: true, .. } => c.forms_accepted += 1,
            _ => {}
        }
        if matches!(event.change, Change::ClockBreached { .. }) {
            c.breaches += 1;
        }
    }

    /// The refusals whose answer is fixed by who asks, whatever the state.
    fn check_refusals(
        &self,
        actor: &Actor,
        command: &Command,
        bad_policy: bool,
        result: &Result<Vec<Event>, DecideError>,
    ) -> Result<(), TestCaseError> {
        let role_ok = match actor.role() {
            Some(role) => command.allowed_roles().contains(&role),
            None => matches!(command, Command::Fire { .. }),
        };
        if !role_ok {
            return match result {
                Err(DecideError::RoleNotAllowed { .. }) => Ok(()),
                other => Err(fail(format!(
                    "{actor:?} may not {}, got {other:?}",
                    command.name()
                ))),
            };
        }
        let Some(inc) = &self.state else {
            if !matches!(command, Command::Report(_)) && result.is_ok() {
                return Err(fail(format!(
                    "{} accepted without an incident",
                    command.name()
                )));
            }
            return Ok(());
        };
        if let Actor::User {
            role: Role::Agency,
            agency,
            ..
        } = actor
            && *agency != Some(inc.agency_id)
        {
            if !matches!(result, Err(DecideError::NotYourAgency)) {
                return Err(fail(format!(
                    "another agency's user got {result:?} for {}",
                    command.name()
                )));
            }
            return Ok(());
        }
        if inc.state.is_terminal() {
            if !matches!(result, Err(DecideError::InvalidTransition { .. })) {
                return Err(fail(format!(
                    "{} on a {} incident gave {result:?}",
                    command.name(),
                    inc.state
                )));
            }
            return Ok(());
        }
        if bad_policy
            && matches!(command, Command::Notify { .. })
            && inc.state == IncidentState::Reported
            && !matches!(result, Err(DecideError::InvalidFields(_)))
        {
            return Err(fail(format!(
                "notify under an invalid policy gave {result:?}"
            )));
        }
        if let Command::Notify {
            disable_button: false,
            ..
        } = command
            && inc.state == IncidentState::Reported
            && inc.kind != IncidentKind::Slow
            && !bad_policy
            && !matches!(result, Err(DecideError::InvalidFields(f)) if f.iter().any(|f| f.field == "disable_button"))
        {
            return Err(fail(format!(
                "a {} incident kept its button: {result:?}",
                inc.kind
            )));
        }
        if let Command::Fire { key, ladder } = command
            && *actor == Actor::System
        {
            let now = self.effective_now();
            let due = due_actions(inc, ladder, now).iter().any(|a| a.key == *key);
            match (due, result) {
                (true, Ok(_)) | (false, Err(DecideError::NotDue { .. })) => {}
                _ => {
                    return Err(fail(format!("fire {key} (due: {due}) gave {result:?}")));
                }
            }
            if self.fired.contains(key) && result.is_ok() {
                return Err(fail(format!("action {key} accepted a second time")));
            }
        }
        Ok(())
    }

    /// Everything that must hold after every event, at the event's instant.
    fn check_after_event(&mut self, at: Timestamp) -> Result<(), TestCaseError> {
        let inc = self.state.as_ref().ok_or_else(|| fail("no state".into()))?;

        let violations = inc.invariant_violations(at);
        if !violations.is_empty() {
            return Err(fail(format!(
                "invariants broken: {violations:?}\nstate: {inc:#?}"
            )));
        }
        // Public only once notified, and never after it ended.
        let public = incidencias_core::procedure_status([inc]);
        let shown = inc.notified_at.is_some() && !inc.state.is_terminal();
        if public.incident.is_some() != shown
            || (!shown && (!public.button_enabled || public.banner_shown))
        {
            return Err(fail(format!(
                "public status {public:?} for a {} incident",
                inc.state
            )));
        }
        if inc.state == IncidentState::Closed {
            let ok = inc.validation_passed()
                && inc.portal.button_enabled
                && (inc.banner_first_shown_at.is_some() || inc.banner_exemption.is_some())
                && !inc.portal.banner_shown
                && inc.report_form.state == incidencias_core::ReportFormState::Accepted;
            if !ok {
                return Err(fail(format!("closed against the closing rule: {inc:#?}")));
            }
        }
        for clock in &inc.clocks {
            let elapsed = clock.elapsed_ms(at);
            if elapsed < 0 {
                return Err(fail(format!("clock {} elapsed {elapsed} ms", clock.id)));
            }
            let before = self.elapsed.insert(clock.id, elapsed).unwrap_or(0);
            if elapsed < before {
                return Err(fail(format!(
                    "clock {} went back from {before} to {elapsed} ms",
                    clock.id
                )));
            }
            if clock.state(at) == ClockState::Breached {
                self.breached.insert(clock.id);
            }
        }
        for id in &self.breached {
            match inc.clock(*id).map(|c| c.state(at)) {
                Some(ClockState::Breached) => {}
                other => {
                    return Err(fail(format!(
                        "clock {id} was breached and is now {other:?}"
                    )));
                }
            }
        }
        if inc.version != self.history.len() as u64 {
            return Err(fail(format!(
                "version {} after {} events",
                inc.version,
                self.history.len()
            )));
        }
        let replayed = Incident::replay(&self.history)
            .map_err(|e| fail(format!("history does not replay: {e}")))?;
        if &replayed != inc {
            return Err(fail(format!(
                "replay differs from state:\n{replayed:#?}\n{inc:#?}"
            )));
        }
        for pick in LADDERS {
            let plan = planned(inc, &ladder_of(pick));
            if let Some(a) = plan.iter().find(|a| self.fired.contains(&a.key)) {
                return Err(fail(format!("fired action {} planned again", a.key)));
            }
            if inc.state.is_terminal() && !plan.is_empty() {
                return Err(fail("a terminal incident plans actions".into()));
            }
        }
        Ok(())
    }
}

fn random_key(clock: ClockId, kind: ActionKind, level: u32, foreign: bool) -> ActionKey {
    let folio = if foreign {
        Folio::new(2025, 999_999).unwrap_or(folio())
    } else {
        folio()
    };
    ActionKey {
        folio,
        clock,
        kind,
        level,
    }
}

/// The protocol's next natural command for the incident, with well-formed fields.
fn progress(
    inc: Option<&Incident>,
    severity: Severity,
    disable_button: bool,
    passed: bool,
    choice: u8,
    now: Timestamp,
) -> Command {
    use IncidentState as S;
    use incidencias_core::ReportFormState as F;
    let Some(inc) = inc else {
        return Command::Report(NewReport {
            folio: folio(),
            agency_id: AGENCY,
            procedure_ids: vec![ProcedureId(100)],
            kind: IncidentKind::Unavailable,
            description: "El trámite no responde".into(),
            occurred_at: add_millis(now, -10 * MINUTE),
            channel: Channel::Phone,
        });
    };
    let form_ok = || {
        let mut form = common::complete_form();
        form.detected_at = Some(inc.occurred_at);
        form.restored_at = inc.last_resolution_at().or(Some(inc.occurred_at));
        Command::SubmitReportForm(form)
    };
    let banner = |shown| Command::SetBanner {
        shown,
        message: None,
    };
    let resolution = || Command::NotifyResolution {
        summary: "Se renovó el certificado".into(),
    };
    match inc.state {
        S::Reported => Command::Notify {
            severity,
            // Only a slow incident may keep the button (refusals come from `Notify` steps).
            disable_button: disable_button || inc.kind != IncidentKind::Slow,
            occurred_at: None,
        },
        S::AwaitingAck => match choice % 4 {
            0 if !inc.portal.banner_shown => banner(true),
            1 => resolution(),
            _ => Command::Acknowledge,
        },
        S::InCorrection => {
            if !inc.portal.banner_shown && choice.is_multiple_of(3) {
                banner(true)
            } else {
                resolution()
            }
        }
        S::AwaitingValidation => {
            if matches!(inc.report_form.state, F::Due | F::Incomplete) && choice.is_multiple_of(3) {
                form_ok()
            } else {
                Command::RecordValidation {
                    passed,
                    observations: if passed {
                        Vec::new()
                    } else {
                        vec!["El botón sigue sin responder".into()]
                    },
                }
            }
        }
        S::Validated | S::Closed | S::Dismissed => {
            if !inc.portal.button_enabled {
                Command::SetButton { enabled: true }
            } else if inc.portal.banner_shown {
                banner(false)
            } else if inc.banner_first_shown_at.is_none()
                && inc.banner_exemption.is_none()
                && choice.is_multiple_of(2)
            {
                Command::ExemptBanner {
                    reason: "La dependencia no pudo desplegarla".into(),
                }
            } else if matches!(inc.report_form.state, F::Due | F::Incomplete) {
                form_ok()
            } else if inc.report_form.state == F::Submitted {
                Command::ReviewReportForm {
                    complete: !choice.is_multiple_of(5),
                    missing: Vec::new(),
                    message: None,
                }
            } else {
                Command::Close
            }
        }
    }
}

fn run_scenario(scenario: &Scenario, coverage: &RefCell<Coverage>) -> Result<(), TestCaseError> {
    let mut sim = Sim {
        policy: scenario.policy.clone(),
        history: Vec::new(),
        state: None,
        now: add_millis(t0(), scenario.start_offset_ms),
        fired: HashSet::new(),
        escalated: HashSet::new(),
        breached: HashSet::new(),
        elapsed: HashMap::new(),
        coverage,
    };
    coverage.borrow_mut().scenarios += 1;
    for (i, step) in scenario.steps.iter().enumerate() {
        sim.run_step(step)
            .map_err(|e| fail(format!("step {i} ({step:?}): {e}")))?;
    }
    // The whole history, as the store keeps it.
    let json = serde_json::to_string(&sim.history)
        .map_err(|e| fail(format!("history does not serialize: {e}")))?;
    let back: Vec<Event> = serde_json::from_str(&json)
        .map_err(|e| fail(format!("history does not deserialize: {e}")))?;
    if back != sim.history {
        return Err(fail("history changes through JSON".into()));
    }
    if !sim.history.is_empty() {
        let rebuilt = Incident::replay(&back)
            .map_err(|e| fail(format!("stored history does not replay: {e}")))?;
        if Some(&rebuilt) != sim.state.as_ref() {
            return Err(fail("state rebuilt from stored history differs".into()));
        }
    }
    Ok(())
}

#[test]
fn random_command_sequences_never_panic_and_keep_every_invariant_after_every_event() {
    let config = config(512);
    let coverage = RefCell::new(Coverage::default());
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&scenario(), |s| run_scenario(&s, &coverage));
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // Not vacuous: the generator reaches every state and the scheduler's actions.
    let c = coverage.into_inner();
    for state in IncidentState::ALL {
        assert!(
            c.states.contains(&state),
            "no sequence reached {state}: {c:?}"
        );
    }
    assert!(c.fired > 0, "no action fired: {c:?}");
    assert!(c.automatic_escalations > 0, "no escalation fired: {c:?}");
    assert!(c.breaches > 0, "no breach fired: {c:?}");
    assert!(c.failed_validations > 0, "no persistence: {c:?}");
    assert!(c.forms_accepted > 0, "no form accepted: {c:?}");
    assert!(
        c.clamped_events > 0,
        "no event clamped to the last one: {c:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Regression tests for the bugs the properties found (fixed in src)
// ---------------------------------------------------------------------------------------

/// Dismissing while CEDN holds a resolution notice used to leave that round without a
/// verdict; now a dismissal after acknowledgment (here implied by the resolution notice) is
/// refused, and the refusal leaves every invariant holding.
#[test]
fn dismissing_while_awaiting_validation_is_refused_and_keeps_every_invariant() {
    let mut run = common::Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        common::at(10 * common::MIN),
    );
    let refused = run.exec(
        &helpdesk(),
        Command::Dismiss {
            reason: "Duplicado".into(),
        },
        common::at(11 * common::MIN),
    );
    assert!(
        matches!(refused, Err(DecideError::InvalidTransition { .. })),
        "{refused:?}"
    );
    let inc = run.inc();
    assert_eq!(inc.state, IncidentState::AwaitingValidation);
    assert_eq!(
        inc.invariant_violations(common::at(12 * common::MIN)),
        Vec::<String>::new()
    );
}

/// Regression: `Clock::settle` on a clock that is not running (stopped, or paused) used to
/// record the breach at the settling instant instead of when the running time reached the
/// target. Notification retargets the stopped `report` clock from the most lenient report
/// target to the severity's; when that makes it breached, `breached_at` must be within the
/// clock's running time. (Needs a policy whose report targets differ by severity; the
/// seed's are all 1 h.)
#[test]
fn breach_instant_of_the_report_clock_retargeted_at_notification_is_before_its_stop() {
    let mut policy = SloPolicy::seed();
    policy.targets.report.critical = 60;
    assert!(policy.problems().is_empty());
    let mut run = common::Run::with_policy(policy);
    // Occurred 10 min before t0, reported at t0 (600 s < 3600 s: met so far).
    run.ok(&helpdesk(), common::report(10 * common::MIN), t0());
    run.ok(
        &helpdesk(),
        Command::Notify {
            severity: Severity::Critical,
            disable_button: true,
            occurred_at: None,
        },
        common::at(5 * common::MIN),
    );
    let report = run.inc().clock(ClockId::REPORT).expect("report clock");
    assert_eq!(
        report.state(common::at(5 * common::MIN)),
        ClockState::Breached
    );
    // The running time reached 60 s one minute after the failure occurred.
    assert_eq!(
        report.breached_at,
        Some(common::at(-10 * common::MIN + 60)),
        "{report:?}"
    );
}

/// Regression, same cause: a severity change while CEDN holds the incident retargets the
/// paused `resolution` clock below its running time; `breached_at` must be the instant the
/// running time reached the new target, not the severity change (the clock was paused).
#[test]
fn breach_instant_of_a_paused_clock_retargeted_by_a_severity_change_is_when_running_time_reached_it()
 {
    let mut run = common::Run::notified(Severity::Low); // notified at t0 + 5 min
    run.ok(
        &agency(),
        Command::NotifyResolution {
            summary: "Corregido".into(),
        },
        common::at(5 * common::MIN + 2 * common::HOUR), // resolution clock paused at 2 h
    );
    run.ok(
        &helpdesk(),
        Command::ChangeSeverity {
            severity: Severity::Critical, // resolution target 1 h 30 min < 2 h
            reason: "Afecta a todos los usuarios".into(),
        },
        common::at(5 * common::MIN + 3 * common::HOUR),
    );
    let resolution = run
        .inc()
        .clock(ClockId::RESOLUTION)
        .expect("resolution clock");
    assert_eq!(
        resolution.state(common::at(4 * common::HOUR)),
        ClockState::Breached
    );
    assert_eq!(
        resolution.breached_at,
        Some(common::at(5 * common::MIN + 90 * common::MIN)),
        "{resolution:?}"
    );
}

/// Regression: an `f64` warning ratio that is not short in decimal used to change by one
/// ulp through serde_json's default float parsing, so a stored `notified` event (which
/// carries the policy) would not replay to the decided state. The workspace enables
/// serde_json's `float_roundtrip`.
#[test]
fn warning_ratio_with_seventeen_digits_changes_through_json() {
    let policy = SloPolicy {
        warning_ratio: 0.920_457_312_893_782_3,
        ..SloPolicy::seed()
    };
    assert!(policy.problems().is_empty());
    let json = serde_json::to_string(&policy).expect("serializes");
    let back: SloPolicy = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, policy, "{json}");
}

// ---------------------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum ClockOp {
    Pause,
    Resume,
    Stop,
    Settle,
    Retarget(u32),
}

fn clock_op() -> impl Strategy<Value = ClockOp> {
    prop_oneof![
        2 => Just(ClockOp::Pause),
        2 => Just(ClockOp::Resume),
        1 => Just(ClockOp::Stop),
        2 => Just(ClockOp::Settle),
        2 => (1u32..200).prop_map(ClockOp::Retarget),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn clock_elapsed_never_decreases_and_a_breach_is_final(
        target in 1u32..200,
        ops in prop::collection::vec((clock_op(), 0i64..100 * SECOND), 0..30),
    ) {
        let mut at = t0();
        let mut clock = Clock::start(ClockId::RESOLUTION, target, at);
        let mut last_elapsed = 0;
        let mut breached = false;
        for (op, delta) in ops {
            at = add_millis(at, delta);
            match op {
                ClockOp::Pause => clock.pause(at),
                ClockOp::Resume => clock.resume(at),
                ClockOp::Stop => clock.stop(at),
                ClockOp::Settle => clock.settle(at),
                ClockOp::Retarget(t) => clock.retarget(t, at),
            }
            let elapsed = clock.elapsed_ms(at);
            prop_assert!(elapsed >= last_elapsed, "{elapsed} < {last_elapsed}");
            prop_assert!(!(clock.is_running() && clock.is_stopped()));
            last_elapsed = elapsed;
            let state = clock.state(at);
            if breached {
                prop_assert_eq!(state, ClockState::Breached);
            }
            breached |= state == ClockState::Breached;
            if state == ClockState::Met {
                prop_assert!(clock.is_stopped());
            }
            // An instant before the segment start never gives negative running time.
            prop_assert!(clock.elapsed_ms(Timestamp::MIN) >= 0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

fn json_round_trip<T>(value: &T) -> Result<T, TestCaseError>
where
    T: Serialize + DeserializeOwned,
{
    let json = serde_json::to_string(value).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&json).map_err(|e| fail(format!("{e}: {json}")))
}

/// The contract of the text enums: what parses is exactly an API name (up to surrounding
/// whitespace), every value parses from its display, and JSON goes through the same text.
fn check_text_enum<T>(all: &[T], input: &str) -> Result<(), TestCaseError>
where
    T: FromStr<Err = ParseError>
        + Display
        + Debug
        + PartialEq
        + Copy
        + Serialize
        + DeserializeOwned,
{
    if let Ok(v) = input.parse::<T>() {
        prop_assert_eq!(input.trim(), v.to_string());
    }
    for v in all {
        prop_assert_eq!(v.to_string().parse::<T>(), Ok(*v));
        prop_assert_eq!(format!(" \t{v}\n").parse::<T>(), Ok(*v));
        prop_assert_eq!(json_round_trip(v)?, *v);
    }
    Ok(())
}

fn email_local() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}"
}

fn email_domain() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?){1,3}"
}

fn homoclave_parts() -> impl Strategy<Value = (String, String, String, Option<char>)> {
    (
        "[A-Z]{2,12}",
        "[0-9]{2}",
        "[0-9]{3}",
        prop::option::of(prop::char::range('A', 'Z')),
    )
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        4 => (-2 * 86_400i64..2 * 86_400).prop_map(|s| add_millis(t0(), s * 1000)),
        1 => (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(), 0i32..1_000_000_000)
            .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap_or(Timestamp::MAX)),
        1 => prop::sample::select(vec![Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH]),
    ]
}

fn any_form() -> impl Strategy<Value = IncidentReport> {
    let text = || {
        prop_oneof![
            any::<String>(),
            Just(String::new()),
            Just("  \t".to_string())
        ]
    };
    (
        prop::option::of(timestamp()),
        prop::option::of(timestamp()),
        prop::array::uniform7(text()),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(detected_at, restored_at, t, actions_taken, attachments)| {
                let [
                    symptoms,
                    impact,
                    root_cause,
                    verification,
                    preventive,
                    name,
                    position,
                ] = t;
                IncidentReport {
                    detected_at,
                    restored_at,
                    symptoms,
                    impact,
                    root_cause,
                    actions_taken,
                    verification,
                    preventive_actions: preventive,
                    prepared_by_name: name,
                    prepared_by_position: position,
                    attachments,
                }
            },
        )
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn folio_parse_never_panics_and_accepts_only_its_canonical_text(
        input in prop_oneof![any::<String>(), "[ INCinc0-9\\-+٣_]{0,20}", "INC-[0-9]{4}-[0-9]{6}"],
    ) {
        if let Ok(folio) = Folio::parse(&input) {
            prop_assert!(folio.to_string().eq_ignore_ascii_case(input.trim()));
            prop_assert_eq!(Folio::parse(&folio.to_string()), Ok(folio));
        }
    }

    #[test]
    fn folio_display_parses_back_to_the_same_folio(
        year in 1000u16..=9999,
        number in 1u32..=Folio::MAX_NUMBER,
    ) {
        let folio = Folio::new(year, number).ok_or_else(|| fail("in range".into()))?;
        let text = folio.to_string();
        prop_assert_eq!(text.len(), 15);
        prop_assert_eq!(Folio::parse(&text), Ok(folio));
        prop_assert_eq!(Folio::parse(&format!("  {}\n", text.to_lowercase())), Ok(folio));
        prop_assert_eq!(json_round_trip(&folio)?, folio);
        prop_assert_eq!((folio.year(), folio.number()), (year, number));
    }

    #[test]
    fn folio_new_accepts_exactly_the_six_digit_range(year in any::<u16>(), number in any::<u32>()) {
        let fits = (1000..=9999).contains(&year) && (1..=Folio::MAX_NUMBER).contains(&number);
        prop_assert_eq!(Folio::new(year, number).is_some(), fits);
    }

    #[test]
    fn homoclave_parse_never_panics_and_keeps_the_uppercase_text(
        input in prop_oneof![any::<String>(), "[A-Za-zÑñé0-9\\- ]{0,24}"],
    ) {
        if let Ok(h) = Homoclave::parse(&input) {
            prop_assert_eq!(h.as_str(), input.trim().to_ascii_uppercase());
            prop_assert!(h.as_str().is_ascii());
            prop_assert_eq!(Homoclave::parse(&h.to_string()), Ok(h));
        }
    }

    #[test]
    fn homoclave_display_parses_back_to_the_same_key(
        (acronym, series, number, modality) in homoclave_parts(),
    ) {
        let text = match modality {
            Some(m) => format!("{acronym}-{series}-{number}-{m}"),
            None => format!("{acronym}-{series}-{number}"),
        };
        let h = Homoclave::parse(&text).map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(h.as_str(), text.as_str());
        prop_assert_eq!(Homoclave::parse(&h.to_string()), Ok(h.clone()));
        prop_assert_eq!(Homoclave::parse(&text.to_lowercase()), Ok(h.clone()));
        prop_assert_eq!(json_round_trip(&h)?, h);
    }

    #[test]
    fn email_parse_never_panics_and_accepts_only_header_safe_addresses(
        input in prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9.@\\-_+ \r\n<>\",;:]{0,30}",
            (email_local(), email_domain()).prop_map(|(l, d)| format!("{l}@{d}")),
        ],
    ) {
        if let Ok(e) = Email::parse(&input) {
            let text = e.as_str();
            prop_assert!(!text.contains('\r') && !text.contains('\n'), "{text:?}");
            prop_assert!(text.chars().all(|c| c.is_ascii_graphic()), "{text:?}");
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert!(text.len() <= 254);
            prop_assert_eq!(e.domain(), e.domain().to_ascii_lowercase());
            prop_assert_eq!(Email::parse(&e.to_string()), Ok(e.clone()));
            // Only surrounding whitespace is ever dropped: no line break inside survives.
            prop_assert!(!input.trim().contains(['\r', '\n']), "{input:?}");
        }
    }

    #[test]
    fn email_with_a_line_break_inside_is_refused(
        local in email_local(),
        domain in email_domain(),
        brk in prop::sample::select(vec!["\r", "\n", "\r\n", "\r\nBcc: x@y.mx\r\n"]),
        at in any::<Index>(),
    ) {
        let address = format!("{local}@{domain}");
        // An interior position (the address is ASCII, so any byte index is a boundary).
        let pos = 1 + at.index(address.len() - 1);
        let injected = format!("{}{brk}{}", &address[..pos], &address[pos..]);
        prop_assert!(Email::parse(&injected).is_err(), "{injected:?} accepted");
        // Also when the break trails: accepted only with the break dropped.
        if let Ok(e) = Email::parse(&format!("{address}{brk}")) {
            prop_assert!(!e.as_str().contains(['\r', '\n']));
        }
    }

    #[test]
    fn email_display_parses_back_lowercased(
        local in email_local(),
        domain in email_domain(),
    ) {
        let e = Email::parse(&format!("{local}@{domain}")).map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(
            e.as_str(),
            format!("{}@{}", local.to_ascii_lowercase(), domain.to_ascii_lowercase())
        );
        prop_assert_eq!(e.domain(), domain.to_ascii_lowercase());
        prop_assert_eq!(Email::parse(&e.to_string()), Ok(e.clone()));
        prop_assert_eq!(json_round_trip(&e)?, e);
    }

    #[test]
    fn text_enums_parse_exactly_their_api_names(
        input in prop_oneof![
            any::<String>(),
            "[ \t]{0,2}[a-z_]{0,16}[ \t]{0,2}",
            prop::sample::select(vec![
                "critical", "High", "low ", "cannot_complete", "email", "monitor", "admin",
                "agency", "validator", "helpdesk", "slow", "report", "ack", "report_form",
                "symptoms", "attachments", "validation",
            ]).prop_map(str::to_string),
        ],
    ) {
        check_text_enum(Severity::ALL, &input)?;
        check_text_enum(IncidentKind::ALL, &input)?;
        check_text_enum(Channel::ALL, &input)?;
        check_text_enum(Role::ALL, &input)?;
        if let Ok(name) = incidencias_core::slo::parse_clock_name(&input) {
            prop_assert_eq!(input.trim(), name.as_str());
        }
        if let Ok(field) = FormField::parse(&input) {
            prop_assert_eq!(input.trim(), field.as_str());
        }
        for name in ClockName::ALL {
            prop_assert_eq!(incidencias_core::slo::parse_clock_name(name.as_str()), Ok(name));
        }
        for field in FormField::ALL {
            prop_assert_eq!(FormField::parse(field.as_str()), Ok(field));
        }
    }

    #[test]
    fn parse_errors_never_echo_more_than_eighty_characters(input in ".{0,300}") {
        for err in [
            Folio::parse(&input).err(),
            Homoclave::parse(&input).err(),
            Email::parse(&input).err(),
            Severity::parse(&input).err(),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert!(err.input.chars().count() <= 80);
            prop_assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn report_form_check_never_panics_and_names_exactly_the_blank_required_fields(
        form in any_form(),
        occurred_at in timestamp(),
        last_resolution_at in prop::option::of(timestamp()),
    ) {
        let ctx = FormContext { occurred_at, last_resolution_at };
        let issues = check(&form, &ctx);
        let fields: Vec<FormField> = issues.iter().map(|i| i.field).collect();
        let mut sorted = fields.clone();
        sorted.sort();
        prop_assert_eq!(&fields, &sorted, "issues in form order");
        prop_assert!(!fields.contains(&FormField::Attachments));
        let missing: BTreeSet<FormField> = issues
            .iter()
            .filter(|i| i.problem == FormProblem::Missing)
            .map(|i| i.field)
            .collect();
        let blank: BTreeSet<FormField> = [
            (FormField::DetectedAt, form.detected_at.is_none()),
            (FormField::RestoredAt, form.restored_at.is_none()),
            (FormField::Symptoms, is_blank(&form.symptoms)),
            (FormField::Impact, is_blank(&form.impact)),
            (FormField::RootCause, is_blank(&form.root_cause)),
            (FormField::ActionsTaken, form.actions_taken.iter().all(|a| is_blank(a))),
            (FormField::Verification, is_blank(&form.verification)),
            (FormField::PreventiveActions, is_blank(&form.preventive_actions)),
            (FormField::PreparedByName, is_blank(&form.prepared_by_name)),
            (FormField::PreparedByPosition, is_blank(&form.prepared_by_position)),
        ]
        .into_iter()
        .filter(|(_, b)| *b)
        .map(|(f, _)| f)
        .collect();
        prop_assert_eq!(missing, blank);
        // Contradictions only about instants, and only when they really contradict.
        for issue in issues.iter().filter(|i| i.problem != FormProblem::Missing) {
            prop_assert!(matches!(issue.field, FormField::DetectedAt | FormField::RestoredAt));
            prop_assert!(!issue.to_string().is_empty());
        }
        let consistent = form.detected_at.is_none_or(|d| d >= occurred_at)
            && form.restored_at.is_none_or(|r| {
                form.detected_at.is_none_or(|d| r >= d)
                    && last_resolution_at.is_none_or(|l| r <= l)
            });
        prop_assert_eq!(
            consistent,
            issues.iter().all(|i| i.problem == FormProblem::Missing)
        );
        // The form is part of the record: it must survive JSON.
        prop_assert_eq!(json_round_trip(&form)?, form);
    }

    #[test]
    fn slo_policies_with_typed_ratios_survive_json(
        ten_thousandths in 1u32..10_000,
        repeat in prop::option::of(1u32..100_000),
    ) {
        // Ratios as an admin types them (up to four decimals). Arbitrary f64 ratios do not
        // all survive serde_json's default float parsing: see
        // `warning_ratio_with_seventeen_digits_changes_through_json`.
        let policy = SloPolicy {
            warning_ratio: f64::from(ten_thousandths) / 10_000.0,
            escalation_repeat_s: repeat,
            ..SloPolicy::seed()
        };
        prop_assert!(policy.problems().is_empty());
        prop_assert_eq!(policy.targets, SEED_TARGETS);
        prop_assert_eq!(json_round_trip(&policy)?, policy);
    }
}

#[test]
fn generated_policies_are_valid() {
    let mut runner = TestRunner::default();
    for _ in 0..64 {
        let p = policy()
            .new_tree(&mut runner)
            .expect("policy strategy")
            .current();
        assert!(p.problems().is_empty(), "{p:?}");
    }
    assert!(!bad_policy().problems().is_empty());
}

/// A projection stored before the per-side levels and the banner fields existed still
/// reads (with their defaults); replaying its events gives their true values.
#[test]
fn incident_projection_stored_before_the_new_fields_still_reads() {
    let mut run = common::Run::notified(Severity::High);
    run.ok(
        &agency(),
        Command::SetBanner {
            shown: true,
            message: None,
        },
        common::at(6 * common::MIN),
    );
    let mut json = serde_json::to_value(run.inc()).expect("serializes");
    let object = json.as_object_mut().expect("an object");
    for field in [
        "agency_escalation_level",
        "central_escalation_level",
        "banner_first_shown_at",
        "banner_exemption",
    ] {
        assert!(object.remove(field).is_some(), "{field} exists");
    }
    let old: Incident = serde_json::from_value(json).expect("old projection reads");
    assert_eq!(old.banner_first_shown_at, None);
    assert_eq!(
        Incident::replay(&run.events)
            .expect("replays")
            .banner_first_shown_at,
        Some(common::at(6 * common::MIN))
    );
}
