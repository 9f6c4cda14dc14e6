//! An in-memory fake Kubernetes API server for `kubectl-image-sec`'s tests and benchmarks.
//!
//! It speaks real HTTP/1.1 and HTTP/2, optionally over TLS (a self-signed CA made at start-up;
//! [`FakeApiServer::ca_pem`]), on `127.0.0.1`, with bearer-token authentication, optionally
//! client-certificate authentication ([`Options::client_ca`]) and impersonation
//! (`Impersonate-User`/`Impersonate-Group`, authorized with verb `impersonate` in RBAC mode), and
//! serves
//! core/v1 namespaces, pods, serviceaccounts, secrets, events, replicationcontrollers; apps/v1
//! deployments, replicasets, statefulsets, daemonsets; batch/v1 jobs, cronjobs; and
//! rbac.authorization.k8s.io/v1 roles, clusterroles, rolebindings, clusterrolebindings.
//!
//! Verbs: list (cluster-wide and namespaced, `limit`/`continue`, `labelSelector`,
//! `fieldSelector`), get, create, update (PUT), patch (json-patch, merge-patch,
//! strategic-merge-patch), delete; `dryRun=All`; errors carry the real `Status` bodies.
//! The real `kubectl` works against it (non-aggregated discovery, `as=Table` for `get`).
//!
//! # Use from a synchronous test
//!
//! ```no_run
//! use fake_apiserver::{FakeApiServer, Options, Match};
//! let srv = FakeApiServer::start(Options::default().tls(true));
//! srv.load_yaml("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: web}\n");
//! let kubeconfig = std::env::temp_dir().join("kc");
//! srv.write_kubeconfig(&kubeconfig);
//! srv.fail_next(1, 409, Match::writes().resource("serviceaccounts"));
//! // ... run the binary with --kubeconfig, then:
//! assert!(srv.requests().iter().all(|r| !r.is_write() || r.dry_run));
//! let sa = srv.get("sa", "web", "default").unwrap();
//! # let _ = sa;
//! ```
//!
//! The server runs on its own thread with its own tokio runtime; dropping the
//! [`FakeApiServer`] (or [`FakeApiServer::stop`]) shuts it down.
//!
//! Server behaviours worth knowing:
//! - Every write bumps a global `resourceVersion`; a write that changes nothing does not.
//! - PUT with a stale `metadata.resourceVersion` and PATCH whose result carries a different
//!   `metadata.resourceVersion` get 409 Conflict; PUT without one is unconditional.
//! - Creating in a namespace that does not exist over HTTP gives 404 `namespaces "x" not found`;
//!   the Rust API ([`FakeApiServer::insert`]) creates missing namespaces. Creating a namespace
//!   also creates its `default` ServiceAccount (unless [`Options::default_service_accounts`]
//!   is off).
//! - Updates to the main resource keep `status`; the `status` subresource changes only `status`.
//! - Pod updates are limited like the real server (422 Forbidden), Job `spec.template` is
//!   immutable (422), Secrets fold `stringData` into `data`, dockerconfigjson Secrets must have
//!   valid `.dockerconfigjson` JSON.
//! - List items carry no `kind`/`apiVersion`, like the real server.
//! - Authentication runs like kube-apiserver's: a client certificate that chains to the client
//!   CA is user = CN, groups = O; then bearer tokens. A certificate from another CA does not fail
//!   the TLS handshake (kube-apiserver only *requests* one) but authenticates nothing: without a
//!   valid token the request gets 401. [`RequestRecord::user`] says who each request ran as.

mod discovery;
mod faults;
pub mod patch;
mod proto;
mod rbac;
pub mod resources;
pub mod selectors;
mod server;
pub mod status;
mod store;
mod synth;
mod table;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

pub use faults::{Fault, FaultAction, Match, RequestRecord, Trigger};
pub use store::format_rfc3339;
pub use tls::{CertificateAuthority, ClientCertificate};

use resources::ResourceDef;
use server::Shared;
use store::Store;

/// A token → user mapping for the RBAC authorizer.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub token: String,
    /// User name, e.g. `alice` or `system:serviceaccount:web:deployer`.
    pub name: String,
    /// Extra groups (`system:authenticated` is always added).
    pub groups: Vec<String>,
}

/// Start-up options. `Options::default()`: plain HTTP, token `fake-token` required,
/// no RBAC, default ServiceAccounts on, seed 42.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve HTTPS with a fresh self-signed CA.
    pub tls: bool,
    /// The admin token (user `kubernetes-admin`, group `system:masters`). `None`: any bearer
    /// token, or none, is accepted as the admin (unless `users` is non-empty).
    pub token: Option<String>,
    /// More tokens, each mapped to a user (for RBAC tests).
    pub users: Vec<User>,
    /// Authorize requests against the stored RBAC objects (admin bypasses it).
    pub rbac: bool,
    /// Fill the store with this many synthesized pods (with owners, SAs, secrets).
    pub synthesize_pods: usize,
    /// Seed for fraction-based fault injection.
    pub seed: u64,
    /// Creating a namespace creates its `default` ServiceAccount.
    pub default_service_accounts: bool,
    /// Address to listen on; default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// PEM of the CA whose client certificates authenticate (kube-apiserver's `--client-ca-file`);
    /// implies `tls`.
    pub client_ca_pem: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: false,
            token: Some("fake-token".into()),
            users: vec![],
            rbac: false,
            synthesize_pods: 0,
            seed: 42,
            default_service_accounts: true,
            listen: "127.0.0.1:0".parse().unwrap(),
            client_ca_pem: None,
        }
    }
}

impl Options {
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }
    pub fn token(mut self, t: &str) -> Self {
        self.token = Some(t.into());
        self
    }
    /// Accept any token, or none.
    pub fn any_token(mut self) -> Self {
        self.token = None;
        self
    }
    /// Add a non-admin user (use with [`Options::rbac`]).
    pub fn user(mut self, token: &str, name: &str, groups: &[&str]) -> Self {
        self.users.push(User {
            token: token.into(),
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        });
        self
    }
    pub fn rbac(mut self, on: bool) -> Self {
        self.rbac = on;
        self
    }
    pub fn synthesize_pods(mut self, n: usize) -> Self {
        self.synthesize_pods = n;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn default_service_accounts(mut self, on: bool) -> Self {
        self.default_service_accounts = on;
        self
    }
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// Authenticate client certificates signed by `ca` (serves TLS).
    pub fn client_ca(mut self, ca: &CertificateAuthority) -> Self {
        self.client_ca_pem = Some(ca.cert_pem().to_string());
        self
    }
}

/// A running fake API server.
pub struct FakeApiServer {
    addr: SocketAddr,
    url: String,
    token: Option<String>,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApiServer {
    /// Start listening (returns once the socket is bound). Panics on failure.
    pub fn start(opts: Options) -> FakeApiServer {
        let listener = std::net::TcpListener::bind(opts.listen).expect("bind fake apiserver");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = (opts.tls || opts.client_ca_pem.is_some())
            .then(|| tls::generate(opts.client_ca_pem.as_deref()));
        let shared = Arc::new(Shared::new(
            opts.token.clone(),
            opts.users.clone(),
            opts.rbac,
            opts.seed,
            opts.default_service_accounts,
        ));
        if opts.synthesize_pods > 0 {
            synth::populate(&mut shared.store.write().unwrap(), opts.synthesize_pods);
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let client_auth = tls.as_ref().and_then(|t| t.client_auth.clone());
        let config = tls.map(|t| t.config);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(serve(listener, sh, config, client_auth, rx));
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .unwrap();
        FakeApiServer {
            addr,
            url,
            token: opts.token,
            ca_pem,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The admin token (`""` when any token is accepted).
    pub fn token(&self) -> &str {
        self.token.as_deref().unwrap_or("")
    }
    /// PEM of the CA that signed the serving certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Kubeconfig with cluster, user and context all named `fake`, namespace `default`,
    /// the admin token, and `certificate-authority-data` when TLS is on.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(self.token())
    }

    /// Same as [`FakeApiServer::kubeconfig_yaml`] with another token (e.g. an RBAC user's).
    /// An empty token writes `fake-token`.
    pub fn kubeconfig_yaml_for(&self, token: &str) -> String {
        // kubectl prompts for a user name when the user entry is empty; any token works when
        // the server accepts any token.
        let token = if token.is_empty() {
            "fake-token"
        } else {
            token
        };
        self.kubeconfig_yaml_with_user(&[("token", token)])
    }

    /// Same as [`FakeApiServer::kubeconfig_yaml`] with the user entry's fields given as
    /// (key, YAML value) pairs, e.g. `[("client-certificate", "/tmp/u.crt"), ("as", "jane")]`.
    pub fn kubeconfig_yaml_with_user(&self, fields: &[(&str, impl AsRef<str>)]) -> String {
        let ca = match &self.ca_pem {
            Some(pem) => format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            ),
            None => String::new(),
        };
        let user: String = fields
            .iter()
            .map(|(key, value)| format!("    {key}: {}\n", value.as_ref()))
            .collect();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n{ca}contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n{user}preferences: {{}}\n",
            self.url
        )
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) {
        std::fs::write(path, self.kubeconfig_yaml()).expect("write kubeconfig");
    }

    pub fn write_kubeconfig_for(&self, path: impl AsRef<Path>, token: &str) {
        std::fs::write(path, self.kubeconfig_yaml_for(token)).expect("write kubeconfig");
    }

    // ---- store access ----

    /// Insert or replace an object (`apiVersion`/`kind` pick the resource). Fills uid,
    /// resourceVersion, creationTimestamp, generation; creates a missing namespace. Returns the
    /// stored object. Panics on unknown kinds.
    pub fn insert(&self, obj: Value) -> Value {
        let mut store = self.shared.store.write().unwrap();
        insert_into(&mut store, obj, self.shared.default_service_accounts)
    }

    /// Insert every document of a (multi-document) YAML string; `kind: List` is expanded.
    pub fn load_yaml(&self, yaml: &str) -> Vec<Value> {
        let docs = parse_yaml_docs(yaml).expect("parse YAML");
        docs.into_iter().map(|d| self.insert(d)).collect()
    }

    /// Get an object. `resource` is any name form (`sa`, `ServiceAccount`, `serviceaccounts`);
    /// `namespace` is ignored for cluster-scoped resources.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let def = def_of(resource);
        let ns = if def.namespaced { namespace } else { "" };
        let store = self.shared.store.read().unwrap();
        store.get(def, ns, name).map(|o| o.value())
    }

    /// All objects of a resource, ordered by (namespace, name).
    pub fn list(&self, resource: &str) -> Vec<Value> {
        let def = def_of(resource);
        let store = self.shared.store.read().unwrap();
        store.map(def).values().map(|o| o.value()).collect()
    }

    /// Objects of a resource in one namespace.
    pub fn list_namespace(&self, resource: &str, namespace: &str) -> Vec<Value> {
        self.list(resource)
            .into_iter()
            .filter(|o| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace))
            .collect()
    }

    /// Delete an object; returns it if it existed.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let def = def_of(resource);
        let ns = if def.namespaced { namespace } else { "" };
        let mut store = self.shared.store.write().unwrap();
        let o = store.remove(def, ns, name).map(|o| o.value());
        if o.is_some() {
            store.next_rv();
            if def.kind == "Namespace" {
                store.purge_namespace(name);
            }
        }
        o
    }

    /// Change an object as another client would (bumps resourceVersion). A JSON array is an
    /// RFC 6902 JSON patch, an object a strategic merge patch.
    pub fn patch(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value, String> {
        let def = def_of(resource);
        let ns = if def.namespaced { namespace } else { "" };
        let mut store = self.shared.store.write().unwrap();
        apply_external_patch(&mut store, def, ns, name, &patch)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.read().unwrap().rv
    }

    // ---- fault injection ----

    /// Add a fault rule. Rules are checked in insertion order; all matching `Delay` rules
    /// apply, then the first matching `Status`/`Drop` rule that fires wins.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.faults.lock().unwrap().faults.push(fault);
    }

    /// Fail this fraction (0.0-1.0) of matching requests with `status`, using the seeded RNG.
    pub fn fail_fraction(&self, fraction: f64, status: u16, m: Match) {
        self.add_fault(Fault {
            matcher: m,
            action: FaultAction::Status(status),
            trigger: Trigger::Fraction(fraction),
        });
    }

    /// Fail the next `n` matching requests with `status` (409 gives the real Conflict body).
    pub fn fail_next(&self, n: usize, status: u16, m: Match) {
        self.add_fault(Fault {
            matcher: m,
            action: FaultAction::Status(status),
            trigger: Trigger::Next(n),
        });
    }

    /// Fail every matching request with `status` (403 gives the real Forbidden body).
    pub fn fail_always(&self, status: u16, m: Match) {
        self.add_fault(Fault {
            matcher: m,
            action: FaultAction::Status(status),
            trigger: Trigger::Always,
        });
    }

    /// Delay every matching request.
    pub fn add_latency(&self, delay: Duration, m: Match) {
        self.add_fault(Fault {
            matcher: m,
            action: FaultAction::Delay(delay),
            trigger: Trigger::Always,
        });
    }

    /// Close the connection without answering: the next `n` matching requests, or all of them
    /// when `n` is `None`.
    pub fn drop_connections(&self, m: Match, n: Option<usize>) {
        self.add_fault(Fault {
            matcher: m,
            action: FaultAction::Drop,
            trigger: n.map(Trigger::Next).unwrap_or(Trigger::Always),
        });
    }

    /// Race simulation: right before the next write (PUT/PATCH/DELETE) to this object is
    /// handled, apply `patch` to it as another client would (bumping its resourceVersion), so
    /// a client that read it before gets the real 409 Conflict on a conditional write. Array =
    /// JSON patch, object = strategic merge patch.
    pub fn before_next_write(&self, resource: &str, namespace: &str, name: &str, patch: Value) {
        let def = def_of(resource);
        self.shared
            .faults
            .lock()
            .unwrap()
            .hooks
            .push(faults::WriteHook {
                resource: def.plural.into(),
                namespace: if def.namespaced {
                    namespace.into()
                } else {
                    String::new()
                },
                name: name.into(),
                patch,
            });
    }

    /// Remove all fault rules and pending write hooks.
    pub fn clear_faults(&self) {
        let mut f = self.shared.faults.lock().unwrap();
        f.faults.clear();
        f.hooks.clear();
    }

    // ---- request log ----

    /// Every request handled so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Only POST/PUT/PATCH/DELETE requests (including dry-run ones).
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_write())
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Stop the server and wait for its thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

fn def_of(resource: &str) -> &'static ResourceDef {
    resources::lookup(resource)
        .unwrap_or_else(|| panic!("fake-apiserver: unknown resource {resource:?}"))
}

/// Parse multi-document YAML (or JSON) into objects, expanding `kind: List`.
pub fn parse_yaml_docs(yaml: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for d in docs {
        if d.is_null() {
            continue;
        }
        if d.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
        {
            if let Some(items) = d.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
                continue;
            }
        }
        out.push(d);
    }
    Ok(out)
}

pub(crate) fn create_default_sa(store: &mut Store, ns: &str) {
    let def = resources::lookup("serviceaccounts").unwrap();
    if store.get(def, ns, "default").is_none() {
        let rv = store.next_rv();
        let v = store::prepare_new(
            def,
            serde_json::json!({"metadata": {"name": "default"}}),
            ns,
            rv,
        );
        store.put(def, v);
    }
}

fn insert_into(store: &mut Store, obj: Value, default_sa: bool) -> Value {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let def = resources::by_api_version_kind(api_version, kind)
        .unwrap_or_else(|| panic!("fake-apiserver: unsupported object {api_version} {kind}"));
    let ns = if def.namespaced {
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string()
    } else {
        String::new()
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if def.namespaced {
        let nsdef = resources::lookup("namespaces").unwrap();
        if store.get(nsdef, "", &ns).is_none() {
            let rv = store.next_rv();
            let v =
                store::prepare_new(nsdef, serde_json::json!({"metadata": {"name": ns}}), "", rv);
            store.put(nsdef, v);
            if default_sa {
                create_default_sa(store, &ns);
            }
        }
    }
    let mut obj = obj;
    server::normalize(def, &mut obj);
    // Replacing keeps uid and creationTimestamp unless given.
    if let Some(old) = store.get(def, &ns, &name) {
        let old = old.value();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in ["uid", "creationTimestamp"] {
                if !m.contains_key(k) {
                    if let Some(v) = old["metadata"].get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
            }
        }
    }
    let rv = store.next_rv();
    let v = store::prepare_new(def, obj, &ns, rv);
    store.put(def, v.clone());
    if def.kind == "Namespace" && default_sa {
        create_default_sa(store, &name);
    }
    v
}

/// Apply a patch (array = JSON patch, object = strategic merge) to a stored object and store
/// the result with a new resourceVersion, bypassing validation.
pub(crate) fn apply_external_patch(
    store: &mut Store,
    def: &'static ResourceDef,
    ns: &str,
    name: &str,
    patch: &Value,
) -> Result<Value, String> {
    let old = store
        .get(def, ns, name)
        .ok_or_else(|| format!("{} \"{name}\" not found", def.qualified()))?
        .value();
    let mut new = if patch.is_array() {
        patch::json_patch(&old, patch).map_err(|e| format!("{e:?}"))?
    } else {
        patch::strategic_merge_patch(&old, patch, def.kind)?
    };
    for k in ["name", "namespace", "uid", "creationTimestamp"] {
        if let Some(v) = old["metadata"].get(k) {
            new["metadata"][k] = v.clone();
        }
    }
    let rv = store.next_rv();
    new["metadata"]["resourceVersion"] = rv.to_string().into();
    store.put(def, new.clone());
    Ok(new)
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    client_auth: Option<tls::ClientCertAuth>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            acc = listener.accept() => match acc {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let client_auth = client_auth.clone();
        tokio::spawn(async move {
            let service = |cert: Option<tls::CertIdentity>| {
                hyper::service::service_fn(move |req| {
                    server::handle(shared.clone(), cert.clone(), req)
                })
            };
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            match acceptor {
                Some(acc) => {
                    if let Ok(tls) = acc.accept(stream).await {
                        let cert = client_auth
                            .as_ref()
                            .and_then(|auth| auth.identify(tls.get_ref().1.peer_certificates()));
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service(cert))
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service(None))
                        .await;
                }
            }
        });
    }
}
