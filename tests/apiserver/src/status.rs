//! `Status` error bodies shaped exactly like the real apiserver's.

use serde_json::{json, Map, Value};

use crate::resources::ResourceDef;

/// An API error: HTTP code plus the `Status` body (and optional extra headers).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
    pub retry_after: Option<u32>,
}

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
    let mut m = Map::new();
    m.insert("kind".into(), "Status".into());
    m.insert("apiVersion".into(), "v1".into());
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), "Failure".into());
    m.insert("message".into(), message.into());
    if !reason.is_empty() {
        m.insert("reason".into(), reason.into());
    }
    if let Some(d) = details {
        m.insert("details".into(), d);
    }
    m.insert("code".into(), code.into());
    ApiError {
        code,
        body: Value::Object(m),
        retry_after: None,
    }
}

/// `details` for a resource: `{name, group, kind}` (empty fields omitted, as Go does).
fn details(def: Option<&ResourceDef>, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if let Some(def) = def {
        if !def.group.is_empty() {
            d.insert("group".into(), def.group.into());
        }
        d.insert("kind".into(), def.plural.into());
    }
    Value::Object(d)
}

pub fn unauthorized() -> ApiError {
    status(401, "Unauthorized", "Unauthorized".into(), None)
}

pub fn not_found(def: &ResourceDef, name: &str) -> ApiError {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", def.qualified()),
        Some(details(Some(def), name)),
    )
}

/// 404 for a URL the server does not serve.
pub fn page_not_found() -> ApiError {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
        Some(json!({})),
    )
}

pub fn already_exists(def: &ResourceDef, name: &str) -> ApiError {
    status(
        409,
        "AlreadyExists",
        format!("{} \"{name}\" already exists", def.qualified()),
        Some(details(Some(def), name)),
    )
}

pub fn conflict(def: &ResourceDef, name: &str) -> ApiError {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            def.qualified()
        ),
        Some(details(Some(def), name)),
    )
}

/// 403 as the RBAC authorizer writes it.
pub fn forbidden(
    def: Option<&ResourceDef>,
    name: &str,
    user: &str,
    verb: &str,
    namespace: &str,
) -> ApiError {
    let (group, resource) = def.map(|d| (d.group, d.plural)).unwrap_or(("", ""));
    forbidden_resource(group, resource, name, user, verb, namespace)
}

/// 403 for any group and resource, served or not (`users` for impersonation).
pub fn forbidden_resource(
    group: &str,
    resource: &str,
    name: &str,
    user: &str,
    verb: &str,
    namespace: &str,
) -> ApiError {
    let qualified = crate::resources::qualified(group, resource);
    let subject = if name.is_empty() {
        qualified
    } else {
        format!("{qualified} \"{name}\"")
    };
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), name.into());
    }
    if !group.is_empty() {
        details.insert("group".into(), group.into());
    }
    if !resource.is_empty() {
        details.insert("kind".into(), resource.into());
    }
    status(
        403,
        "Forbidden",
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
        ),
        Some(Value::Object(details)),
    )
}

pub fn method_not_allowed() -> ApiError {
    status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".into(),
        Some(json!({})),
    )
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    status(400, "BadRequest", message.into(), None)
}

/// 422 from a failed JSON patch operation (the apiserver's generic server response).
pub fn json_patch_failed() -> ApiError {
    status(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request".into(),
        Some(json!({})),
    )
}

/// 422 Invalid with one field cause: `Kind "name" is invalid: field: message`.
pub fn invalid(
    def: &ResourceDef,
    name: &str,
    field: &str,
    cause_reason: &str,
    message: &str,
) -> ApiError {
    let mut d = Map::new();
    d.insert("name".into(), name.into());
    if !def.group.is_empty() {
        d.insert("group".into(), def.group.into());
    }
    d.insert("kind".into(), def.kind.into());
    d.insert(
        "causes".into(),
        json!([{"reason": cause_reason, "message": message, "field": field}]),
    );
    status(
        422,
        "Invalid",
        format!(
            "{} \"{name}\" is invalid: {field}: {message}",
            def.qualified_kind()
        ),
        Some(Value::Object(d)),
    )
}

pub fn too_many_requests(retry_after: u32) -> ApiError {
    let mut e = status(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.".into(),
        Some(json!({"retryAfterSeconds": retry_after})),
    );
    e.retry_after = Some(retry_after);
    e
}

pub fn internal_error(message: &str) -> ApiError {
    status(
        500,
        "InternalError",
        format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message}]})),
    )
}

pub fn service_unavailable() -> ApiError {
    status(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request".into(),
        Some(json!({})),
    )
}

pub fn gateway_timeout() -> ApiError {
    status(
        504,
        "Timeout",
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
            .into(),
        Some(json!({})),
    )
}

/// Generic body for any other code.
pub fn generic(code: u16) -> ApiError {
    status(
        code,
        "",
        format!(
            "the server responded with the status code {code} but did not return more information"
        ),
        Some(json!({})),
    )
}

/// The `Status` object returned on a successful DELETE of some kinds.
pub fn success() -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"})
}
