//! What a new password must be (OWASP ASVS 4.0 V2.1): at least 12 characters (runs of
//! spaces count as one) and at most 128, not the account's own address (nor the part before the `@`), and not one of the
//! common passwords shipped with the binary (`common_passwords.txt`, compared without
//! case). Every way a password is set goes through [`password_problem`]: creating a
//! user (API, pages, command line) and changing one's own.

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (ASVS 2.1.2: at least 64 allowed, over 128 refused).
pub const MAX_PASSWORD_CHARS: usize = 128;

const COMMON: &str = include_str!("common_passwords.txt");

fn is_common(lower: &str) -> bool {
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l == lower)
}

/// Why `password` cannot be the password of `email`, in Spanish; `None` when it can.
pub fn password_problem(password: &str, email: &str) -> Option<String> {
    // Twelve spaces are not twelve characters of secret.
    let collapsed = password
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>();
    let meaningful = collapsed.iter().map(|w| w.chars().count()).sum::<usize>()
        + collapsed.len().saturating_sub(1);
    let chars = password.chars().count();
    if meaningful < MIN_PASSWORD_CHARS {
        return Some(format!(
            "debe tener al menos {MIN_PASSWORD_CHARS} caracteres"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("no puede exceder {MAX_PASSWORD_CHARS} caracteres"));
    }
    let lower = password.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if !email.is_empty() && (lower == email || lower == local) {
        return Some("no puede ser el correo electrónico de la cuenta".into());
    }
    if is_common(&lower) {
        return Some("es una contraseña común, fácil de adivinar; elija otra".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_long_own_address_and_common_passwords_are_refused() {
        let email = "responsable.tramites@sepru.gob.mx";
        assert!(password_problem("once-letras", email).is_some_and(|p| p.contains("12")));
        assert_eq!(password_problem("doce-letras!", email), None);
        assert!(password_problem(&"x".repeat(129), email).is_some());
        assert_eq!(password_problem(&"x".repeat(128), email), None);
        assert!(password_problem(&" ".repeat(20), email).is_some());
        assert!(
            password_problem("corta      clave", email).is_some(),
            "5 + 1 + 5"
        );
        assert_eq!(password_problem("larguisima   clave", email), None);
        assert!(
            password_problem("Responsable.Tramites@sepru.gob.mx", email)
                .is_some_and(|p| p.contains("correo"))
        );
        assert!(password_problem("responsable.tramites", email).is_some());
        for common in [
            "Contraseña123",
            "QWERTYUIOP12",
            "123456789012",
            "mesadeayuda2026",
        ] {
            assert!(
                password_problem(common, email).is_some_and(|p| p.contains("común")),
                "{common} is refused as common"
            );
        }
        assert_eq!(password_problem("caballo-bateria-grapa", email), None);
    }

    #[test]
    fn the_shipped_list_only_holds_what_the_length_rule_lets_through() {
        for line in COMMON
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            assert!(
                line.chars().count() >= MIN_PASSWORD_CHARS,
                "{line}: shorter ones are refused by length already"
            );
            assert_eq!(line, line.to_lowercase(), "{line}: kept in lower case");
        }
    }
}
