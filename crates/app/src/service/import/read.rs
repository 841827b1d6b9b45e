//! Reading an import file: encoding, delimiter, header, cells (see the parent module for
//! the rules).

use super::ImportKind;
use crate::service::ServiceError;

/// The columns of each kind: Spanish name (as shown and as the header writes it) and the
/// API names also accepted.
pub(super) const PROCEDURE_COLUMNS: &[(&str, &[&str])] = &[
    ("homoclave", &["homoclave"]),
    ("nombre", &["name"]),
    ("dependencia", &["agency", "acronym", "agency_acronym"]),
    ("url", &["url"]),
    ("responsable", &["responsible", "responsible_email"]),
];
pub(super) const USER_COLUMNS: &[(&str, &[&str])] = &[
    ("correo", &["email"]),
    ("nombre", &["name"]),
    ("rol", &["role"]),
    ("dependencia", &["agency", "acronym", "agency_acronym"]),
    ("superior", &["reports_to", "superior_email"]),
];

/// Largest file accepted (a 10,000-row catalogue is about 1.5 MB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

fn file_error(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("archivo", message)
}

/// The file's rows as (line, cells in the kind's column order).
pub(super) fn read_rows(
    kind: ImportKind,
    bytes: &[u8],
) -> Result<Vec<(usize, Vec<String>)>, ServiceError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(file_error(format!(
            "el archivo excede {} MB",
            MAX_IMPORT_BYTES / 1024 / 1024
        )));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        file_error(format!(
            "la línea {line} no está en UTF-8; guarde el archivo como «CSV UTF-8»"
        ))
    })?;
    let header_line = text.lines().next().unwrap_or("");
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let columns = match kind {
        ImportKind::Procedures => PROCEDURE_COLUMNS,
        ImportKind::Users => USER_COLUMNS,
    };
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(file_error(format!("encabezado ilegible: {e}"))),
        None => return Err(file_error("el archivo está vacío")),
    };
    // Column i of the kind is cell positions[i] of each record.
    let mut positions = vec![None; columns.len()];
    for (at, name) in header.iter().enumerate() {
        let name = name.split('(').next().unwrap_or("").trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        let Some(i) = columns
            .iter()
            .position(|(es, api)| *es == name || api.contains(&name.as_str()))
        else {
            return Err(file_error(format!(
                "columna desconocida «{name}»; se esperan: {}",
                columns.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            )));
        };
        if positions[i].is_some() {
            return Err(file_error(format!(
                "la columna «{}» aparece dos veces",
                columns[i].0
            )));
        }
        positions[i] = Some(at);
    }
    let optional =
        |name: &str| name == "superior" || (kind == ImportKind::Users && name == "dependencia");
    let missing: Vec<&str> = columns
        .iter()
        .zip(&positions)
        .filter(|((name, _), p)| p.is_none() && !optional(name))
        .map(|((name, _), _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(file_error(format!(
            "faltan columnas en el encabezado: {}",
            missing.join(", ")
        )));
    }
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            file_error(format!("la línea {line} no se puede leer: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line()) as usize;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cells = positions
            .iter()
            .map(|p| p.and_then(|p| record.get(p)).unwrap_or("").to_string())
            .collect();
        rows.push((line, cells));
    }
    Ok(rows)
}
