//! Reading a received email: who sent it, which incident it is about, whether it is an
//! auto-reply, and what its new text (without the quoted reply) says. Pure: the service
//! decides what to do with it.

use mail_parser::{HeaderValue, MessageParser};

/// Largest message accepted (attachments included).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// What a received message says, as far as the protocol cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub message_id: Option<String>,
    pub sender: String,
    pub subject: String,
    /// A folio found in the reply headers (with the template kind of the message replied
    /// to), else in the subject.
    pub folio: Option<String>,
    /// Our message this one replies to, as its headers name it.
    pub replied: Option<Replied>,
    /// The raw value of the topmost `Authentication-Results` header: the receiving
    /// server's, when it is the one we trust (`authenticity.rs`).
    pub auth_results: Option<String>,
    pub auto_reply: bool,
    /// The text the sender wrote, without the quoted part.
    pub new_text: String,
    /// Subject and whole text, for finding a homoclave.
    pub searchable: String,
    /// The message's `Date` header, when it has a readable one: a report's first guess of
    /// when the failure began.
    pub date: Option<jiff::Timestamp>,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundError {
    TooLarge,
    Unreadable,
}

/// The first `INC-YYYY-NNNNNN` in `text`, uppercased.
pub fn find_folio(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut i = 0;
    while let Some(pos) = upper[i..].find("INC-") {
        let start = i + pos;
        let candidate = bytes.get(start..start + 15);
        if let Some(c) = candidate {
            let ok = c[4..8].iter().all(u8::is_ascii_digit)
                && c[8] == b'-'
                && c[9..15].iter().all(u8::is_ascii_digit);
            let boundary = bytes.get(start + 15).is_none_or(|b| !b.is_ascii_digit());
            if ok && boundary {
                return Some(String::from_utf8_lossy(c).into_owned());
            }
        }
        i = start + 4;
    }
    None
}

/// One of our messages, named by a reply's `In-Reply-To` or `References`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replied {
    pub folio: String,
    /// The template kind (`notification` for step 2).
    pub kind: String,
    /// The Message-ID as stored in the outbox: `<FOLIO.SEQ.KIND.N@incidencias.gob.mx>`.
    pub stored_id: String,
    /// `FOLIO.SEQ.KIND.N`, what the mark signs.
    pub base: String,
    /// The signature the Message-ID was sent with, when the reply names it.
    pub mark: Option<String>,
}

/// Our Message-IDs: `<INC-2026-000001.3.notification.0.MARK@incidencias.gob.mx>` as sent
/// (`<…0@…>` as stored, and as sent before marks).
fn our_reference(id: &str) -> Option<Replied> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = id.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case("incidencias.gob.mx") {
        return None;
    }
    let parts: Vec<&str> = local.split('.').collect();
    let (base, mark) = match parts.as_slice() {
        [_, _, _, _] => (local, None),
        [_, _, _, _, mark] => (local.rsplit_once('.')?.0, Some(mark.to_string())),
        _ => return None,
    };
    let folio = find_folio(parts[0])?;
    if parts[0].len() != folio.len() || !parts[1].chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(Replied {
        stored_id: format!("<{base}@incidencias.gob.mx>"),
        base: base.to_string(),
        kind: parts[2].to_string(),
        folio,
        mark,
    })
}

fn header_ids(value: &HeaderValue) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The part of a reply its sender wrote: everything before the first quoted line or
/// quoted-message header, as the common clients write them.
pub fn new_text(body: &str) -> String {
    let mut out = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let quote_header = (lower.starts_with("el ") && lower.ends_with("escribió:"))
            || (lower.starts_with("on ") && lower.ends_with("wrote:"))
            || lower.contains("-----mensaje original-----")
            || lower.contains("-----original message-----")
            || lower.starts_with("de:")
            || lower.starts_with("from:")
            || lower.starts_with("________________");
        // A signature or an institutional disclaimer ends what the sender wrote too.
        let footer = t == "--"
            || lower.starts_with("si usted ha recibido este mensaje")
            || lower.starts_with("aviso de confidencialidad")
            || lower.starts_with("este mensaje es confidencial")
            || lower.starts_with("la información contenida en este");
        if t.starts_with('>') || quote_header || footer {
            break;
        }
        out.push(line);
    }
    out.join("\n").trim().to_string()
}

fn is_auto_reply(message: &mail_parser::Message, subject: &str) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|v| v != "no")
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence")
            .is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk"))
    {
        return true;
    }
    let s = subject.trim().to_lowercase();
    [
        "fuera de la oficina",
        "respuesta automática",
        "respuesta automatica",
        "automatic reply",
        "out of office",
        "autoreply",
    ]
    .iter()
    .any(|p| s.starts_with(p))
}

pub fn read(raw: &[u8]) -> Result<Inbound, InboundError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(InboundError::TooLarge);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(InboundError::Unreadable)?;
    let sender = sender_of(&message)
        .filter(|a| a.contains('@'))
        .ok_or(InboundError::Unreadable)?;
    let subject = message.subject().unwrap_or_default().to_string();
    let mut references = Vec::new();
    for name in ["In-Reply-To", "References"] {
        if let Some(v) = message.header(name) {
            references.extend(header_ids(v));
        }
    }
    // A marked reference names the message answered better than an unmarked one.
    let ours: Vec<Replied> = references.iter().filter_map(|r| our_reference(r)).collect();
    let replied = ours
        .iter()
        .find(|r| r.mark.is_some())
        .or(ours.first())
        .cloned();
    let folio = replied
        .as_ref()
        .map(|r| r.folio.clone())
        .or_else(|| find_folio(&subject));
    let auth_results = message
        .headers_raw()
        .find(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| value.to_string());
    let body = message
        .body_text(0)
        .map(|t| t.to_string())
        .unwrap_or_default();
    Ok(Inbound {
        message_id: message.message_id().map(str::to_string),
        auto_reply: is_auto_reply(&message, &subject),
        new_text: new_text(&body),
        searchable: format!("{subject}\n{body}"),
        sender,
        subject,
        folio,
        replied,
        auth_results,
        date: message
            .date()
            .and_then(|d| jiff::Timestamp::from_second(d.to_timestamp()).ok()),
    })
}

/// The first From address, trimmed and in lower case.
fn sender_of(message: &mail_parser::Message<'_>) -> Option<String> {
    message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
}

/// Sender and subject of a message that could not be taken, for the triage queue:
/// whatever its first 256 KB of headers say, else placeholders.
pub fn best_effort_headers(raw: &[u8]) -> (String, String) {
    let head = &raw[..raw.len().min(256 * 1024)];
    let parsed = MessageParser::default().parse_headers(head);
    let sender = parsed
        .as_ref()
        .and_then(sender_of)
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "(remitente ilegible)".into());
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .map(str::to_string)
        .unwrap_or_else(|| "(sin asunto)".into());
    (sender, subject)
}

fn fold(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' => 'a',
            'é' => 'e',
            'í' => 'i',
            'ó' => 'o',
            'ú' | 'ü' => 'u',
            other => other,
        })
        .collect()
}

/// What the new text asks: (acknowledges, notifies resolution). Whole words only, not in
/// a question ("¿ya quedó resuelto?") and not denied ("no hemos recibido").
pub fn intents(new_text: &str) -> (bool, bool) {
    const ACK: &[&str] = &["enterado", "enterados", "enterada", "recibido", "confirmo"];
    const RESOLVED: &[&str] = &[
        "resuelto",
        "resuelta",
        "corregido",
        "corregida",
        "solucionado",
        "solucionada",
        "restablecido",
        "restablecida",
    ];
    // A question starts where its '¿' is, even mid-sentence.
    let text = fold(new_text).replace('¿', "\n¿");
    let (mut ack, mut resolved) = (false, false);
    for sentence in text.split_inclusive(['.', '!', '?', ';', '\n']) {
        if sentence.contains('¿') || sentence.trim_end().ends_with('?') {
            continue;
        }
        let words: Vec<&str> = sentence
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let denied = words[i.saturating_sub(2)..i].contains(&"no");
            if denied {
                continue;
            }
            ack |= ACK.contains(w);
            resolved |= RESOLVED.contains(w);
        }
    }
    (ack, resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folios_and_references_are_found() {
        assert_eq!(
            find_folio("Re: [inc-2026-000123] aviso"),
            Some("INC-2026-000123".into())
        );
        assert_eq!(find_folio("INC-2026-1234567"), None);
        let stored = "<INC-2026-000001.3.notification.0@incidencias.gob.mx>";
        let unmarked = our_reference(stored).expect("ours");
        assert_eq!(
            (
                unmarked.folio.as_str(),
                unmarked.kind.as_str(),
                unmarked.mark
            ),
            ("INC-2026-000001", "notification", None)
        );
        let marked = our_reference("<INC-2026-000001.3.notification.0.0a1b2c@incidencias.gob.mx>")
            .expect("ours");
        assert_eq!(marked.mark.as_deref(), Some("0a1b2c"));
        assert_eq!(marked.base, "INC-2026-000001.3.notification.0");
        assert_eq!(marked.stored_id, stored);
        assert_eq!(our_reference("<abc@gmail.com>"), None);
        assert_eq!(
            our_reference("<INC-2026-000001.x.notification.0@incidencias.gob.mx>"),
            None
        );
    }

    #[test]
    fn the_quoted_part_is_not_read_as_new_text() {
        let body = "Enterado.\r\n\r\nEl jue, 27 nov 2026 a las 9:05, Mesa <m@x.mx> escribió:\r\n> corregido";
        assert_eq!(new_text(body), "Enterado.");
        assert_eq!(intents(&new_text(body)), (true, false));
        assert_eq!(intents("Ya quedó SOLUCIONADA la falla"), (false, true));
        assert_eq!(
            intents("No hemos recibido respuesta del proveedor."),
            (false, false)
        );
        assert_eq!(intents("¿Ya quedó resuelto? Enterado."), (true, false));
        assert_eq!(intents("Quedamos enterados"), (true, false));
        assert_eq!(
            intents("Enterado. Ya quedó restablecido; ¿requieren algo más?"),
            (true, true)
        );
        let signed = "Recibido.\n--\nSi usted ha recibido este mensaje por error, corregido";
        assert_eq!(intents(&new_text(signed)), (true, false));
    }
}
