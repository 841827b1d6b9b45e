//! Whether a received message really comes from its `From` address. `From` alone is
//! trivial to forge, so a message acts on an incident only when one of these vouches for it:
//!
//! - the receiving mail server we trust (INCIDENCIAS_MAIL_AUTHSERV_ID, its authserv-id):
//!   its `Authentication-Results` header (RFC 8601) says DMARC passed for the domain of
//!   `From`, or, without a DMARC result, SPF and DKIM both passed for that very domain
//!   (strict alignment). Only the topmost `Authentication-Results` header is read: the
//!   receiving server writes its own above everything the sender wrote, so a header the
//!   sender added (even one naming our server) is never believed;
//! - the mark of the message it answers: our Message-IDs carry a signature only we can
//!   make (`links::LinkSigner::mark_message_id`), and the reply's sender must be one of
//!   that message's recipients.
//!
//! A message whose DMARC (or SPF or DKIM) fails for its sender's domain never acts, token
//! or not: it goes to the triage queue with the reason. Pure: the service decides.

/// What the trusted receiving server says about a message's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// DMARC, or SPF and DKIM, passed for the sender's domain.
    Pass,
    /// A check failed for the sender's domain: the reason, in Spanish.
    Fail(String),
    /// Nothing to go by: no trusted server configured, its header absent, or no result
    /// that settles it.
    Unknown(String),
}

/// One `method=result` of an `Authentication-Results` header with its properties
/// (`header.from`, `header.d`, `smtp.mailfrom`...), names in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub method: String,
    pub result: String,
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An `Authentication-Results` header, parsed: who wrote it and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// The value without RFC 5322 comments (parenthesised, nestable, with `\` escapes), quoted
/// strings kept as they are.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    if let Some(n) = next {
                        out.push(n);
                    }
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// Parses one header value (folded or not). `None` when it has no authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    let text = without_comments(value).replace(['\r', '\n', '\t'], " ");
    let mut parts = text.split(';');
    let authserv_id = parts
        .next()?
        .split_whitespace()
        .next()?
        .to_ascii_lowercase();
    let mut results = Vec::new();
    for part in parts {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            continue;
        };
        // `dkim/1=pass`: a method may name its version.
        let method = method
            .split('/')
            .next()
            .unwrap_or(method)
            .to_ascii_lowercase();
        let properties = words
            .filter_map(|w| w.split_once('='))
            .map(|(n, v)| (n.to_ascii_lowercase(), unquote(v).to_ascii_lowercase()))
            .collect();
        results.push(MethodResult {
            method,
            result: result.to_ascii_lowercase(),
            properties,
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// The domain of an address or of a bare domain (`smtp.mailfrom` may be either; DKIM's
/// `header.i` is `@domain` or `user@domain`).
fn domain_of(value: &str) -> &str {
    value.rsplit_once('@').map_or(value, |(_, d)| d).trim()
}

/// What the topmost `Authentication-Results` header (`topmost`, its raw value) says about
/// `sender`'s domain, believed only when written by `trusted` (the receiving server's
/// authserv-id); `None` when no server is trusted.
pub fn verdict(trusted: Option<&str>, topmost: Option<&str>, sender: &str) -> Verdict {
    let Some(trusted) = trusted else {
        return Verdict::Unknown("no hay un servidor de correo de confianza configurado".into());
    };
    let Some(header) = topmost.and_then(parse) else {
        return Verdict::Unknown(
            "el correo no trae el resultado de autenticación del servidor de confianza".into(),
        );
    };
    if !header.authserv_id.eq_ignore_ascii_case(trusted.trim()) {
        return Verdict::Unknown(format!(
            "el primer resultado de autenticación es de «{}», no del servidor de confianza",
            header.authserv_id
        ));
    }
    let domain = domain_of(sender).to_ascii_lowercase();
    let results = &header.results;
    let of = |method: &'static str| results.iter().filter(move |r| r.method == method);
    let failed = |r: &MethodResult| !matches!(r.result.as_str(), "pass" | "none" | "neutral");
    // DMARC decides when the server evaluated it for this domain.
    let dmarc: Vec<_> = of("dmarc")
        .filter(|r| r.property("header.from").is_none_or(|d| d == domain))
        .collect();
    if let Some(r) = dmarc.iter().find(|r| r.result != "pass") {
        return Verdict::Fail(format!("DMARC «{}» para {domain}", r.result));
    }
    if !dmarc.is_empty() {
        return Verdict::Pass;
    }
    // Without DMARC: SPF and DKIM, each for the sender's own domain.
    let spf = of("spf").find(|r| {
        r.property("smtp.mailfrom")
            .or_else(|| r.property("smtp.helo"))
            .is_some_and(|d| domain_of(d) == domain)
    });
    let dkim: Vec<_> = of("dkim")
        .filter(|r| {
            r.property("header.d")
                .or_else(|| r.property("header.i").map(domain_of))
                .is_some_and(|d| d == domain)
        })
        .collect();
    if let Some(r) = spf.filter(|r| failed(r)) {
        return Verdict::Fail(format!("SPF «{}» para {domain}", r.result));
    }
    if let Some(r) = dkim.iter().find(|r| failed(r)) {
        return Verdict::Fail(format!("DKIM «{}» para {domain}", r.result));
    }
    let spf_pass = spf.is_some_and(|r| r.result == "pass");
    let dkim_pass = dkim.iter().any(|r| r.result == "pass");
    if spf_pass && dkim_pass {
        return Verdict::Pass;
    }
    Verdict::Unknown(format!(
        "el servidor de confianza no confirmó DMARC ni SPF y DKIM para {domain}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MX: Option<&str> = Some("mx.incidencias.gob.mx");

    #[test]
    fn dmarc_pass_for_the_senders_domain_is_a_pass() {
        let h = "mx.incidencias.gob.mx;\r\n\tdkim=pass (2048-bit key) header.d=sepru.gob.mx;\r\n\
                 \tspf=pass smtp.mailfrom=rebote@sepru.gob.mx;\r\n\tdmarc=pass (p=reject) header.from=sepru.gob.mx";
        assert_eq!(verdict(MX, Some(h), "ana@sepru.gob.mx"), Verdict::Pass);
    }

    #[test]
    fn dmarc_fail_is_a_failure_naming_the_domain() {
        let h = "mx.incidencias.gob.mx; dmarc=fail header.from=sepru.gob.mx";
        assert_eq!(
            verdict(MX, Some(h), "ana@sepru.gob.mx"),
            Verdict::Fail("DMARC «fail» para sepru.gob.mx".into())
        );
    }

    #[test]
    fn dmarc_for_another_domain_does_not_vouch_for_the_sender() {
        let h = "mx.incidencias.gob.mx; dmarc=pass header.from=atacante.example";
        assert!(matches!(
            verdict(MX, Some(h), "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn spf_and_dkim_both_aligned_pass_without_dmarc() {
        let both = "mx.incidencias.gob.mx; spf=pass smtp.mailfrom=sepru.gob.mx; \
                    dkim=pass header.i=@sepru.gob.mx";
        assert_eq!(verdict(MX, Some(both), "ana@sepru.gob.mx"), Verdict::Pass);
        let spf_only = "mx.incidencias.gob.mx; spf=pass smtp.mailfrom=sepru.gob.mx";
        assert!(matches!(
            verdict(MX, Some(spf_only), "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
        // DKIM by a third party (a mailing service's own domain) is not alignment.
        let other = "mx.incidencias.gob.mx; spf=pass smtp.mailfrom=sepru.gob.mx; \
                     dkim=pass header.d=envios.example";
        assert!(matches!(
            verdict(MX, Some(other), "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
        let softfail = "mx.incidencias.gob.mx; spf=softfail smtp.mailfrom=sepru.gob.mx; \
                        dkim=pass header.d=sepru.gob.mx";
        assert_eq!(
            verdict(MX, Some(softfail), "ana@sepru.gob.mx"),
            Verdict::Fail("SPF «softfail» para sepru.gob.mx".into())
        );
    }

    #[test]
    fn a_header_of_another_server_or_none_settles_nothing() {
        let h = "mx.atacante.example; dmarc=pass header.from=sepru.gob.mx";
        assert!(matches!(
            verdict(MX, Some(h), "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
        assert!(matches!(
            verdict(MX, None, "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
        let ours = "mx.incidencias.gob.mx; dmarc=pass header.from=sepru.gob.mx";
        assert!(matches!(
            verdict(None, Some(ours), "ana@sepru.gob.mx"),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn comments_and_quotes_do_not_confuse_the_parser() {
        let h = "mx.incidencias.gob.mx (Postfix; dmarc=pass header.from=sepru.gob.mx);\
                 dmarc=fail (\"p=reject; dmarc=pass\") header.from=\"sepru.gob.mx\"";
        let parsed = parse(h).expect("an authserv-id");
        assert_eq!(parsed.authserv_id, "mx.incidencias.gob.mx");
        assert_eq!(parsed.results.len(), 1, "{parsed:?}");
        assert_eq!(
            verdict(MX, Some(h), "ana@sepru.gob.mx"),
            Verdict::Fail("DMARC «fail» para sepru.gob.mx".into())
        );
        assert_eq!(parse("  ;; "), None);
        let none = parse("mx.incidencias.gob.mx 1; none").expect("parsed");
        assert!(none.results.is_empty());
    }
}
