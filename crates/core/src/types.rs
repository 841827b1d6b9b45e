//! Identifiers and vocabulary of the protocol: newtypes that parse and never panic.
//!
//! Every type here has a `parse` (or `FromStr`) that returns a [`ParseError`] in Spanish
//! for bad input, a `Display` that gives back the canonical text, and a serde form equal to
//! that text, so a value read from JSON has always been through `parse`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text could not become one of our types. Its `Display` is Spanish: it is shown to
/// the person who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("valor no válido para {what} «{input}»: {reason}")]
pub struct ParseError {
    /// The Spanish name of the thing being parsed ("folio", "correo electrónico"...).
    pub what: &'static str,
    /// The offending input, cut to a readable length.
    pub input: String,
    /// What is wrong with it, in Spanish.
    pub reason: &'static str,
}

impl ParseError {
    fn new(what: &'static str, input: &str, reason: &'static str) -> Self {
        // Inputs come from users and mail headers: never echo back a megabyte.
        let input: String = input.chars().take(80).collect();
        ParseError {
            what,
            input,
            reason,
        }
    }
}

/// Implements `FromStr`, `Display` and string serde for a fieldless enum whose canonical
/// text is its snake_case API name. Written out as a plain macro_rules so the mapping table
/// is visible in one place per type.
macro_rules! text_enum {
    ($ty:ident, $what:literal, $reason:literal, { $($variant:ident => $text:literal, $label:literal;)+ }) => {
        impl $ty {
            /// Every value, in protocol order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The API / code name (`snake_case`).
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            /// The Spanish label shown to users.
            pub fn label(self) -> &'static str {
                match self { $($ty::$variant => $label),+ }
            }

            /// Parses the API name, ignoring surrounding spaces; the Spanish labels and
            /// any other text are refused.
            pub fn parse(input: &str) -> Result<Self, ParseError> {
                match input.trim() {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(ParseError::new($what, input, $reason)),
                }
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                $ty::parse(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $ty::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Severity set by the help desk at notification (step 2). Orders from most to least
/// severe, so `Critical < Low` in `Ord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// *Crítica*. Seed targets: ack 15 min, resolution 1 h 30 min, validation 20 min.
    Critical,
    /// *Alta*. Seed targets: ack 30 min, resolution 4 h, validation 1 h.
    High,
    /// *Media*. Seed targets: ack 1 h, resolution 8 h, validation 2 h.
    Medium,
    /// *Baja*. Seed targets: ack 1 h, resolution 24 h, validation 8 h.
    Low,
}

text_enum!(Severity, "severidad", "debe ser critical, high, medium o low", {
    Critical => "critical", "Crítica";
    High => "high", "Alta";
    Medium => "medium", "Media";
    Low => "low", "Baja";
});

/// The four failures the seed's definition of *incidencia* names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncidentKind {
    /// *No disponible*: the procedure cannot be reached at all.
    Unavailable,
    /// *Intermitencia*: it works and fails by turns.
    Intermittent,
    /// *Tiempos de respuesta lentos*: it works, but answers slowly. PROTOCOL.md lets only
    /// this kind keep the portal button at notification; [`crate::decide()`] does not check.
    Slow,
    /// *No permite la correcta finalización*: it can be started but not completed.
    CannotComplete,
}

text_enum!(IncidentKind, "tipo de incidencia",
    "debe ser unavailable, intermittent, slow o cannot_complete", {
    Unavailable => "unavailable", "No disponible";
    Intermittent => "intermittent", "Intermitente";
    Slow => "slow", "Lento";
    CannotComplete => "cannot_complete", "No se puede concluir";
});

/// How the report of step 1 reached the help desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An email to the help desk.
    Email,
    /// A phone call to the help desk.
    Phone,
    /// A web page (*Portal web*).
    Web,
    /// The HTTP API, from another system.
    Api,
    /// Automatic monitoring: a failing probe.
    Monitor,
}

text_enum!(Channel, "canal", "debe ser email, phone, web, api o monitor", {
    Email => "email", "Correo electrónico";
    Phone => "phone", "Teléfono";
    Web => "web", "Portal";
    Api => "api", "API";
    Monitor => "monitor", "Monitoreo";
});

/// What a user may do. Agency users additionally belong to one agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Administration: accounts, catalogue, SLO policy. Takes no step of the protocol.
    Admin,
    /// *Mesa de ayuda gob.mx*: registers, notifies, reviews the form, changes severity,
    /// escalates, closes and dismisses.
    Helpdesk,
    /// CEDN: validates norms and standards (step 4) and switches the portal button.
    Validator,
    /// *Dependencia*: agency staff, the procedures' responsibles among them; report,
    /// acknowledge, show the banner, correct, deliver the form. Own agency only.
    Agency,
}

text_enum!(Role, "rol", "debe ser admin, helpdesk, validator o agency", {
    Admin => "admin", "Administración";
    Helpdesk => "helpdesk", "Mesa de ayuda gob.mx";
    Validator => "validator", "CEDN";
    Agency => "agency", "Dependencia";
});

/// Implements the integer id newtypes. Ids are assigned by the store; the core only
/// compares them.
macro_rules! id_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(pub i64);

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A government body that owns procedures (*Dependencia*).
    AgencyId
);
id_type!(
    /// A person with an account.
    UserId
);
id_type!(
    /// A procedure published on the portal (*Trámite o servicio*).
    ProcedureId
);

/// Human identifier of an incident: `INC-YYYY-NNNNNN`, unique and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Folio {
    year: u16,
    number: u32,
}

impl Folio {
    /// The largest sequence number that fits the six digits.
    pub const MAX_NUMBER: u32 = 999_999;

    /// Builds a folio from its parts; `None` when they do not fit `INC-YYYY-NNNNNN`
    /// (year 1000..=9999, number 1..=999999).
    pub fn new(year: u16, number: u32) -> Option<Folio> {
        ((1000..=9999).contains(&year) && (1..=Self::MAX_NUMBER).contains(&number))
            .then_some(Folio { year, number })
    }

    /// The four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The six-digit sequence number (1..=999999).
    pub fn number(self) -> u32 {
        self.number
    }

    /// Parses `INC-YYYY-NNNNNN`; the prefix may be in any case, surrounding spaces are
    /// ignored.
    pub fn parse(input: &str) -> Result<Folio, ParseError> {
        const WHAT: &str = "folio";
        let text = input.trim();
        let bytes = text.as_bytes();
        // "INC-" + 4 digits + "-" + 6 digits.
        if bytes.len() != 15 || !text.is_ascii() {
            return Err(ParseError::new(
                WHAT,
                input,
                "debe tener la forma INC-AAAA-NNNNNN",
            ));
        }
        let (prefix, year, dash, number) = (&text[..4], &text[4..8], &text[8..9], &text[9..]);
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !prefix.eq_ignore_ascii_case("INC-") || dash != "-" || !digits(year) || !digits(number) {
            return Err(ParseError::new(
                WHAT,
                input,
                "debe tener la forma INC-AAAA-NNNNNN",
            ));
        }
        let year: u16 = year
            .parse()
            .map_err(|_| ParseError::new(WHAT, input, "año no válido"))?;
        let number: u32 = number
            .parse()
            .map_err(|_| ParseError::new(WHAT, input, "número no válido"))?;
        Folio::new(year, number).ok_or_else(|| {
            ParseError::new(
                WHAT,
                input,
                "el año debe tener cuatro cifras y el número no puede ser cero",
            )
        })
    }
}

impl fmt::Display for Folio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{:04}-{:06}", self.year, self.number)
    }
}

/// Key of a procedure in the national catalogue, e.g. `SEGOB-01-001` or `IMSS-02-001-A`:
/// the agency's acronym (2 to 12 letters), a two-digit series, a three-digit number and an
/// optional one-letter modality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Homoclave(String);

impl Homoclave {
    /// Parses a homoclave, ignoring surrounding spaces; kept in uppercase.
    pub fn parse(input: &str) -> Result<Homoclave, ParseError> {
        const WHAT: &str = "homoclave";
        const SHAPE: &str = "debe tener la forma SIGLAS-NN-NNN o SIGLAS-NN-NNN-L";
        let text = input.trim().to_ascii_uppercase();
        let parts: Vec<&str> = text.split('-').collect();
        let letters = |s: &str, min, max| {
            (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
        };
        let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match parts.as_slice() {
            [acronym, series, number] => {
                letters(acronym, 2, 12) && digits(series, 2) && digits(number, 3)
            }
            [acronym, series, number, modality] => {
                letters(acronym, 2, 12)
                    && digits(series, 2)
                    && digits(number, 3)
                    && letters(modality, 1, 1)
            }
            _ => false,
        };
        if ok {
            Ok(Homoclave(text))
        } else {
            Err(ParseError::new(WHAT, input, SHAPE))
        }
    }

    /// The canonical text, in uppercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Homoclave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked enough to be safe in a header and plausible to deliver to:
/// one `@`, a non-empty local part of printable ASCII without spaces or header
/// metacharacters, a domain of dot-separated labels. Kept in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Checks an address, ignoring surrounding spaces, and lowercases it.
    pub fn parse(input: &str) -> Result<Email, ParseError> {
        const WHAT: &str = "correo electrónico";
        let text = input.trim();
        if text.is_empty() || text.len() > 254 {
            return Err(ParseError::new(
                WHAT,
                input,
                "debe tener entre 1 y 254 caracteres",
            ));
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(ParseError::new(WHAT, input, "falta la arroba (@)"));
        };
        // Characters that would let an address break out of a mail header, or that no
        // sane mailbox uses unquoted.
        let forbidden = |c: char| {
            !c.is_ascii_graphic()
                || matches!(
                    c,
                    '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'
                )
        };
        if local.is_empty() || local.len() > 64 || local.chars().any(forbidden) {
            return Err(ParseError::new(
                WHAT,
                input,
                "la parte antes de la arroba no es válida",
            ));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(ParseError::new(
                WHAT,
                input,
                "la parte antes de la arroba no es válida",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(ParseError::new(WHAT, input, "el dominio no es válido"));
        }
        // Whole address in lowercase: mailboxes here are case-insensitive in practice, and
        // one person must not become two accounts (or two login counters) by a capital.
        Ok(Email(format!(
            "{}@{}",
            local.to_ascii_lowercase(),
            domain.to_ascii_lowercase()
        )))
    }

    /// The whole address, in lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`, lowercase.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serde for the text newtypes: serialize as the canonical text, deserialize through
/// `parse`, so invalid JSON values are rejected with the Spanish reason.
macro_rules! text_serde {
    ($ty:ident) => {
        impl FromStr for $ty {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                $ty::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $ty::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_serde!(Folio);
text_serde!(Homoclave);
text_serde!(Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folio_round_trips_and_rejects_bad_shapes() {
        let folio = Folio::parse("INC-2026-000123").expect("valid folio");
        assert_eq!(folio.to_string(), "INC-2026-000123");
        assert_eq!(folio.number(), 123);
        assert_eq!(Folio::parse("inc-2026-000123"), Ok(folio));
        for bad in [
            "",
            "INC-2026-00012",
            "INC-2026-0001234",
            "INC-26-000123",
            "ABC-2026-000123",
            "INC-2026-000000",
            "INC-0999-000001",
            "INC-2026_000123",
            "INC-2026-00012٣",
            "INC-2026-+00012",
        ] {
            assert!(Folio::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn homoclave_accepts_catalogue_shapes() {
        assert_eq!(
            Homoclave::parse("segob-01-001").map(|h| h.to_string()),
            Ok("SEGOB-01-001".to_string())
        );
        assert!(Homoclave::parse("IMSS-02-001-A").is_ok());
        for bad in [
            "SEGOB-1-001",
            "S-01-001",
            "SEGOB-01-0011",
            "SEGOB-01-001-AB",
            "SEGOB01001",
            "",
            "SEGOB-01-001-",
            "ÑU-01-001",
        ] {
            assert!(Homoclave::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn email_rejects_header_injection_and_is_kept_lowercase() {
        let e = Email::parse("Ana.Lopez@SEGOB.gob.mx").expect("valid");
        assert_eq!(e.as_str(), "ana.lopez@segob.gob.mx");
        assert_eq!(e.domain(), "segob.gob.mx");
        for bad in [
            "ana@segob.gob.mx\r\nBcc: x@y.mx",
            "ana lopez@segob.gob.mx",
            "@segob.gob.mx",
            "ana@",
            "ana@localhost",
            "ana@@segob.gob.mx",
            "<ana@segob.gob.mx>",
            "ana.@segob.gob.mx",
            "ana@-segob.gob.mx",
            "añá@segob.gob.mx",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn enums_parse_their_api_names_only() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Ok(*s));
        }
        assert!(Severity::parse("Critica").is_err());
        assert_eq!(Channel::parse("phone"), Ok(Channel::Phone));
        assert_eq!(
            IncidentKind::parse("cannot_complete"),
            Ok(IncidentKind::CannotComplete)
        );
        assert!(Role::parse("root").is_err());
        let err = Severity::parse("urgente").expect_err("invalid");
        assert!(
            err.to_string().contains("valor no válido para severidad"),
            "{err}"
        );
    }
}
