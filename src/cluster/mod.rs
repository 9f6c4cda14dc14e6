//! The Kubernetes client: kubeconfig loading like kubectl, requests with retries on reads,
//! pagination, `-v` request logging with credentials masked, and mapping of API errors.
//!
//! Objects travel as `serde_json::Value`: the commands edit pod templates generically across
//! kinds, and keeping unknown fields intact matters more than typed access.
pub mod resources;
pub mod skim;
pub(crate) mod stream;
mod transport;

pub use stream::{ItemDecoder, PageSplitter, Plain};

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::GlobalOpts;
use crate::error::{ApiStatus, Error, Result};
pub use resources::ResourceKind;

/// Page size for LIST calls: big enough for few round trips, small enough for bounded memory.
pub const PAGE_SIZE: u32 = 500;
/// LIST pages of one kind requested ahead of the one being consumed (see
/// [`Cluster::list_all_typed`]).
const PAGES_IN_FLIGHT: usize = 4;
/// Attempts for an idempotent read before giving up.
const READ_ATTEMPTS: u32 = 5;

/// A connection to one cluster (one kubeconfig context).
#[derive(Clone)]
pub struct Cluster {
    client: transport::Transport,
    /// The namespace from `-n`, else the context's, else `default`.
    pub namespace: String,
    /// The kubeconfig context name (empty when none was used).
    pub context: String,
    /// Whether `-n` was given explicitly (kubectl then writes it into generated objects).
    pub namespace_explicit: bool,
    verbosity: u8,
    request_timeout: Option<Duration>,
}

/// Parses kubectl's `--request-timeout`: `0` (none), a bare number of seconds, or `1h2m3s`/`500ms`.
pub fn parse_request_timeout(s: &str) -> Result<Option<Duration>> {
    let bad = || {
        Error::invalid(format!(
            "invalid --request-timeout {s:?}: use a duration such as 30s, 2m or 1h (0 means no timeout)"
        ))
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok((secs > 0).then(|| Duration::from_secs(secs)));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(value * factor);
        rest = &rest[unit_len..];
    }
    Ok((!total.is_zero()).then_some(total))
}

/// Loads the kubeconfig like kubectl: `--kubeconfig`, else `KUBECONFIG` (several paths merged),
/// else `~/.kube/config`. Returns None when there is none at all.
fn load_kubeconfig(global: &GlobalOpts) -> Result<Option<Kubeconfig>> {
    let config_err = |e: kube::config::KubeconfigError| {
        Error::Config(format!(
            "invalid kubeconfig: {}",
            first_line(&e.to_string())
        ))
    };
    if let Some(path) = &global.kubeconfig {
        if !path.exists() {
            return Err(Error::Config(format!(
                "kubeconfig {} does not exist; check --kubeconfig",
                path.display()
            )));
        }
        return Kubeconfig::read_from(path).map(Some).map_err(config_err);
    }
    if let Some(kc) = Kubeconfig::from_env().map_err(config_err)? {
        return Ok(Some(kc));
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    match home.map(|h| h.join(".kube").join("config")) {
        Some(p) if p.exists() => Kubeconfig::read_from(p).map(Some).map_err(config_err),
        _ => Ok(None),
    }
}

/// Checks names given on the command line the way kubectl does before using them.
fn validate_selection(
    kc: &Kubeconfig,
    global: &GlobalOpts,
    context: Option<&str>,
) -> Result<String> {
    let context_name = match context.or(kc.current_context.as_deref()) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ if global.server.is_some() => String::new(),
        _ => return Err(Error::Config(
            "no context is set in the kubeconfig; use --context, or run kubectl config use-context"
                .into(),
        )),
    };
    if !context_name.is_empty() && !kc.contexts.iter().any(|c| c.name == context_name) {
        return Err(Error::Config(format!(
            "context was not found for specified context: {context_name}"
        )));
    }
    if let Some(user) = &global.user {
        if !kc.auth_infos.iter().any(|u| &u.name == user) {
            return Err(Error::Config(format!("auth info {user:?} does not exist")));
        }
    }
    if let Some(cluster) = &global.cluster {
        if !kc.clusters.iter().any(|c| &c.name == cluster) {
            return Err(Error::Config(format!("cluster {cluster:?} does not exist")));
        }
    }
    Ok(context_name)
}

impl Cluster {
    /// Connects using the global flags; `context` overrides `--context` (for multi-context audits).
    pub async fn connect(global: &GlobalOpts, context: Option<&str>) -> Result<Cluster> {
        let context = context.or(global.context.first().map(String::as_str));
        let kubeconfig = load_kubeconfig(global)?;
        let (mut config, context_name) = match kubeconfig {
            Some(kc) => {
                let context_name = validate_selection(&kc, global, context)?;
                let options = KubeConfigOptions {
                    context: (!context_name.is_empty()).then(|| context_name.clone()),
                    cluster: global.cluster.clone(),
                    user: global.user.clone(),
                };
                let config = kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| {
                        Error::Config(format!(
                            "invalid kubeconfig: {}",
                            first_line(&e.to_string())
                        ))
                    })?;
                (config, context_name)
            }
            // In a pod (the CronJob in deploy/), kubectl falls back to the service account.
            None if global.server.is_none()
                && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
            {
                let config = kube::Config::incluster()
                    .map_err(|e| Error::Config(format!("in-cluster configuration failed: {e}")))?;
                (config, String::new())
            }
            None => {
                let server = global.server.as_deref().ok_or_else(|| {
                    Error::Config(
                        "no kubeconfig found (looked at --kubeconfig, KUBECONFIG and ~/.kube/config); pass --kubeconfig or --server".into(),
                    )
                })?;
                (kube::Config::new(parse_server(server)?), String::new())
            }
        };
        apply_overrides(&mut config, global)?;
        if let Some(proxy) = &config.proxy_url {
            return Err(Error::Config(unsupported_proxy_message(proxy)));
        }
        let request_timeout = parse_request_timeout(&global.request_timeout)?;
        if let Some(t) = request_timeout {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
        }
        // Our own retry policy (reads only, Retry-After honoured) replaces kube's.
        config.default_retry = false;
        // A plain-HTTP server (kubectl proxy, a local test server) needs no trust store, but
        // without roots of its own kube loads the OS's: about 4 ms of PEM parsing per start.
        if config.cluster_url.scheme() == Some(&http::uri::Scheme::HTTP)
            && config.root_cert.is_none()
        {
            config.root_cert = Some(Vec::new());
        }
        let namespace_explicit = global.namespace.is_some();
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = transport::client(config).map_err(|e| {
            let msg = exec_plugin_message(&e)
                .or_else(|| client_certificate_message(&e))
                .unwrap_or_else(|| e.to_string());
            Error::Config(format!("cannot build a client from the kubeconfig: {msg}"))
        })?;
        Ok(Cluster {
            client,
            namespace,
            context: context_name,
            namespace_explicit,
            verbosity: global.verbosity,
            request_timeout,
        })
    }

    /// GET an object; `Ok(None)` on 404.
    pub async fn get(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let path = kind.path(Some(namespace), Some(name));
        match self.send(Method::GET, &path, None, None).await {
            Ok(body) => Ok(Some(parse_body(&body)?)),
            Err(e) if e.api_code() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One LIST page. `namespace` None lists across all namespaces.
    pub async fn list_page(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        query: &ListQuery<'_>,
        continue_token: Option<&str>,
    ) -> Result<ListPage> {
        let path = list_path(kind, namespace, query, continue_token);
        let body = self.send(Method::GET, &path, None, None).await?;
        decode_page(kind, &body)
    }

    /// Lists every object like [`Cluster::list_all`], but decodes each page into `T`, a small
    /// typed struct naming only the fields the caller needs (serde skips the rest without
    /// allocating), and streams it: items are cut out of the response as it arrives and decoded
    /// one by one, so no page is ever held whole in memory.
    ///
    /// Pages are pipelined: the next page is requested as soon as the previous one's continue
    /// token has arrived (the API server writes the list metadata ahead of the items), so
    /// transfers and decoding overlap. At most [`PAGES_IN_FLIGHT`] pages are in flight; pages
    /// are handed to `each_page` in order. If a page's complete metadata disagrees with its
    /// early token, the pages started from that token are dropped and the listing follows the
    /// complete metadata.
    pub async fn list_all_typed<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        query: &ListQuery<'_>,
        each_page: impl FnMut(Vec<T>),
    ) -> Result<()> {
        self.list_all_decoded(kind, namespace, query, Plain::<T>::default, each_page)
            .await
    }

    /// [`Cluster::list_all_typed`] with a decoder of one's own, made anew for each page.
    pub async fn list_all_decoded<D: ItemDecoder>(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        query: &ListQuery<'_>,
        new_decoder: impl Fn() -> D,
        mut each_page: impl FnMut(Vec<D::Item>),
    ) -> Result<()> {
        type PageTask<T> = AbortOnDrop<Result<(Vec<T>, ListMeta)>>;
        let start = |token: Option<&str>| {
            let this = self.clone();
            let path = list_path(kind, namespace, query, token);
            let plural = kind.plural;
            let decoder = new_decoder();
            let (tx, rx) = tokio::sync::oneshot::channel::<String>();
            let task =
                tokio::spawn(async move { this.stream_page(&path, plural, decoder, tx).await });
            (rx, AbortOnDrop(task))
        };
        // Pages in order, each with the early token its successor was started from (None while
        // that token is awaited, through `newest_token`, or never came).
        let mut in_flight: std::collections::VecDeque<(PageTask<D::Item>, Option<String>)> =
            std::collections::VecDeque::new();
        let (rx, task) = start(None);
        in_flight.push_back((task, None));
        let mut newest_token = Some(rx);
        loop {
            while in_flight.len() < PAGES_IN_FLIGHT {
                let Some(rx) = newest_token.take() else { break };
                // Err: the newest page has no next page, or failed before its token arrived.
                let Ok(token) = rx.await else { break };
                let (rx, next) = start(Some(&token));
                in_flight.back_mut().expect("the newest page").1 = Some(token);
                in_flight.push_back((next, None));
                newest_token = Some(rx);
            }
            let Some((mut task, started_next_from)) = in_flight.pop_front() else {
                return Ok(());
            };
            let (items, meta) = (&mut task.0)
                .await
                .map_err(|e| Error::other(format!("listing {}: {e}", kind.plural)))??;
            each_page(items);
            match (
                meta.continue_token.filter(|t| !t.is_empty()),
                started_next_from,
            ) {
                (None, _) => return Ok(()),
                (Some(t), Some(early)) if early == t => {}
                (Some(t), _) => {
                    // The successor was started from another token, or not at all.
                    in_flight.clear();
                    let (rx, next) = start(Some(&t));
                    in_flight.push_back((next, None));
                    newest_token = Some(rx);
                }
            }
        }
    }

    /// GETs one LIST page and decodes it as it streams in, with the read retries of
    /// [`Cluster::send`] (a page that fails midway is fetched again from its start). Sends the
    /// continue token on `early` as soon as the list metadata is complete.
    async fn stream_page<D: ItemDecoder>(
        &self,
        path: &str,
        plural: &str,
        decoder: D,
        early: tokio::sync::oneshot::Sender<String>,
    ) -> Result<(Vec<D::Item>, ListMeta)> {
        let mut early = Some(early);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            // A fresh decoder per attempt: a retried page starts over.
            let outcome = self
                .stream_page_once(path, decoder.clone(), &mut early)
                .await;
            let retry_after = match outcome {
                Ok(Ok((page, size))) => {
                    self.log(&Method::GET, path, Some(200), started, size);
                    return page.map_err(|e| {
                        Error::other(format!(
                            "cannot decode the {plural} list from the server: {e}"
                        ))
                    });
                }
                Ok(Err((status, headers, bytes))) => {
                    self.log(
                        &Method::GET,
                        path,
                        Some(status.as_u16()),
                        started,
                        bytes.len(),
                    );
                    let err = api_error(status, &bytes, &Method::GET, path);
                    if !(attempt < READ_ATTEMPTS && retryable_status(status)) {
                        return Err(err);
                    }
                    headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(30)))
                }
                Err(e) => {
                    self.log(&Method::GET, path, None, started, 0);
                    if attempt >= READ_ATTEMPTS {
                        return Err(Error::Connection(e));
                    }
                    None
                }
            };
            tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(attempt))).await;
        }
    }

    /// One attempt: `Ok(Ok(page, bytes))` on 2xx (the page may still fail to decode),
    /// `Ok(Err(status...))` on an error status, `Err` on a connection or transfer failure.
    #[allow(clippy::type_complexity)]
    async fn stream_page_once<D: ItemDecoder>(
        &self,
        path: &str,
        decoder: D,
        early: &mut Option<tokio::sync::oneshot::Sender<String>>,
    ) -> std::result::Result<
        std::result::Result<
            (std::result::Result<(Vec<D::Item>, ListMeta), String>, usize),
            (StatusCode, http::HeaderMap, Bytes),
        >,
        String,
    > {
        use http_body_util::BodyExt;
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("Accept", "application/json")
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| format!("invalid request: {e}"))?;
        let fut = async {
            let resp = self
                .client
                .send(req)
                .await
                .map_err(|e| self.connection_message(&e))?;
            let status = resp.status();
            if !status.is_success() {
                let headers = resp.headers().clone();
                let bytes = self.read_body(resp.into_body()).await?;
                return Ok(Err((status, headers, bytes)));
            }
            let mut body = resp.into_body();
            let mut splitter = stream::PageSplitter::new(decoder);
            let mut size = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.read_failure(e))?;
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                size += chunk.len();
                if let Err(e) = splitter.feed(&chunk) {
                    return Ok(Ok((Err(e), size)));
                }
                if let Some(meta) = &splitter.metadata {
                    if let Some(tx) = early.take() {
                        // Dropping the sender without a token says "no next page".
                        if let Some(t) = meta.continue_token.as_ref().filter(|t| !t.is_empty()) {
                            let _ = tx.send(t.clone());
                        }
                    }
                }
            }
            Ok(Ok((splitter.finish(), size)))
        };
        match self.request_timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| {
                format!("the request to the API server timed out after {t:?} (--request-timeout)")
            })?,
            None => fut.await,
        }
    }

    /// Lists every object, page by page, handing each page to `each_page` so memory stays bounded.
    pub async fn list_all(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        query: &ListQuery<'_>,
        mut each_page: impl FnMut(Vec<Value>),
    ) -> Result<()> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_page(kind, namespace, query, token.as_deref())
                .await?;
            each_page(page.items);
            match page.metadata.continue_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// POST a new object.
    pub async fn create(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        obj: &Value,
        opts: &WriteOptions<'_>,
    ) -> Result<Value> {
        let path = with_write_query(kind.path(Some(namespace), None), opts);
        self.write(Method::POST, &path, "application/json", obj)
            .await
    }

    /// PUT an object; the object's `metadata.resourceVersion` makes it conditional.
    pub async fn replace(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        obj: &Value,
        opts: &WriteOptions<'_>,
    ) -> Result<Value> {
        let path = with_write_query(kind.path(Some(namespace), Some(name)), opts);
        self.write(Method::PUT, &path, "application/json", obj)
            .await
    }

    /// PATCH with the given patch content type (`application/json-patch+json`, ...).
    pub async fn patch(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        content_type: &str,
        patch: &Value,
        opts: &WriteOptions<'_>,
    ) -> Result<Value> {
        let path = with_write_query(kind.path(Some(namespace), Some(name)), opts);
        self.write(Method::PATCH, &path, content_type, patch).await
    }

    /// Sends a JSON body with a write method and decodes the object the server returns.
    async fn write(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Value> {
        let body = serde_json::to_vec(body).map_err(|e| Error::other(e.to_string()))?;
        parse_body(
            &self
                .send(method, path, Some(content_type), Some(body))
                .await?,
        )
    }

    /// Sends one request. Reads (GET) are retried with exponential backoff and jitter on 429
    /// (honouring Retry-After), 500, 502, 503, 504 and connection errors; writes never are,
    /// because a write that reached the server may have taken effect.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes> {
        let idempotent = method == Method::GET;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self
                .send_once(&method, path, content_type, body.clone())
                .await;
            let retry_after = match &result {
                Ok((status, headers, bytes)) => {
                    self.log(&method, path, Some(status.as_u16()), started, bytes.len());
                    if status.is_success() {
                        return Ok(bytes.clone());
                    }
                    let err = api_error(*status, bytes, &method, path);
                    if !(idempotent && attempt < READ_ATTEMPTS && retryable_status(*status)) {
                        return Err(err);
                    }
                    headers
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(30)))
                }
                Err(e) => {
                    self.log(&method, path, None, started, 0);
                    if !(idempotent && attempt < READ_ATTEMPTS) {
                        return Err(Error::Connection(e.clone()));
                    }
                    None
                }
            };
            tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(attempt))).await;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> std::result::Result<(StatusCode, http::HeaderMap, Bytes), String> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("Accept", "application/json");
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let req = req
            .body(kube::client::Body::from(body.unwrap_or_default()))
            .map_err(|e| format!("invalid request: {e}"))?;
        let fut = async {
            let resp = self
                .client
                .send(req)
                .await
                .map_err(|e| self.connection_message(&e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = self.read_body(resp.into_body()).await?;
            Ok((status, headers, bytes))
        };
        match self.request_timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| {
                format!("the request to the API server timed out after {t:?} (--request-timeout)")
            })?,
            None => fut.await,
        }
    }

    /// The whole body of a response.
    async fn read_body(&self, body: hyper::body::Incoming) -> std::result::Result<Bytes, String> {
        use http_body_util::BodyExt;
        Ok(body
            .collect()
            .await
            .map_err(|e| self.read_failure(e))?
            .to_bytes())
    }

    fn read_failure(&self, e: hyper::Error) -> String {
        format!(
            "reading the response failed: {}",
            self.connection_message(&kube::Error::HyperError(e))
        )
    }

    fn connection_message(&self, e: &kube::Error) -> String {
        if let Some(msg) = exec_plugin_message(e) {
            return msg;
        }
        // kube's error chain can be long; keep the root cause, which names the address and reason.
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg = s.to_string();
            source = s.source();
        }
        match self.request_timeout {
            Some(t) if msg.contains("timed out") => {
                format!("the request to the API server timed out after {t:?} (--request-timeout)")
            }
            _ => format!("cannot reach the API server: {}", first_line(&msg)),
        }
    }

    /// kubectl-style request log at `-v=6` and above. Only method, path, status and size:
    /// never headers or bodies, so no credential or secret data can reach the log.
    fn log(&self, method: &Method, path: &str, status: Option<u16>, started: Instant, size: usize) {
        if self.verbosity < 6 {
            return;
        }
        let ms = started.elapsed().as_millis();
        let status = status.map_or("connection failed".to_string(), |s| s.to_string());
        eprintln!(
            "I0000 round_trippers] {method} {path} {status} in {ms} milliseconds ({size} bytes)"
        );
        if self.verbosity >= 7 {
            eprintln!("I0000 round_trippers] Request Headers: Accept: application/json; Authorization: <masked>");
        }
    }
}

/// kube's errors for exec credential plugins quote the plugin's command line (arguments and
/// environment) and its output, which can hold the credential itself: name the failure only.
fn exec_plugin_message(e: &kube::Error) -> Option<String> {
    use kube::client::AuthError;
    let hint = "run the kubeconfig's exec command yourself to see what it prints";
    match e {
        kube::Error::Auth(AuthError::AuthExecRun { out, .. }) => Some(format!(
            "the exec credential plugin failed ({}); {hint}",
            out.status
        )),
        kube::Error::Auth(AuthError::AuthExecParse(_)) => Some(format!(
            "the exec credential plugin's output is not an ExecCredential; {hint}"
        )),
        kube::Error::Auth(AuthError::AuthExec(_) | AuthError::ExecPluginFailed) => {
            Some(format!("the exec credential plugin failed; {hint}"))
        }
        _ => None,
    }
}

/// kube words client-certificate problems in its own terms ("identity PEM", "failed to infer
/// provided configuration") and can quote a PEM line: say which file is wrong and where it was
/// configured instead, never quoting its contents.
fn client_certificate_message(e: &kube::Error) -> Option<String> {
    use kube::client::RustlsTlsError as Tls;
    use kube::config::{KubeconfigError, LoadDataError};
    const CERT: &str = "the client certificate (--client-certificate, or client-certificate(-data) in the kubeconfig user)";
    const KEY: &str = "the client key (--client-key, or client-key(-data) in the kubeconfig user)";
    let unreadable = |what: &str, e: &LoadDataError| match e {
        LoadDataError::ReadFile(io, path) => Some(format!(
            "cannot read {what}: {}: {}",
            path.display(),
            crate::error::io_reason(io)
        )),
        LoadDataError::DecodeBase64(_) => Some(format!("{what} is not valid base64")),
        LoadDataError::NoBase64DataOrFile => None,
    };
    match e {
        kube::Error::InferKubeconfig(KubeconfigError::LoadClientCertificate(d)) => {
            unreadable(CERT, d).or_else(|| Some(format!("a client key needs {CERT}")))
        }
        kube::Error::InferKubeconfig(KubeconfigError::LoadClientKey(d)) => {
            unreadable(KEY, d).or_else(|| Some(format!("a client certificate needs {KEY}")))
        }
        kube::Error::RustlsTls(Tls::MissingPrivateKey | Tls::UnknownPrivateKeyFormat) => Some(
            format!("{KEY} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)"),
        ),
        kube::Error::RustlsTls(Tls::MissingCertificate) => {
            Some(format!("{CERT} holds no PEM certificate"))
        }
        kube::Error::RustlsTls(Tls::InvalidIdentityPem(_)) => {
            Some(format!("{CERT} or {KEY} is not valid PEM"))
        }
        kube::Error::RustlsTls(Tls::InvalidPrivateKey(rustls::Error::InconsistentKeys(_))) => {
            Some(format!("{KEY} does not belong to {CERT}"))
        }
        kube::Error::RustlsTls(Tls::InvalidPrivateKey(_)) => {
            Some(format!("{KEY} is not a usable private key"))
        }
        _ => None,
    }
}

/// This build has no proxy support (kube's `http-proxy` and `socks5` features are off). The
/// message names the proxy by host only: a proxy URL may carry a user and password.
fn unsupported_proxy_message(proxy: &http::Uri) -> String {
    let host = proxy.host().unwrap_or("?");
    let at = match proxy.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    format!(
        "the kubeconfig's proxy-url (proxy {at}) is not supported: remove proxy-url, or run `kubectl proxy` and pass --server http://127.0.0.1:8001"
    )
}

/// The first line of a multi-line library message (YAML errors carry a source snippet).
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim_end()
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// Exponential backoff with full jitter: 100ms, 200ms, 400ms... capped at 3s.
fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(5)).min(3000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

/// Maps an error response to our error, keeping the server's Status message (which never
/// contains object data) and adding the hint kubectl users need.
fn api_error(status: StatusCode, body: &[u8], method: &Method, path: &str) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let reason = field("reason").unwrap_or_else(|| match status.as_u16() {
        401 => "Unauthorized".into(),
        403 => "Forbidden".into(),
        404 => "NotFound".into(),
        409 => "Conflict".into(),
        429 => "TooManyRequests".into(),
        _ => String::new(),
    });
    let message = field("message").unwrap_or_else(|| {
        format!(
            "{method} {} returned HTTP {}",
            path.split('?').next().unwrap_or(path),
            status.as_u16()
        )
    });
    let hint = match status.as_u16() {
        401 => Some("the API server did not accept the credentials: refresh them (token or client certificate expired?) or check --token, --client-certificate/--client-key, --user and the kubeconfig user".to_string()),
        403 => Some("ask a cluster admin for that permission (see docs/RBAC.md for what each command needs)".to_string()),
        _ => None,
    };
    Error::Api {
        status: ApiStatus {
            code: status.as_u16(),
            reason,
            message,
        },
        hint,
    }
}

fn parse_body(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| Error::other(format!("cannot decode the server's response: {e}")))
}

fn parse_server(server: &str) -> Result<http::Uri> {
    server
        .parse::<http::Uri>()
        .ok()
        .filter(|u| u.scheme().is_some() && u.host().is_some())
        .ok_or_else(|| {
            Error::invalid(format!(
                "invalid --server {server:?}: use a URL such as https://10.0.0.1:6443"
            ))
        })
}

fn apply_overrides(config: &mut kube::Config, global: &GlobalOpts) -> Result<()> {
    if let Some(server) = &global.server {
        config.cluster_url = parse_server(server)?;
    }
    if let Some(token) = &global.token {
        config.auth_info.token = Some(token.clone().into());
        config.auth_info.token_file = None;
        config.auth_info.exec = None;
        config.auth_info.auth_provider = None;
    }
    if let Some(ca) = &global.certificate_authority {
        let pem = std::fs::read(ca).map_err(|e| Error::io(ca.display(), e))?;
        let certs = pem_certificates(&pem).ok_or_else(|| {
            Error::invalid(format!(
                "{}: no PEM certificate found (--certificate-authority)",
                ca.display()
            ))
        })?;
        config.root_cert = Some(certs);
    }
    if let Some(cert) = &global.client_certificate {
        config.auth_info.client_certificate = Some(cert.display().to_string());
        config.auth_info.client_certificate_data = None;
    }
    if let Some(key) = &global.client_key {
        config.auth_info.client_key = Some(key.display().to_string());
        config.auth_info.client_key_data = None;
    }
    if global.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(name) = &global.tls_server_name {
        config.tls_server_name = Some(name.clone());
    }
    // `--as=""` is not set, as in kubectl: the kubeconfig's `as` stays.
    if let Some(user) = global.as_user.as_ref().filter(|u| !u.is_empty()) {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !global.as_group.is_empty() {
        config.auth_info.impersonate_groups = Some(global.as_group.clone());
    }
    // The API server answers groups without a user with 400; kubectl refuses before asking.
    let impersonates_user = config
        .auth_info
        .impersonate
        .as_ref()
        .is_some_and(|u| !u.is_empty());
    let impersonates_groups = config
        .auth_info
        .impersonate_groups
        .as_ref()
        .is_some_and(|g| !g.is_empty());
    if impersonates_groups && !impersonates_user {
        let msg = "impersonating groups needs a user to impersonate: add --as (or as in the kubeconfig user) to --as-group (or as-groups)";
        return Err(if global.as_group.is_empty() {
            Error::Config(msg.into())
        } else {
            Error::usage(msg)
        });
    }
    Ok(())
}

/// DER bodies of the CERTIFICATE blocks in a PEM file.
fn pem_certificates(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + 27..];
        let end = after.find("-----END CERTIFICATE-----")?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        certs.push(base64::engine::general_purpose::STANDARD.decode(b64).ok()?);
        rest = &after[end..];
    }
    (!certs.is_empty()).then_some(certs)
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The path of one LIST page.
fn list_path(
    kind: &ResourceKind,
    namespace: Option<&str>,
    query: &ListQuery<'_>,
    continue_token: Option<&str>,
) -> String {
    let mut path = kind.path(namespace, None);
    path.push_str(&format!("?limit={}", query.limit.unwrap_or(PAGE_SIZE)));
    if let Some(sel) = query.label_selector {
        path.push_str("&labelSelector=");
        path.push_str(&url_encode(sel));
    }
    if let Some(sel) = query.field_selector {
        path.push_str("&fieldSelector=");
        path.push_str(&url_encode(sel));
    }
    if let Some(token) = continue_token {
        path.push_str("&continue=");
        path.push_str(&url_encode(token));
    }
    path
}

fn decode_page<T: DeserializeOwned>(kind: &ResourceKind, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::other(format!(
            "cannot decode the {} list from the server: {e}",
            kind.plural
        ))
    })
}

/// Aborts a spawned page read when the listing is abandoned (an error, or the caller gone).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Selectors for a LIST.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListQuery<'a> {
    pub label_selector: Option<&'a str>,
    pub field_selector: Option<&'a str>,
    pub limit: Option<u32>,
}

/// One page of a LIST response.
#[derive(Debug, serde::Deserialize)]
pub struct ListPage {
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(default)]
    pub metadata: ListMeta,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListMeta {
    #[serde(rename = "continue", default)]
    pub continue_token: Option<String>,
    #[serde(rename = "resourceVersion", default)]
    pub resource_version: Option<String>,
}

/// Options for writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteOptions<'a> {
    /// Sends `dryRun=All`: the server validates and answers but stores nothing.
    pub dry_run: bool,
    pub field_manager: Option<&'a str>,
}

fn with_write_query(mut path: String, opts: &WriteOptions<'_>) -> String {
    let mut sep = '?';
    if opts.dry_run {
        path.push_str("?dryRun=All");
        sep = '&';
    }
    if let Some(fm) = opts.field_manager {
        path.push(sep);
        path.push_str("fieldManager=");
        path.push_str(&url_encode(fm));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_parse_like_kubectl() {
        assert_eq!(parse_request_timeout("0").unwrap(), None);
        assert_eq!(
            parse_request_timeout("5").unwrap(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_request_timeout("1m30s").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_request_timeout("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_request_timeout("soon").is_err());
        assert!(parse_request_timeout("5x").is_err());
        assert!(parse_request_timeout("").is_err());
    }

    #[test]
    fn api_errors_keep_the_server_message() {
        let body = br#"{"kind":"Status","message":"secrets \"x\" already exists","reason":"AlreadyExists","code":409}"#;
        let e = api_error(
            StatusCode::CONFLICT,
            body,
            &Method::POST,
            "/api/v1/namespaces/d/secrets",
        );
        assert_eq!(
            e.to_string(),
            r#"Error from server (AlreadyExists): secrets "x" already exists"#
        );
        let e = api_error(
            StatusCode::BAD_GATEWAY,
            b"<html>",
            &Method::GET,
            "/api/v1/pods?limit=1",
        );
        assert_eq!(
            e.to_string(),
            "the server returned HTTP 502: GET /api/v1/pods returned HTTP 502"
        );
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(3), "{d:?}");
            assert!(d >= Duration::from_millis(100), "{d:?}");
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("app in (a,b)"), "app%20in%20%28a%2Cb%29");
        assert_eq!(url_encode("a=b"), "a%3Db");
    }
}
