//! The OpenAPI document as the code really answers, checked by schemathesis
//! (`scripts/api-conformance`). The handlers' `#[utoipa::path]` attributes say what each
//! route does; what every route shares is added here, once, after the routes are known:
//!
//! - problem documents are `application/problem+json` (RFC 9457);
//! - the refusals the shared extractors produce: 401 and 403 on every authenticated
//!   operation, 400/413/415/422 where a JSON body is read, 422 where query parameters are
//!   read, 400 and 422 where `Idempotency-Key` is honoured, 400 and 404 for a folio in the
//!   path, 404 for an id or a homoclave;
//! - the shapes the handlers enforce: the folio's and the homoclave's patterns, the
//!   `Idempotency-Key`'s length and characters, list bounds, and the names each text field
//!   accepts (taken from the core's own lists, so they cannot drift);
//! - unsigned 32-bit integers as what they are (utoipa writes them as `int32`).

use incidencias_core::{Channel, IncidentKind, IncidentState, Role, Severity};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{
    ArrayItems, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::service::{InboundDisposition, MAX_LIST, OutboxState};

const PROBLEM: &str = "application/problem+json";

/// `INC-YYYY-NNNNNN`, the number not all zeros.
pub const FOLIO_PATTERN: &str = "^INC-[1-9][0-9]{3}-(?!0{6})[0-9]{6}$";
/// A homoclave: agency, two digits, three digits, an optional modality letter.
pub const HOMOCLAVE_PATTERN: &str = "^[A-Za-z]{2,12}-[0-9]{2}-[0-9]{3}(-[A-Za-z])?$";
/// 1 to 200 visible characters, spaces only inside.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,198}[!-~])?$";

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn is_problem(content: &RefOr<utoipa::openapi::Content>) -> bool {
    matches!(content, RefOr::T(c)
        if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")))
}

fn texts(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

fn severities() -> Object {
    texts(Severity::ALL.iter().map(|s| s.as_str()))
}

/// Rewrites what every operation shares; see the module's documentation.
pub fn conform(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            conform_operation(path, op);
        }
    }
    if let Some(components) = api.components.as_mut() {
        for (name, schema) in components.schemas.iter_mut() {
            if let RefOr::T(Schema::Object(o)) = schema {
                conform_body(name, o);
            }
            walk(schema);
        }
    }
}

fn conform_operation(path: &str, op: &mut Operation) {
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response
            && r.content.get("application/json").is_some_and(is_problem)
            && let Some(c) = r.content.shift_remove("application/json")
        {
            r.content.insert(PROBLEM.into(), c);
        }
    }
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r == &Default::default()));
    let json_body =
        matches!(&op.request_body, Some(RefOr::T(b)) if b.content.contains_key("application/json"));
    let params: Vec<(ParameterIn, String)> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some((p.parameter_in.clone(), p.name.clone())),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has = |place: ParameterIn, name: &str| {
        params
            .iter()
            .any(|(p, n)| *p == place && n.eq_ignore_ascii_case(name))
    };
    let query = params.iter().any(|(p, _)| *p == ParameterIn::Query);
    let idempotent = has(ParameterIn::Header, "Idempotency-Key");
    let mut add = |code: &str, description: &str| {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| problem(description));
    };
    if secured {
        add("401", "Sin credenciales válidas");
        add(
            "403",
            "El rol no permite la operación, o la solicitud con cookie no proviene de las páginas del servicio",
        );
    }
    if json_body {
        add("400", "Cuerpo que no es JSON válido");
        add("413", "Cuerpo demasiado grande");
        add("415", "El cuerpo no es application/json");
        add("422", "Datos no válidos (cada campo con su motivo)");
    }
    if query {
        add("422", "Parámetros de consulta no válidos");
    }
    if idempotent {
        add("400", "Idempotency-Key no válida");
        add("422", "Esa Idempotency-Key ya se usó con otra solicitud");
    }
    if path.contains("{folio}") {
        add("400", "Folio mal formado");
        add(
            "404",
            "No existe esa incidencia, o no es de la dependencia de quien consulta",
        );
    }
    if path.contains("{id}") || path.contains("{homoclave}") {
        add("404", "No existe");
    }
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        let shape = match (&p.parameter_in, p.name.as_str()) {
            (ParameterIn::Path, "folio") => Some(pattern(FOLIO_PATTERN, None)),
            (ParameterIn::Path, "homoclave") => Some(pattern(HOMOCLAVE_PATTERN, None)),
            (ParameterIn::Header, "Idempotency-Key") => {
                Some(pattern(IDEMPOTENCY_KEY_PATTERN, Some((1, 200))))
            }
            (ParameterIn::Query, "page") => Some(integer(1, u32::MAX as i64)),
            (ParameterIn::Query, "per_page") => Some(integer(1, 200)),
            (ParameterIn::Query, "limit") => Some(integer(1, MAX_LIST)),
            (ParameterIn::Query, "before") => Some(integer(1, i64::MAX)),
            (ParameterIn::Query, "severity") => Some(severities()),
            (ParameterIn::Query, "state") if path.ends_with("/outbox") => {
                Some(texts(OutboxState::ALL.iter().map(|s| s.as_str())))
            }
            (ParameterIn::Query, "state") => {
                Some(texts(IncidentState::ALL.iter().map(|s| s.as_str())))
            }
            (ParameterIn::Query, "outcome") => {
                Some(texts(InboundDisposition::ALL.iter().map(|s| s.as_str())))
            }
            _ => None,
        };
        if let Some(shape) = shape {
            p.schema = Some(RefOr::T(Schema::Object(shape)));
        }
    }
}

fn pattern(pattern: &str, length: Option<(usize, usize)>) -> Object {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .build();
    if let Some((min, max)) = length {
        o.min_length = Some(min);
        o.max_length = Some(max);
    }
    o
}

fn integer(min: i64, max: i64) -> Object {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .build();
    o.minimum = Some(utoipa::Number::Int(min as isize));
    o.maximum = Some(utoipa::Number::Int(max as isize));
    o
}

/// The names each text field of a request body accepts, and its formats.
fn conform_body(name: &str, o: &mut Object) {
    let mut set = |field: &str, shape: Object| {
        if let Some(p) = o.properties.get_mut(field) {
            *p = RefOr::T(Schema::Object(shape));
        }
    };
    let instant = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .build()
    };
    match name {
        "NewIncidentBody" => {
            set("kind", texts(IncidentKind::ALL.iter().map(|k| k.as_str())));
            set("channel", texts(Channel::ALL.iter().map(|c| c.as_str())));
            set("occurred_at", instant());
        }
        "NotifyBody" | "SeverityBody" => set("severity", severities()),
        "NewUserBody" => set("role", texts(Role::ALL.iter().map(|r| r.as_str()))),
        "NewPolicyBody" => {
            let mut optional = instant();
            optional.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            set("effective_from", optional);
        }
        "NewWebhookBody" => {
            if let Some(RefOr::T(Schema::Array(a))) = o.properties.get_mut("events") {
                a.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(texts(
                    crate::service::WEBHOOK_EVENT_TYPES.iter().map(|(n, _)| *n),
                )))));
            }
        }
        _ => {}
    }
}

/// Unsigned 32-bit integers (utoipa writes them as `int32`, whose range is half theirs).
fn walk(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(o) => {
            let integer = matches!(&o.schema_type, SchemaType::Type(Type::Integer))
                || matches!(&o.schema_type, SchemaType::Array(t) if t.contains(&Type::Integer));
            let unsigned32 = matches!(
                o.format,
                Some(SchemaFormat::KnownFormat(KnownFormat::Int32))
            ) && matches!(
                o.minimum,
                Some(utoipa::Number::Int(0) | utoipa::Number::UInt(0))
            );
            if integer && unsigned32 {
                o.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
                o.minimum = Some(utoipa::Number::Int(0));
                o.maximum = Some(utoipa::Number::Int(u32::MAX as isize));
            }
            for p in o.properties.values_mut() {
                walk(p);
            }
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                walk(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(walk),
        Schema::AllOf(all) => all.items.iter_mut().for_each(walk),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(walk),
        _ => {}
    }
}
