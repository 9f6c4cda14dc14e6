//! Fault injection and request log types.

use std::time::Duration;

use serde_json::Value;

use crate::resources::lookup;

/// Which requests a fault applies to. Every field left `None` matches anything.
///
/// ```ignore
/// Match::any().verb("list").resource("secrets")
/// Match::writes().resource("serviceaccounts").name("default")
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Match {
    /// HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`), upper case.
    pub method: Option<String>,
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`.
    pub verb: Option<String>,
    /// Plural resource name (any name form is accepted by [`Match::resource`]).
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Only POST/PUT/PATCH/DELETE.
    pub writes_only: bool,
    /// Substring of the URL path (e.g. `/version`).
    pub path_contains: Option<String>,
}

impl Match {
    /// Matches every request.
    pub fn any() -> Match {
        Match::default()
    }
    /// Matches POST/PUT/PATCH/DELETE requests.
    pub fn writes() -> Match {
        Match {
            writes_only: true,
            ..Match::default()
        }
    }
    pub fn method(mut self, m: &str) -> Match {
        self.method = Some(m.to_ascii_uppercase());
        self
    }
    pub fn verb(mut self, v: &str) -> Match {
        self.verb = Some(v.to_string());
        self
    }
    /// Plural, singular, kind or short name (`sa`, `ServiceAccount`, `serviceaccounts`).
    pub fn resource(mut self, r: &str) -> Match {
        self.resource = Some(
            lookup(r)
                .map(|d| d.plural.to_string())
                .unwrap_or(r.to_string()),
        );
        self
    }
    pub fn namespace(mut self, ns: &str) -> Match {
        self.namespace = Some(ns.to_string());
        self
    }
    pub fn name(mut self, n: &str) -> Match {
        self.name = Some(n.to_string());
        self
    }
    pub fn path_contains(mut self, p: &str) -> Match {
        self.path_contains = Some(p.to_string());
        self
    }

    pub(crate) fn matches(&self, req: &ReqInfo) -> bool {
        let writes = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
        (!self.writes_only || writes)
            && self.method.as_deref().is_none_or(|m| m == req.method)
            && self.verb.as_deref().is_none_or(|v| v == req.verb)
            && self.resource.as_deref().is_none_or(|r| r == req.resource)
            && self.namespace.as_deref().is_none_or(|n| n == req.namespace)
            && self.name.as_deref().is_none_or(|n| n == req.name)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| req.path.contains(p))
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP status and a real-looking body: 401 Unauthorized, 403 Forbidden
    /// (naming user, verb, resource, namespace), 404 NotFound, 409 Conflict (the
    /// "object has been modified" message), 429 (with `Retry-After: 1`), 500, 503, 504
    /// (`Status` bodies); 502 answers `text/plain` `502 Bad Gateway` like a load balancer.
    Status(u16),
    /// Close the connection without any response.
    Drop,
    /// Wait this long, then handle the request normally (delays from several matching
    /// faults add up).
    Delay(Duration),
}

/// When a fault fires for a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Always,
    /// The next N matching requests, then the fault is removed.
    Next(usize),
    /// Each matching request with this probability, from the seeded RNG (`Options::seed`).
    Fraction(f64),
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub matcher: Match,
    pub action: FaultAction,
    pub trigger: Trigger,
}

/// One recorded request. Authorization headers and client keys are never recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Raw query string without `?` (empty when none).
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// `dryRun=All` was in the query.
    pub dry_run: bool,
    /// Kubernetes verb (`list`, `get`, `create`, `update`, `patch`, `delete`, ...), empty for
    /// non-resource URLs.
    pub verb: String,
    /// Plural resource, empty for non-resource URLs.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    /// Request body as (lossy) UTF-8.
    pub body: String,
    /// Response status; 0 when the connection was dropped by a fault.
    pub status: u16,
    /// The user the request ran as (the impersonated one, if any); empty when authentication
    /// or impersonation failed.
    pub user: String,
    /// That user's groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// The authenticated user, when it impersonated `user` (`Impersonate-User`).
    pub impersonator: Option<String>,
}

impl RequestRecord {
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
    /// Request body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn body_json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// What the fault matcher needs to know about a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqInfo {
    pub method: String,
    pub path: String,
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

/// A mutation applied to an object right before the next matching write is handled.
#[derive(Debug, Clone)]
pub(crate) struct WriteHook {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub patch: Value,
}
