//! HTTP handling: routing, authentication, faults, verbs.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::faults::{Fault, FaultAction, ReqInfo, RequestRecord, Trigger, WriteHook};
use crate::patch::{self, JsonPatchError};
use crate::rbac::{self, Attributes, UserInfo};
use crate::resources::{self, lookup, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::store::{self, Obj, Store};
use crate::tls::CertIdentity;
use crate::User;

pub(crate) struct FaultState {
    pub faults: Vec<Fault>,
    pub rng: StdRng,
    pub hooks: Vec<WriteHook>,
}

pub(crate) struct Shared {
    pub store: RwLock<Store>,
    pub faults: Mutex<FaultState>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub admin_token: Option<String>,
    pub users: Vec<User>,
    pub rbac: bool,
    pub default_service_accounts: bool,
}

impl Shared {
    pub fn new(
        admin_token: Option<String>,
        users: Vec<User>,
        rbac: bool,
        seed: u64,
        default_service_accounts: bool,
    ) -> Shared {
        Shared {
            store: RwLock::new(Store::default()),
            faults: Mutex::new(FaultState {
                faults: vec![],
                rng: StdRng::seed_from_u64(seed),
                hooks: vec![],
            }),
            log: Mutex::new(vec![]),
            admin_token,
            users,
            rbac,
            default_service_accounts,
        }
    }
}

pub(crate) type Resp = Response<Full<Bytes>>;

fn bytes_response(code: u16, ctype: &str, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(code)
        .header("content-type", ctype)
        .header("cache-control", "no-cache, private")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json_response(code: u16, v: &Value) -> Resp {
    bytes_response(code, "application/json", serde_json::to_vec(v).unwrap())
}

fn error_response(e: ApiError) -> Resp {
    let mut r = json_response(e.code, &e.body);
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    r
}

enum Route {
    Version,
    Health,
    Api,
    Apis,
    ApiGroup(String),
    ResourceList(String, String),
    Resource {
        def: &'static ResourceDef,
        ns: String,
        name: String,
        sub: String,
    },
    NotFound,
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let mk = |def: &'static ResourceDef, ns: &str, name: &str, sub: &str| Route::Resource {
        def,
        ns: ns.to_string(),
        name: name.to_string(),
        sub: sub.to_string(),
    };
    if rest.len() >= 3 && rest[0] == "namespaces" {
        if let Some(def) = resources::by_gv_plural(group, version, rest[2]) {
            if !def.namespaced || rest.len() > 5 {
                return Route::NotFound;
            }
            return mk(
                def,
                rest[1],
                rest.get(3).copied().unwrap_or(""),
                rest.get(4).copied().unwrap_or(""),
            );
        }
    }
    let Some(def) = rest
        .first()
        .and_then(|p| resources::by_gv_plural(group, version, p))
    else {
        return Route::NotFound;
    };
    if rest.len() > 3 || (def.namespaced && rest.len() > 1) {
        return Route::NotFound;
    }
    mk(
        def,
        "",
        rest.get(1).copied().unwrap_or(""),
        rest.get(2).copied().unwrap_or(""),
    )
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["readyz"] | ["livez"] => Route::Health,
        ["api"] => Route::Api,
        ["api", v] => Route::ResourceList(String::new(), v.to_string()),
        ["api", v, rest @ ..] => resource_route("", v, rest),
        ["apis"] => Route::Apis,
        ["apis", g] => Route::ApiGroup(g.to_string()),
        ["apis", g, v] => Route::ResourceList(g.to_string(), v.to_string()),
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::NotFound,
    }
}

fn verb_of(method: &str, has_name: bool, query: &HashMap<String, String>) -> &'static str {
    match (method, has_name) {
        ("GET", true) => "get",
        ("GET", false) => {
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                "watch"
            } else {
                "list"
            }
        }
        ("HEAD", _) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "",
    }
}

const ADMIN_USER: &str = "kubernetes-admin";

fn admin() -> UserInfo {
    UserInfo {
        name: ADMIN_USER.into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}

/// The authenticators in kube-apiserver's order: a verified client certificate, then bearer
/// tokens. A rejected certificate authenticates nothing but does not stop a token from doing so.
fn authenticate(
    shared: &Shared,
    cert: Option<&CertIdentity>,
    header: Option<&str>,
) -> Option<UserInfo> {
    if let Some(CertIdentity::Verified(user)) = cert {
        return Some(user.clone());
    }
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim);
    if let Some(t) = token {
        if shared.admin_token.as_deref() == Some(t) {
            return Some(admin());
        }
        if let Some(u) = shared.users.iter().find(|u| u.token == t) {
            let mut groups = u.groups.clone();
            groups.push("system:authenticated".into());
            groups.extend(service_account_groups(&u.name));
            return Some(UserInfo {
                name: u.name.clone(),
                groups,
            });
        }
    }
    if shared.admin_token.is_none() && shared.users.is_empty() {
        return Some(admin());
    }
    None
}

/// `system:serviceaccount:NS:NAME` as (NS, NAME).
fn service_account(user: &str) -> Option<(&str, &str)> {
    user.strip_prefix("system:serviceaccount:")?.split_once(':')
}

/// The groups every service account is in: `system:serviceaccounts` and
/// `system:serviceaccounts:NS` (none for other users).
fn service_account_groups(user: &str) -> Vec<String> {
    match service_account(user) {
        Some((ns, _)) => vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        None => vec![],
    }
}

/// Who a request runs as.
pub(crate) struct Identity {
    pub user: UserInfo,
    /// The authenticated user's name, when it impersonates `user`.
    pub impersonator: Option<String>,
}

/// kube-apiserver's impersonation filter: with `Impersonate-User` (and any `Impersonate-Group`
/// headers) the request runs as that user in those groups, once the authenticated user has been
/// allowed to `impersonate` each of them: `users`, or `serviceaccounts` in the account's
/// namespace for `system:serviceaccount:NS:NAME`, then `groups`, all in the core API group.
fn impersonate(
    shared: &Shared,
    requester: UserInfo,
    headers: &hyper::HeaderMap,
) -> Result<Identity, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values("impersonate-user")
        .into_iter()
        .next()
        .filter(|u| !u.is_empty());
    let groups = values("impersonate-group");
    // Not modelled; refusing them keeps a test from passing on a header the fake ignored.
    if headers
        .keys()
        .any(|k| k == "impersonate-uid" || k.as_str().starts_with("impersonate-extra-"))
    {
        return Err(status::internal_error(
            "fake-apiserver does not support Impersonate-Uid or Impersonate-Extra-* headers",
        ));
    }
    let Some(user) = user else {
        if groups.is_empty() {
            return Ok(Identity {
                user: requester,
                impersonator: None,
            });
        }
        // Go's %v of the ObjectReferences it built (Kind, Namespace, Name and four empty
        // fields), as the real server prints them.
        let requested: Vec<String> = groups
            .iter()
            .map(|g| format!("{{Group  {g}    }}"))
            .collect();
        return Err(status::bad_request(format!(
            "requested [{}] without impersonating a user",
            requested.join(" ")
        )));
    };
    let service_account = service_account(&user);
    let mut wanted: Vec<(&str, &str, &str)> = vec![match service_account {
        Some((ns, name)) => ("serviceaccounts", ns, name),
        None => ("users", "", user.as_str()),
    }];
    wanted.extend(groups.iter().map(|g| ("groups", "", g.as_str())));
    if shared.rbac {
        let store = shared.store.read().unwrap();
        for (resource, namespace, name) in wanted {
            let attrs = Attributes {
                verb: "impersonate",
                group: "",
                resource,
                subresource: "",
                namespace,
                name,
            };
            if !rbac::authorize(&store, &requester, &attrs) {
                return Err(status::forbidden_resource(
                    "",
                    resource,
                    name,
                    &requester.name,
                    "impersonate",
                    namespace,
                ));
            }
        }
    }
    // Without Impersonate-Group a service account is in its fixed groups and anyone else in
    // none; then, unless the groups say otherwise, system:authenticated (system:unauthenticated
    // for system:anonymous) is added.
    let mut impersonated_groups = if groups.is_empty() {
        service_account_groups(&user)
    } else {
        groups
    };
    let has = |g: &str| impersonated_groups.iter().any(|x| x == g);
    let implied = if user == "system:anonymous" {
        (!has("system:unauthenticated")).then_some("system:unauthenticated")
    } else {
        (!has("system:authenticated") && !has("system:unauthenticated"))
            .then_some("system:authenticated")
    };
    if let Some(g) = implied {
        impersonated_groups.push(g.into());
    }
    Ok(Identity {
        user: UserInfo {
            name: user,
            groups: impersonated_groups,
        },
        impersonator: Some(requester.name),
    })
}

/// Error body for an injected status.
#[allow(clippy::result_large_err)] // Resp is the response itself, returned as is
fn injected_error(code: u16, info: &ReqInfo, user: &str) -> Result<ApiError, Resp> {
    let def = lookup(&info.resource).filter(|_| !info.resource.is_empty());
    Ok(match code {
        401 => status::unauthorized(),
        403 => {
            // The authorizer never sees a name on create.
            let name = if info.verb == "create" {
                ""
            } else {
                &info.name
            };
            status::forbidden(def, name, user, &info.verb, &info.namespace)
        }
        404 => match def {
            Some(d) => status::not_found(d, &info.name),
            None => status::page_not_found(),
        },
        405 => status::method_not_allowed(),
        409 => match def {
            Some(d) => status::conflict(d, &info.name),
            None => status::generic(409),
        },
        429 => status::too_many_requests(1),
        500 => status::internal_error("injected fault"),
        502 => {
            return Err(bytes_response(
                502,
                "text/plain; charset=utf-8",
                b"502 Bad Gateway\n".to_vec(),
            ))
        }
        503 => status::service_unavailable(),
        504 => status::gateway_timeout(),
        other => status::generic(other),
    })
}

pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::fmt::Debug for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dropped")
    }
}
impl std::error::Error for Dropped {}

/// Handles one request on a connection whose client certificate (if any) said `cert`.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    cert: Option<CertIdentity>,
    req: Request<Incoming>,
) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let query: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let accept = header("accept");
    let auth = header("authorization");
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");

    let route = route(&path);
    let mut info = ReqInfo {
        method: method.clone(),
        path: path.clone(),
        ..ReqInfo::default()
    };
    let mut subresource = String::new();
    if let Route::Resource { def, ns, name, sub } = &route {
        info.verb = verb_of(&method, !name.is_empty(), &query).to_string();
        info.resource = def.plural.to_string();
        info.namespace = ns.clone();
        info.name = name.clone();
        subresource = sub.clone();
        if info.name.is_empty() && method == "POST" {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                if let Some(n) = v.pointer("/metadata/name").and_then(Value::as_str) {
                    info.name = n.to_string();
                }
            }
        }
    }

    let mut record = RequestRecord {
        method: method.clone(),
        path: path.clone(),
        query: raw_query.clone(),
        content_type: content_type.clone(),
        accept: accept.clone(),
        dry_run,
        verb: info.verb.clone(),
        resource: info.resource.clone(),
        namespace: info.namespace.clone(),
        name: if matches!(route, Route::Resource { .. }) {
            info.name.clone()
        } else {
            String::new()
        },
        subresource: subresource.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
        user: String::new(),
        groups: vec![],
        impersonator: None,
    };
    let identity = authenticate(&shared, cert.as_ref(), auth.as_deref())
        .ok_or_else(status::unauthorized)
        .and_then(|user| impersonate(&shared, user, &parts.headers));
    if let Ok(id) = &identity {
        record.user = id.user.name.clone();
        record.groups = id.user.groups.clone();
        record.impersonator = id.impersonator.clone();
    }

    // Faults: delays first, then the first firing status/drop fault.
    let mut delay = Duration::ZERO;
    let mut fired: Option<FaultAction> = None;
    {
        let mut fs = shared.faults.lock().unwrap();
        let FaultState { faults, rng, .. } = &mut *fs;
        let mut remove = None;
        for (i, f) in faults.iter_mut().enumerate() {
            if !f.matcher.matches(&info) {
                continue;
            }
            if let FaultAction::Delay(d) = f.action {
                let fire = match &mut f.trigger {
                    Trigger::Always => true,
                    Trigger::Next(n) => {
                        *n = n.saturating_sub(1);
                        true
                    }
                    Trigger::Fraction(p) => rng.random::<f64>() < *p,
                };
                if fire {
                    delay += d;
                }
                continue;
            }
            if fired.is_some() {
                continue;
            }
            let fire = match &mut f.trigger {
                Trigger::Always => true,
                Trigger::Next(n) => {
                    if *n > 0 {
                        *n -= 1;
                        if *n == 0 {
                            remove = Some(i);
                        }
                        true
                    } else {
                        false
                    }
                }
                Trigger::Fraction(p) => rng.random::<f64>() < *p,
            };
            if fire {
                fired = Some(f.action.clone());
            }
        }
        if let Some(i) = remove {
            faults.remove(i);
        }
        faults.retain(|f| f.trigger != Trigger::Next(0));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fired == Some(FaultAction::Drop) {
        shared.log.lock().unwrap().push(record);
        return Err(Dropped);
    }

    let resp = respond(
        &shared,
        &route,
        &info,
        &subresource,
        &query,
        identity.map(|id| id.user),
        content_type.as_deref(),
        accept.as_deref(),
        &body,
        dry_run,
        fired,
    );
    record.status = resp.status().as_u16();
    shared.log.lock().unwrap().push(record);
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
fn respond(
    shared: &Shared,
    route: &Route,
    info: &ReqInfo,
    sub: &str,
    query: &HashMap<String, String>,
    user: Result<UserInfo, ApiError>,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &[u8],
    dry_run: bool,
    fired: Option<FaultAction>,
) -> Resp {
    let user = match user {
        Ok(user) => user,
        Err(e) => return error_response(e),
    };
    if let Some(FaultAction::Status(code)) = fired {
        return match injected_error(code, info, &user.name) {
            Ok(e) => error_response(e),
            Err(r) => r,
        };
    }
    match route {
        Route::Version => json_response(200, &crate::discovery::version()),
        Route::Health => bytes_response(200, "text/plain; charset=utf-8", b"ok".to_vec()),
        Route::Api => json_response(200, &crate::discovery::api_versions()),
        Route::Apis => json_response(200, &crate::discovery::api_group_list()),
        Route::ApiGroup(g) => match crate::discovery::api_group(g) {
            Some(v) => json_response(200, &v),
            None => error_response(status::page_not_found()),
        },
        Route::ResourceList(g, v) => match crate::discovery::resource_list(g, v) {
            Some(v) => json_response(200, &v),
            None => error_response(status::page_not_found()),
        },
        Route::NotFound => error_response(status::page_not_found()),
        Route::Resource { def, ns, name, .. } => {
            if shared.rbac {
                let store = shared.store.read().unwrap();
                let attrs = Attributes::on(def, &info.verb, sub, ns, name);
                if !rbac::authorize(&store, &user, &attrs) {
                    return error_response(status::forbidden(
                        Some(def),
                        name,
                        &user.name,
                        &info.verb,
                        ns,
                    ));
                }
            }
            let ctx = Ctx {
                shared,
                def,
                ns,
                name,
                sub,
                query,
                dry_run,
                content_type,
            };
            if info.verb != "list" && info.verb != "get" && info.verb != "watch" {
                run_write_hooks(shared, def, ns, name);
            }
            let result = match info.verb.as_str() {
                "list" => ctx.list(accept),
                "get" => ctx.get(accept),
                "create" if name.is_empty() => ctx.create(body),
                "update" => ctx.update(body),
                "patch" => ctx.patch(body, content_type),
                "delete" => ctx.delete(),
                _ => Err(status::method_not_allowed()),
            };
            match result {
                Ok(r) => r,
                Err(e) => error_response(e),
            }
        }
    }
}

/// Apply pending "another client wrote first" hooks for this object.
fn run_write_hooks(shared: &Shared, def: &'static ResourceDef, ns: &str, name: &str) {
    let hooks: Vec<WriteHook> = {
        let mut fs = shared.faults.lock().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = fs.hooks.drain(..).partition(|h| {
            h.resource == def.plural && h.namespace == ns && (h.name == name || name.is_empty())
        });
        fs.hooks = rest;
        mine
    };
    if hooks.is_empty() {
        return;
    }
    let mut store = shared.store.write().unwrap();
    for h in hooks {
        let _ = crate::apply_external_patch(&mut store, def, ns, &h.name, &h.patch);
    }
}

struct Ctx<'a> {
    shared: &'a Shared,
    def: &'static ResourceDef,
    ns: &'a str,
    name: &'a str,
    sub: &'a str,
    query: &'a HashMap<String, String>,
    dry_run: bool,
    content_type: Option<&'a str>,
}

fn unsupported_media_type() -> ApiError {
    ApiError {
        code: 415,
        body: json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message": "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            "reason":"UnsupportedMediaType","code":415}),
        retry_after: None,
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    ns: String,
    name: String,
}

fn allowed_field(def: &ResourceDef, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match def.kind {
        "Pod" => matches!(
            field,
            "spec.nodeName"
                | "spec.serviceAccountName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        "Event" => {
            field.starts_with("involvedObject.")
                || matches!(
                    field,
                    "reason" | "type" | "source" | "reportingComponent" | "reportingController"
                )
        }
        "Secret" => field == "type",
        "Namespace" => field == "status.phase",
        "ReplicaSet" | "ReplicationController" => field == "status.replicas",
        "Job" => field == "status.successful",
        _ => false,
    }
}

/// Fields of a kind that the main resource endpoint does not change (status subresource).
fn has_status(def: &ResourceDef) -> bool {
    store::has_generation(def) || def.kind == "Namespace"
}

fn validation_error(def: &ResourceDef, name: &str, field: &str, msg: &str) -> ApiError {
    status::invalid(def, name, field, "FieldValueRequired", msg)
}

impl Ctx<'_> {
    fn list(&self, accept: Option<&str>) -> Result<Resp, ApiError> {
        if !self.sub.is_empty() || !self.name.is_empty() {
            return Err(status::method_not_allowed());
        }
        let limit: usize = match self.query.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| status::bad_request(format!("invalid limit: {l}")))?,
            None => 0,
        };
        let ls = LabelSelector::parse(
            self.query
                .get("labelSelector")
                .map(String::as_str)
                .unwrap_or(""),
        )
        .map_err(status::bad_request)?;
        let fs = FieldSelector::parse(
            self.query
                .get("fieldSelector")
                .map(String::as_str)
                .unwrap_or(""),
        )
        .map_err(status::bad_request)?;
        if let Some(bad) = fs.fields().find(|f| !allowed_field(self.def, f)) {
            return Err(status::bad_request(format!(
                "field label not supported: {bad}"
            )));
        }
        let start: Option<(String, String)> = match self.query.get("continue") {
            Some(c) if !c.is_empty() => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|e| status::bad_request(format!("continue key is not valid: {e}")))?;
                let t: ContinueToken = serde_json::from_slice(&raw)
                    .map_err(|e| status::bad_request(format!("continue key is not valid: {e}")))?;
                Some((t.ns, t.name))
            }
            _ => None,
        };
        let table = accept.is_some_and(|a| a.contains("as=Table"));
        let store = self.shared.store.read().unwrap();
        let rv = store.rv;
        let map = store.map(self.def);
        let lower = match &start {
            Some(k) => Bound::Excluded(k.clone()),
            None if !self.ns.is_empty() => Bound::Included((self.ns.to_string(), String::new())),
            None => Bound::Unbounded,
        };
        let filtering = !ls.is_empty() || !fs.is_empty();
        let mut items: Vec<&Obj> = Vec::new();
        let mut last: Option<&(String, String)> = None;
        let mut more = false;
        let mut iter = map.range((lower, Bound::Unbounded));
        for (k, o) in iter.by_ref() {
            if !self.ns.is_empty() && k.0 != self.ns {
                break;
            }
            if filtering && !(ls.matches(&o.sel) && fs.matches(&o.sel)) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            items.push(o);
            last = Some(k);
        }
        let mut meta = Map::new();
        meta.insert("resourceVersion".into(), rv.to_string().into());
        if more {
            let last = last.unwrap();
            let tok = ContinueToken {
                v: "meta.k8s.io/v1".into(),
                rv,
                ns: last.0.clone(),
                name: last.1.clone(),
            };
            meta.insert(
                "continue".into(),
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&tok).unwrap())
                    .into(),
            );
            if !filtering {
                let remaining = map
                    .range((Bound::Excluded(last.clone()), Bound::Unbounded))
                    .take_while(|(k, _)| self.ns.is_empty() || k.0 == self.ns)
                    .count();
                meta.insert("remainingItemCount".into(), remaining.into());
            }
        }
        if table {
            let v = crate::table::table(self.def, &items, Value::Object(meta));
            return Ok(json_response(200, &v));
        }
        let head = format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            self.def.kind,
            self.def.api_version(),
            Value::Object(meta)
        );
        let total: usize = items.iter().map(|o| o.item_bytes.len() + 1).sum();
        let mut out = Vec::with_capacity(head.len() + total + 2);
        out.extend_from_slice(head.as_bytes());
        for (i, o) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&o.item_bytes);
        }
        out.extend_from_slice(b"]}");
        Ok(bytes_response(200, "application/json", out))
    }

    fn get(&self, accept: Option<&str>) -> Result<Resp, ApiError> {
        let store = self.shared.store.read().unwrap();
        let o = store
            .get(self.def, self.ns, self.name)
            .ok_or_else(|| status::not_found(self.def, self.name))?;
        if accept.is_some_and(|a| a.contains("as=Table")) {
            let v = crate::table::table(
                self.def,
                &[o],
                json!({"resourceVersion": store.rv.to_string()}),
            );
            return Ok(json_response(200, &v));
        }
        Ok(bytes_response(
            200,
            "application/json",
            o.full_bytes(self.def),
        ))
    }

    fn parse_body(&self, body: &[u8]) -> Result<Value, ApiError> {
        if self.content_type.is_some_and(|c| c.contains("protobuf")) {
            return crate::proto::decode(body, self.def.kind, &self.def.api_version())
                .ok_or_else(unsupported_media_type);
        }
        let v: Value = serde_json::from_slice(body)
            .or_else(|_| serde_saphyr::from_slice::<Value>(body))
            .map_err(|e| {
                status::bad_request(format!(
                    "the object provided is unrecognized or invalid: {e}"
                ))
            })?;
        if !v.is_object() {
            return Err(status::bad_request(
                "the object provided is unrecognized or invalid",
            ));
        }
        if let Some(k) = v.get("kind").and_then(Value::as_str) {
            if k != self.def.kind {
                return Err(status::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({})",
                    v.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                    self.def.api_version()
                )));
            }
        }
        Ok(v)
    }

    fn create(&self, body: &[u8]) -> Result<Resp, ApiError> {
        let mut v = self.parse_body(body)?;
        let ns = self.ns;
        if let Some(bns) = v.pointer("/metadata/namespace").and_then(Value::as_str) {
            if self.def.namespaced && !bns.is_empty() && bns != ns {
                return Err(status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let mut name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            if let Some(g) = v.pointer("/metadata/generateName").and_then(Value::as_str) {
                let suffix: String = (0..5)
                    .map(|_| {
                        let c = b"bcdfghjklmnpqrstvwxz2456789";
                        c[rand::random_range(0..c.len())] as char
                    })
                    .collect();
                name = format!("{g}{suffix}");
                v["metadata"]["name"] = name.clone().into();
            } else {
                return Err(validation_error(
                    self.def,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        }
        normalize(self.def, &mut v);
        let mut store = self.shared.store.write().unwrap();
        if self.def.namespaced {
            let nsdef = lookup("namespaces").unwrap();
            if store.get(nsdef, "", ns).is_none() {
                return Err(status::not_found(nsdef, ns));
            }
        }
        if store.get(self.def, ns, &name).is_some() {
            return Err(status::already_exists(self.def, &name));
        }
        if let Some(e) = validate_create(self.def, &name, &v) {
            return Err(e);
        }
        if self.dry_run {
            let mut out = store::prepare_new(self.def, v, ns, 0);
            if let Some(m) = out["metadata"].as_object_mut() {
                m.shift_remove("resourceVersion");
            }
            return Ok(json_response(201, &out));
        }
        let rv = store.next_rv();
        let out = store::prepare_new(self.def, v, ns, rv);
        store.put(self.def, out.clone());
        if self.def.kind == "Namespace" && self.shared.default_service_accounts {
            crate::create_default_sa(&mut store, &name);
        }
        Ok(json_response(201, &out))
    }

    fn update(&self, body: &[u8]) -> Result<Resp, ApiError> {
        let v = self.parse_body(body)?;
        if let Some(n) = v.pointer("/metadata/name").and_then(Value::as_str) {
            if n != self.name {
                return Err(status::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    self.name
                )));
            }
        }
        let mut store = self.shared.store.write().unwrap();
        let old = store
            .get(self.def, self.ns, self.name)
            .ok_or_else(|| status::not_found(self.def, self.name))?
            .value();
        if let Some(rv) = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            if !rv.is_empty()
                && Some(rv)
                    != old
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
            {
                return Err(status::conflict(self.def, self.name));
            }
        }
        let out = finish_write(&mut store, self.def, &old, v, self.sub, self.dry_run)?;
        Ok(json_response(200, &out))
    }

    fn patch(&self, body: &[u8], content_type: Option<&str>) -> Result<Resp, ApiError> {
        let ct = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| status::bad_request(format!("error decoding patch: {e}")))?;
        let mut store = self.shared.store.write().unwrap();
        let old = store
            .get(self.def, self.ns, self.name)
            .ok_or_else(|| status::not_found(self.def, self.name))?
            .value();
        let old_rv = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let patched = match ct.as_str() {
            "application/json-patch+json" => match patch::json_patch(&old, &patch) {
                Ok(v) => v,
                Err(JsonPatchError::Malformed(m)) => return Err(status::bad_request(m)),
                Err(JsonPatchError::Failed(_)) => return Err(status::json_patch_failed()),
            },
            "application/merge-patch+json" => patch::merge_patch(&old, &patch),
            "application/strategic-merge-patch+json" => {
                patch::strategic_merge_patch(&old, &patch, self.def.kind)
                    .map_err(status::bad_request)?
            }
            _ => {
                return Err(ApiError {
                    code: 415,
                    body: json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                        "message": format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
                        "reason":"UnsupportedMediaType","code":415}),
                    retry_after: None,
                })
            }
        };
        let new_rv = patched
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !new_rv.is_empty() && new_rv != old_rv {
            return Err(status::conflict(self.def, self.name));
        }
        let out = finish_write(&mut store, self.def, &old, patched, self.sub, self.dry_run)?;
        Ok(json_response(200, &out))
    }

    fn delete(&self) -> Result<Resp, ApiError> {
        let mut store = self.shared.store.write().unwrap();
        let old = store
            .get(self.def, self.ns, self.name)
            .ok_or_else(|| status::not_found(self.def, self.name))?
            .value();
        if self.dry_run {
            return Ok(json_response(200, &old));
        }
        store.remove(self.def, self.ns, self.name);
        store.next_rv();
        if self.def.kind == "Namespace" {
            store.purge_namespace(self.name);
        }
        Ok(json_response(200, &old))
    }
}

/// Secret `stringData` is folded into `data` (base64), `type` defaults to `Opaque`.
pub(crate) fn normalize(def: &ResourceDef, v: &mut Value) {
    if def.kind != "Secret" {
        return;
    }
    let Some(obj) = v.as_object_mut() else { return };
    if let Some(Value::Object(sd)) = obj.shift_remove("stringData") {
        let data = obj
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(d) = data.as_object_mut() {
            for (k, val) in sd {
                let s = val.as_str().unwrap_or("").to_string();
                d.insert(
                    k,
                    base64::engine::general_purpose::STANDARD.encode(s).into(),
                );
            }
        }
    }
    obj.entry("type").or_insert_with(|| "Opaque".into());
}

fn validate_create(def: &ResourceDef, name: &str, v: &Value) -> Option<ApiError> {
    if def.kind == "Secret" {
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        let key = match ty {
            "kubernetes.io/dockerconfigjson" => Some(".dockerconfigjson"),
            "kubernetes.io/dockercfg" => Some(".dockercfg"),
            _ => None,
        };
        if let Some(key) = key {
            let field = format!("data[{key}]");
            let Some(b64) = v
                .pointer("/data")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
            else {
                return Some(validation_error(def, name, &field, "Required value"));
            };
            let ok = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some();
            if !ok {
                return Some(status::invalid(
                    def,
                    name,
                    &field,
                    "FieldValueInvalid",
                    "Invalid value: \"<secret contents redacted>\": invalid character looking for beginning of value",
                ));
            }
        }
    }
    None
}

const POD_FORBIDDEN: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod_update(
    def: &ResourceDef,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let forbidden = || status::invalid(def, name, "spec", "FieldValueForbidden", POD_FORBIDDEN);
    let mut o = old.get("spec").cloned().unwrap_or(Value::Null);
    let n = new.get("spec").cloned().unwrap_or(Value::Null);
    for field in ["containers", "initContainers"] {
        let oc = o.get(field).and_then(Value::as_array).map(Vec::len);
        let nc = n.get(field).and_then(Value::as_array).map(Vec::len);
        if oc.unwrap_or(0) != nc.unwrap_or(0) {
            return Err(forbidden());
        }
        if let Some(len) = oc {
            for i in 0..len {
                let img = n[field][i].get("image").cloned();
                if let Some(c) = o[field][i].as_object_mut() {
                    match img {
                        Some(img) => {
                            c.insert("image".into(), img);
                        }
                        None => {
                            c.shift_remove("image");
                        }
                    }
                }
            }
        }
    }
    if let Some(om) = o.as_object_mut() {
        for f in ["activeDeadlineSeconds", "terminationGracePeriodSeconds"] {
            match n.get(f) {
                Some(v) => {
                    om.insert(f.into(), v.clone());
                }
                None => {
                    om.shift_remove(f);
                }
            }
        }
        let old_tol = om
            .get("tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let new_tol = n
            .get("tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if old_tol.iter().all(|t| new_tol.contains(t)) {
            match n.get("tolerations") {
                Some(v) => {
                    om.insert("tolerations".into(), v.clone());
                }
                None => {
                    om.shift_remove("tolerations");
                }
            }
        }
    }
    if o != n {
        return Err(forbidden());
    }
    Ok(())
}

/// Shared tail of PUT and PATCH: keep server-owned fields, validate, bump rv, store.
pub(crate) fn finish_write(
    store: &mut Store,
    def: &'static ResourceDef,
    old: &Value,
    new: Value,
    sub: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut new = store::with_type_meta(def, new);
    normalize(def, &mut new);
    if sub == "status" {
        let mut base = old.clone();
        match new.get("status") {
            Some(s) => base["status"] = s.clone(),
            None => {
                base.as_object_mut().unwrap().shift_remove("status");
            }
        }
        new = base;
    } else if !sub.is_empty() {
        return Err(status::method_not_allowed());
    } else if has_status(def) {
        let o = new.as_object_mut().unwrap();
        match old.get("status") {
            Some(s) => {
                o.insert("status".into(), s.clone());
            }
            None => {
                o.shift_remove("status");
            }
        }
    }
    // Server-owned metadata.
    {
        let nm = new
            .as_object_mut()
            .unwrap()
            .entry("metadata")
            .or_insert_with(|| json!({}));
        if !nm.is_object() {
            *nm = json!({});
        }
        let nm = nm.as_object_mut().unwrap();
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
        ] {
            match old["metadata"].get(k) {
                Some(v) => {
                    nm.insert(k.into(), v.clone());
                }
                None => {
                    nm.shift_remove(k);
                }
            }
        }
    }
    if sub.is_empty() {
        if def.kind == "Pod" {
            validate_pod_update(def, &name, old, &new)?;
        }
        if def.kind == "Job" && old.pointer("/spec/template") != new.pointer("/spec/template") {
            let shown = new
                .pointer("/spec/template")
                .map(|t| t.to_string())
                .unwrap_or_default();
            return Err(status::invalid(
                def,
                &name,
                "spec.template",
                "FieldValueInvalid",
                &format!("Invalid value: core.PodTemplateSpec{shown}: field is immutable"),
            ));
        }
    }
    // Unchanged object: no write, no new resourceVersion (like the real apiserver).
    if &new == old {
        return Ok(new);
    }
    if store::has_generation(def) && old.get("spec") != new.get("spec") {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        new["metadata"]["generation"] = g.into();
    }
    if dry_run {
        return Ok(new);
    }
    let rv = store.next_rv();
    new["metadata"]["resourceVersion"] = rv.to_string().into();
    store.put(def, new.clone());
    Ok(new)
}
