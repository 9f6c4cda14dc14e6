//! HTTP side of the distribution API: scheme choice (HTTPS, or plain HTTP for registries named
//! insecure), the auth handshake, manifests and blobs.
use super::auth::{parse_www_authenticate, Challenge, Credentials, TokenResponse};
use super::error::RegistryError;
use super::manifest::{parse_manifest, Manifest, MANIFEST_ACCEPT};
use base64::Engine as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Largest manifest or config we accept (the distribution spec suggests 4 MiB for manifests).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
pub const MAX_CONFIG_BYTES: usize = 16 << 20;
/// Error bodies are only read for their message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// How to reach registries. Built once per command from `--insecure-registry`,
/// `--registry-ca`.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `HOST[:PORT]` exactly as normalised in image references; for these only, plain HTTP or
    /// HTTPS without certificate verification is allowed.
    pub insecure_registries: Vec<String>,
    /// Extra PEM CA bundle trusted in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Connect timeout (default 30 s). Reads time out after 60 s of silence; there is no overall
    /// deadline because layer downloads can legitimately take long.
    pub connect_timeout: Option<Duration>,
}

/// Map a registry name from an image reference to the host serving its API.
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

pub struct RegistryClient {
    secure: reqwest::Client,
    insecure: reqwest::Client,
    insecure_registries: Vec<String>,
    /// Base URL per registry once a ping chose the scheme.
    bases: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("insecure_registries", &self.insecure_registries)
            .finish_non_exhaustive()
    }
}

fn user_agent() -> String {
    format!("kubectl-image-sec/{}", env!("CARGO_PKG_VERSION"))
}

impl RegistryClient {
    pub fn new(opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let connect = opts.connect_timeout.unwrap_or(Duration::from_secs(30));
        let base = || {
            reqwest::Client::builder()
                .user_agent(user_agent())
                .connect_timeout(connect)
                .read_timeout(Duration::from_secs(60))
                // Registries are reached directly; loopback tests must not go through a proxy.
                .no_proxy()
        };
        let mut secure = base();
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                RegistryError::Config(format!("cannot read --registry-ca {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Config(format!("invalid --registry-ca {}: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(RegistryError::Config(format!(
                    "--registry-ca {} holds no PEM certificate",
                    path.display()
                )));
            }
            secure = secure.tls_certs_merge(certs);
        }
        let secure = secure
            .build()
            .map_err(|e| RegistryError::Config(format!("cannot set up HTTPS client: {e}")))?;
        let insecure = base()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| RegistryError::Config(format!("cannot set up HTTP client: {e}")))?;
        Ok(RegistryClient {
            secure,
            insecure,
            insecure_registries: opts
                .insecure_registries
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .collect(),
            bases: Mutex::new(HashMap::new()),
        })
    }

    /// Exact `HOST[:PORT]` match, like the runtimes' insecure-registry lists.
    pub fn is_insecure(&self, registry: &str) -> bool {
        let r = registry.to_ascii_lowercase();
        self.insecure_registries.contains(&r)
    }

    fn http(&self, registry: &str) -> &reqwest::Client {
        if self.is_insecure(registry) {
            &self.insecure
        } else {
            &self.secure
        }
    }

    /// A handle for one repository, carrying its credentials and auth state.
    pub fn repository(
        &self,
        registry: &str,
        repository: &str,
        credentials: Credentials,
    ) -> RepositoryClient<'_> {
        RepositoryClient {
            client: self,
            registry: registry.to_string(),
            repository: repository.to_string(),
            credentials,
            auth: tokio::sync::Mutex::new(None),
        }
    }

    /// Check credentials against `GET /v2/` (Basic directly, Bearer through the token endpoint,
    /// like `docker login`). `Ok` when the registry accepts them.
    pub async fn verify_credentials(
        &self,
        registry: &str,
        credentials: &Credentials,
    ) -> Result<(), RegistryError> {
        let repo = RepositoryClient {
            client: self,
            registry: registry.to_string(),
            repository: String::new(),
            credentials: credentials.clone(),
            auth: tokio::sync::Mutex::new(None),
        };
        let base = repo.base_url().await?;
        let resp = repo
            .send(Method::GET, &format!("{base}/v2/"), None, "registry API")
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(repo.status_error(resp, "registry API").await)
        }
    }

    /// Choose the scheme for a registry once: HTTPS always; for insecure registries HTTPS
    /// without verification first, then plain HTTP when the TLS connection cannot be made.
    async fn base_url_for(&self, registry: &str) -> Result<String, RegistryError> {
        if let Some(b) = self
            .bases
            .lock()
            .ok()
            .and_then(|m| m.get(registry).cloned())
        {
            return Ok(b);
        }
        let host = api_host(registry);
        let https = format!("https://{host}");
        let base = if self.is_insecure(registry) {
            // Short probe: a plain-HTTP server answers a TLS hello with an error or silence.
            let probe = self
                .insecure
                .get(format!("{https}/v2/"))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match probe {
                Ok(_) => https,
                Err(_) => {
                    let http = format!("http://{host}");
                    self.insecure
                        .get(format!("{http}/v2/"))
                        .send()
                        .await
                        .map_err(|e| RegistryError::from_reqwest(registry, &e))?;
                    http
                }
            }
        } else {
            https
        };
        if let Ok(mut m) = self.bases.lock() {
            m.insert(registry.to_string(), base.clone());
        }
        Ok(base)
    }
}

/// One repository on one registry.
pub struct RepositoryClient<'a> {
    client: &'a RegistryClient,
    registry: String,
    repository: String,
    credentials: Credentials,
    /// `Authorization` value obtained by the last handshake.
    auth: tokio::sync::Mutex<Option<HeaderValue>>,
}

/// A manifest as fetched: parsed, its digest (verified), its size.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub manifest: Manifest,
    pub digest: String,
    pub size: u64,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Validate a digest string; only sha256 is supported (it is what every registry uses).
pub fn check_digest(d: &str) -> Result<&str, String> {
    match d.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) =>
        {
            Ok(h)
        }
        _ => Err(format!("unsupported or malformed digest {d:?}")),
    }
}

impl RepositoryClient<'_> {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    async fn base_url(&self) -> Result<String, RegistryError> {
        self.client.base_url_for(&self.registry).await
    }

    /// Send a request, answering one 401 challenge (Basic or Bearer) and retrying once.
    async fn send(
        &self,
        method: Method,
        url: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Response, RegistryError> {
        let mut retried = false;
        loop {
            let mut req = self
                .client
                .http(&self.registry)
                .request(method.clone(), url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(h) = self.auth.lock().await.clone() {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| RegistryError::from_reqwest(&self.registry, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            retried = true;
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_www_authenticate)
                .collect();
            let header = self.answer_challenge(&challenges, what).await?;
            match header {
                Some(h) => *self.auth.lock().await = Some(h),
                None => return Ok(resp),
            }
        }
    }

    /// Turn a challenge into an `Authorization` header. `None` when we have nothing to offer
    /// (anonymous against Basic), so the caller reports the 401.
    async fn answer_challenge(
        &self,
        challenges: &[Challenge],
        what: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            if let Credentials::RegistryToken(t) = &self.credentials {
                return Ok(Some(sensitive(&format!("Bearer {}", t.0))));
            }
            let token = self.fetch_token(bearer, what).await?;
            return Ok(Some(sensitive(&format!("Bearer {token}"))));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            if let Credentials::Basic { username, password } = &self.credentials {
                let raw = format!("{username}:{}", password.0);
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                return Ok(Some(sensitive(&format!("Basic {enc}"))));
            }
        }
        Ok(None)
    }

    /// Token endpoint: GET with Basic credentials (or anonymous), or POST an OAuth2 refresh
    /// token for identity tokens.
    async fn fetch_token(&self, ch: &Challenge, _what: &str) -> Result<String, RegistryError> {
        let realm = ch.param("realm").ok_or_else(|| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: "auth challenge".into(),
            message: "Bearer challenge without realm".into(),
        })?;
        let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: "auth challenge".into(),
            message: format!("token realm is not a URL: {e}"),
        })?;
        let service = ch.param("service").map(str::to_string);
        // The challenge's scope is what the registry wants for this request; for a plain ping
        // (verify) there may be none, which asks the token server to check the login only.
        let scope = ch.param("scope").map(str::to_string).or_else(|| {
            (!self.repository.is_empty()).then(|| format!("repository:{}:pull", self.repository))
        });
        let http = self.client.http(&self.registry);
        let resp = if let Credentials::IdentityToken(rt) = &self.credentials {
            let mut form = reqwest::Url::parse("http://form.invalid/")
                .map_err(|e| RegistryError::Config(e.to_string()))?;
            {
                let mut q = form.query_pairs_mut();
                q.append_pair("grant_type", "refresh_token");
                q.append_pair("refresh_token", &rt.0);
                q.append_pair("client_id", "kubectl-image-sec");
                if let Some(s) = &service {
                    q.append_pair("service", s);
                }
                if let Some(s) = &scope {
                    q.append_pair("scope", s);
                }
            }
            let body = form.query().unwrap_or("").to_string();
            http.post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
        } else {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = &service {
                    q.append_pair("service", s);
                }
                if let Some(s) = &scope {
                    q.append_pair("scope", s);
                }
            }
            let mut req = http.get(url.clone());
            if let Credentials::Basic { username, password } = &self.credentials {
                req = req.basic_auth(username, Some(&password.0));
            }
            req.send().await
        }
        .map_err(|e| RegistryError::from_reqwest(&self.registry, &e))?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, "token").await);
        }
        let body = read_limited(resp, MAX_ERROR_BODY)
            .await
            .map_err(|e| RegistryError::from_reqwest(&self.registry, &e))?;
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
                registry: self.registry.clone(),
                what: "token response".into(),
                message: e.to_string(),
            })?;
        t.bearer().ok_or_else(|| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: "token response".into(),
            message: "no token in the answer".into(),
        })
    }

    /// Turn a non-success response into an error, with the registry's own message.
    pub(crate) async fn status_error(&self, resp: Response, what: &str) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        let detail = error_detail(&body);
        let registry = self.registry.clone();
        match status {
            401 | 403 => RegistryError::Unauthorized {
                registry,
                status,
                detail,
            },
            404 => RegistryError::NotFound {
                registry,
                what: what.to_string(),
                status,
                detail,
            },
            429 => RegistryError::RateLimited {
                registry,
                retry_after,
            },
            _ => RegistryError::Http {
                registry,
                what: what.to_string(),
                status,
                detail,
            },
        }
    }

    /// `GET /v2/<name>/manifests/<reference>`; the digest is verified when the reference is one.
    pub async fn get_manifest(&self, reference: &str) -> Result<FetchedManifest, RegistryError> {
        let base = self.base_url().await?;
        let what = format!("manifest {}:{reference}", self.repository);
        let url = format!("{base}/v2/{}/manifests/{reference}", self.repository);
        let resp = self
            .send(Method::GET, &url, Some(MANIFEST_ACCEPT), &what)
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &what).await);
        }
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| RegistryError::from_reqwest(&self.registry, &e))?;
        let digest = sha256_digest(&body);
        let expected = if reference.contains(':') {
            Some(reference.to_string())
        } else {
            header_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(exp) = expected {
            if exp != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: exp,
                    actual: digest,
                });
            }
        }
        let manifest = parse_manifest(&ct, &body).map_err(|message| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: what.clone(),
            message,
        })?;
        Ok(FetchedManifest {
            manifest,
            digest,
            size: body.len() as u64,
        })
    }

    /// Fetch a small blob (the config) whole, verifying its digest.
    pub async fn get_blob_bytes(&self, digest: &str, max: usize) -> Result<Vec<u8>, RegistryError> {
        let what = format!("blob {digest}");
        let resp = self.get_blob(digest).await?;
        let body = read_limited(resp, max)
            .await
            .map_err(|e| RegistryError::from_reqwest(&self.registry, &e))?;
        let actual = sha256_digest(&body);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(body)
    }

    /// Start a blob download; the caller streams the body.
    pub async fn get_blob(&self, digest: &str) -> Result<Response, RegistryError> {
        check_digest(digest).map_err(|message| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: "descriptor".into(),
            message,
        })?;
        let base = self.base_url().await?;
        let what = format!("blob {digest}");
        let url = format!("{base}/v2/{}/blobs/{digest}", self.repository);
        let resp = self.send(Method::GET, &url, None, &what).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &what).await);
        }
        Ok(resp)
    }
}

fn sensitive(v: &str) -> HeaderValue {
    // Credentials never contain control characters legitimately; an invalid value just fails
    // auth instead of panicking.
    let mut h = HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    h.set_sensitive(true);
    h
}

/// Read a body but stop at `max` bytes (a hostile or broken server cannot make us buffer more).
async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// The registry's error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        #[serde(default)]
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    format!("{} ({})", e.message, e.code)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_digests() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert!(check_digest(&sha256_digest(b"x")).is_ok());
        assert!(check_digest("sha256:ABC").is_err());
        assert!(check_digest("md5:00").is_err());
    }

    #[test]
    fn error_details() {
        assert_eq!(
            error_detail(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            ),
            "manifest unknown (MANIFEST_UNKNOWN)"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }

    #[test]
    fn insecure_matching_is_exact() {
        let c = RegistryClient::new(&RegistryOptions {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(!c.is_insecure("127.0.0.1"));
        assert!(!c.is_insecure("127.0.0.1:50000"));
    }
}
