//! `kubectl image-sec inspect IMAGE`: read an image from its registry and report what it is
//! (digest, platform, sizes, age, user, entrypoint, base image) and which forbidden tools it
//! carries. Also the bounded-concurrency helper `audit --deep` uses.
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use base64::Engine as _;
use comfy_table::{presets::NOTHING, Table};
use serde::Serialize;

use crate::report::ReferenceView;

use crate::cli::{GlobalOpts, InspectArgs, InspectOutput, RegistryOpts, Severity};
use crate::domain::docker_config::{parse_docker_config_json, parse_pull_secret, AuthEntry};
use crate::domain::image_contents::Category;
use crate::domain::keyring::Keyring;
use crate::domain::reference::ImageReference;
use crate::error::{Error, Outcome, Result};
use crate::output;
use crate::registry::{
    default_cache_dir, Credentials, ImageInspection, ImageRequest, Inspector, LayerCache, Platform,
    RegistryClient, RegistryError, RegistryOptions, Secret,
};

/// Images inspected at once by `audit --deep`.
pub const DEFAULT_CONCURRENCY: usize = 4;

pub const BASE_NAME_KEY: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST_KEY: &str = "org.opencontainers.image.base.digest";

/// The report `-o json|yaml` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The image as given.
    pub image: String,
    pub reference: ReferenceView,
    pub registry: String,
    /// What the reference resolved to (the index digest for multi-arch images).
    pub digest: String,
    /// The platform manifest's digest when an index was resolved.
    pub platform_digest: Option<String>,
    pub media_type: String,
    /// Platform inspected (from the index entry, else the image config).
    pub platform: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub layers: usize,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub base_image: Option<BaseImage>,
    /// Paths per category (`shell`, `package-manager`, `network-tool`, `editor`); empty lists
    /// included so consumers need not guess.
    pub contents: BTreeMap<String, Vec<String>>,
    pub findings: Vec<ContentFindingView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BaseImage {
    pub name: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContentFindingView {
    pub rule: &'static str,
    pub severity: Severity,
    pub category: &'static str,
    pub name: String,
    pub path: String,
    pub target: Option<String>,
}

/// Contract severity of a content rule.
pub fn category_severity(c: Category) -> Severity {
    match c {
        Category::Shell | Category::PackageManager => Severity::High,
        Category::NetworkTool => Severity::Medium,
        Category::Editor => Severity::Low,
    }
}

/// Exit code 3 decision: any finding at or above `--fail-on`.
pub fn reaches_fail_on(severities: impl IntoIterator<Item = Severity>, fail_on: Severity) -> bool {
    severities.into_iter().any(|s| s >= fail_on)
}

/// Base image from manifest annotations, else config labels (OCI annotation keys either way).
pub fn base_image(insp: &ImageInspection) -> Option<BaseImage> {
    let labels = insp.config.config.labels.clone().unwrap_or_default();
    let get = |k: &str| {
        insp.manifest_annotations
            .get(k)
            .or_else(|| labels.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let b = BaseImage {
        name: get(BASE_NAME_KEY),
        digest: get(BASE_DIGEST_KEY),
    };
    (b.name.is_some() || b.digest.is_some()).then_some(b)
}

/// Whole days between the config's `created` and `now`; `None` when absent or unparsable.
pub fn age_days(created: Option<&str>, now: jiff::Timestamp) -> Option<i64> {
    let t: jiff::Timestamp = created?.parse().ok()?;
    Some(now.duration_since(t).as_secs().div_euclid(86_400))
}

pub fn build_report(
    image: &str,
    reference: &ImageReference,
    insp: &ImageInspection,
    now: jiff::Timestamp,
) -> InspectReport {
    let mut contents: BTreeMap<String, Vec<String>> = Category::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), Vec::new()))
        .collect();
    for f in &insp.findings {
        contents
            .entry(f.category.as_str().to_string())
            .or_default()
            .push(f.path.clone());
    }
    let findings = insp
        .findings
        .iter()
        .map(|f| ContentFindingView {
            rule: f.category.rule_id(),
            severity: category_severity(f.category),
            category: f.category.as_str(),
            name: f.name.clone(),
            path: f.path.clone(),
            target: f.target.clone(),
        })
        .collect();
    let c = &insp.config;
    InspectReport {
        api_version: "image-sec.io/v1",
        kind: "ImageInspection",
        image: image.to_string(),
        reference: ReferenceView::from(reference),
        registry: reference.registry.clone(),
        digest: insp.digest.clone(),
        platform_digest: insp.platform_digest.clone(),
        media_type: insp.media_type.clone(),
        platform: insp.platform.to_string(),
        compressed_size: insp.compressed_size(),
        uncompressed_size: insp.uncompressed_size(),
        layers: insp.layers.len(),
        created: c.created.clone(),
        age_days: age_days(c.created.as_deref(), now),
        user: c.config.user.clone().filter(|u| !u.is_empty()),
        entrypoint: c.config.entrypoint.clone(),
        cmd: c.config.cmd.clone(),
        base_image: base_image(insp),
        contents,
        findings,
    }
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// kubectl's tables start at column 0 and separate columns by spaces.
fn no_left_padding(t: &mut Table) {
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
}

/// The default (table) rendering.
pub fn render_table(r: &InspectReport) -> String {
    let dash = || "-".to_string();
    let mut t = Table::new();
    t.load_style(NOTHING);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![format!("{k}:"), v]);
    };
    row("Image", r.image.clone());
    row("Registry", r.registry.clone());
    row("Digest", r.digest.clone());
    let platform = match &r.platform_digest {
        Some(d) => format!("{} ({d})", r.platform),
        None => r.platform.clone(),
    };
    row("Platform", platform);
    row(
        "Size",
        format!(
            "{} compressed, {} uncompressed, {} layer{}",
            human_size(r.compressed_size),
            human_size(r.uncompressed_size),
            r.layers,
            if r.layers == 1 { "" } else { "s" }
        ),
    );
    row(
        "Created",
        match (&r.created, r.age_days) {
            (Some(c), Some(d)) => format!("{c} ({d} days ago)"),
            (Some(c), None) => c.clone(),
            _ => dash(),
        },
    );
    row(
        "User",
        r.user
            .clone()
            .unwrap_or_else(|| "(root: no USER set)".into()),
    );
    let join = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(" ")).unwrap_or_else(dash);
    row("Entrypoint", join(&r.entrypoint));
    row("Cmd", join(&r.cmd));
    row(
        "Base image",
        match &r.base_image {
            Some(BaseImage { name, digest }) => match (name, digest) {
                (Some(n), Some(d)) => format!("{n}@{d}"),
                (Some(n), None) => n.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => dash(),
            },
            None => dash(),
        },
    );
    no_left_padding(&mut t);
    let mut out = t.trim_fmt();
    out.push_str("\n\n");
    if r.findings.is_empty() {
        out.push_str("No shells, package managers, network tools or editors found.\n");
        return out;
    }
    let mut f = Table::new();
    f.load_style(NOTHING);
    f.set_header(vec!["SEVERITY", "RULE", "PATH", "TARGET"]);
    let mut sorted = r.findings.clone();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.path.cmp(&b.path)));
    for x in sorted {
        f.add_row(vec![
            x.severity.as_str().to_uppercase(),
            x.rule.to_string(),
            x.path,
            x.target.unwrap_or_default(),
        ]);
    }
    no_left_padding(&mut f);
    out.push_str(&f.trim_fmt());
    out.push('\n');
    out
}

/// Credentials from a docker config entry: identity token, registry token, else user/password.
pub fn credentials_from_entry(e: &AuthEntry) -> Credentials {
    if let Some(t) = e.identity_token.as_ref().filter(|t| !t.is_empty()) {
        return Credentials::IdentityToken(Secret(t.clone()));
    }
    if let Some(t) = e.registry_token.as_ref().filter(|t| !t.is_empty()) {
        return Credentials::RegistryToken(Secret(t.clone()));
    }
    if e.has_kubelet_credentials() {
        return Credentials::basic(e.username.clone(), e.password.clone());
    }
    Credentials::Anonymous
}

/// Credentials to try, in the kubelet's order; anonymous when nothing matches.
pub fn candidate_credentials(image: &ImageReference, keyring: &Keyring) -> Vec<Credentials> {
    let mut out: Vec<Credentials> = Vec::new();
    for m in keyring.lookup(image) {
        let c = credentials_from_entry(m.entry);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push(Credentials::Anonymous);
    }
    out
}

/// Inspect one image, trying each candidate credential until one is not refused (like the
/// kubelet's pull loop). The last error is returned when all fail.
pub async fn inspect_with_keyring(
    inspector: &Inspector,
    image: &str,
    reference: &ImageReference,
    keyring: &Keyring,
) -> std::result::Result<ImageInspection, RegistryError> {
    let mut last = None;
    for credentials in candidate_credentials(reference, keyring) {
        let req = ImageRequest {
            image: image.to_string(),
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            reference: reference.pull_target().to_string(),
            credentials,
        };
        match inspector.inspect(&req).await {
            Err(e @ RegistryError::Unauthorized { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::Config("no credentials to try".into())))
}

/// `audit --deep`: inspect each distinct image (by normalised reference) once, at most
/// `concurrency` at a time. Returns one entry per distinct image, in first-seen order, errors
/// included.
pub async fn inspect_images(
    inspector: &Inspector,
    images: &[ImageReference],
    keyring: &Keyring,
    concurrency: usize,
) -> Vec<(
    ImageReference,
    std::result::Result<ImageInspection, RegistryError>,
)> {
    use futures::StreamExt;
    let mut seen = HashSet::new();
    let distinct: Vec<&ImageReference> = images
        .iter()
        .filter(|r| seen.insert(r.normalized()))
        .collect();
    futures::stream::iter(distinct.into_iter().map(|r| async move {
        let res = inspect_with_keyring(inspector, &r.normalized(), r, keyring).await;
        (r.clone(), res)
    }))
    .buffered(concurrency.max(1))
    .collect()
    .await
}

/// Build the inspector from the registry flags (`--insecure-registry`, `--registry-ca`,
/// `--platform`); the cache goes to the default location.
pub fn inspector_from_opts(opts: &RegistryOpts) -> Result<Inspector> {
    let platform = Platform::parse(&opts.platform).map_err(Error::usage)?;
    let client = RegistryClient::new(&RegistryOptions {
        insecure_registries: opts.insecure_registry.clone(),
        ca_file: opts.registry_ca.clone(),
        connect_timeout: None,
    })
    .map_err(|e| Error::invalid(e.to_string()))?;
    Ok(Inspector::new(
        client,
        LayerCache::new(default_cache_dir()),
        platform,
    ))
}

/// Map a registry error to the CLI's error (connection problems keep their own variant).
pub fn registry_error(e: RegistryError) -> Error {
    match e {
        RegistryError::Tls { .. } => Error::Connection(format!(
            "{e}\nhint: pass --registry-ca=FILE for a private CA, or --insecure-registry=HOST[:PORT] for a plain-HTTP registry"
        )),
        RegistryError::Network { .. } => Error::Connection(e.to_string()),
        RegistryError::Unauthorized { .. } => Error::other(format!(
            "{e}\nhint: pass --pull-secret=NAME or --docker-config=PATH with credentials for this registry"
        )),
        other => Error::other(other.to_string()),
    }
}

/// The registry host a docker config `auths` key / `--docker-server` names:
/// `https://index.docker.io/v1/` → `docker.io`, `https://r.example:5000/x` → `r.example:5000`.
pub fn registry_host_from_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// `create-secret --verify`: check each credential against its registry's `/v2/` (Basic, or
/// Bearer through the token endpoint). The first refusal is returned, naming the registry and
/// the HTTP status. The lead's `verify_credentials` in create_secret.rs can be just
/// `inspect::verify_registry_credentials(&opts.credentials, &args.registry_opts).await`.
pub async fn verify_registry_credentials(
    credentials: &[crate::domain::pull_secret::RegistryCredential],
    opts: &RegistryOpts,
) -> Result<()> {
    let client = RegistryClient::new(&RegistryOptions {
        insecure_registries: opts.insecure_registry.clone(),
        ca_file: opts.registry_ca.clone(),
        connect_timeout: None,
    })
    .map_err(|e| Error::invalid(e.to_string()))?;
    for c in credentials {
        let host = registry_host_from_server(&c.server);
        if host.is_empty() {
            return Err(Error::invalid(format!(
                "--verify: cannot tell the registry from server {:?}",
                c.server
            )));
        }
        client
            .verify_credentials(
                &host,
                &Credentials::basic(c.username.clone(), c.password.clone()),
            )
            .await
            .map_err(|e| match e {
                RegistryError::Unauthorized { .. } => Error::invalid(format!(
                    "--verify: the registry refused the credentials for {:?}: {e}",
                    c.server
                )),
                other => registry_error(other),
            })?;
    }
    Ok(())
}

/// `--docker-config` path, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
/// Only an explicitly named file must exist.
/// Adds the docker config's credentials to `keyring`: `explicit` (`--docker-config`) if given,
/// else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Only an explicitly named file
/// must exist.
pub fn add_docker_config(keyring: &mut Keyring, explicit: Option<&PathBuf>) -> Result<()> {
    let (path, required) = if let Some(p) = explicit {
        (p.clone(), true)
    } else if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        (PathBuf::from(d).join("config.json"), false)
    } else if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        (PathBuf::from(h).join(".docker/config.json"), false)
    } else {
        return Ok(());
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let config = parse_docker_config_json(&bytes)
                .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
            keyring.add(&path.display().to_string(), &config);
            Ok(())
        }
        Err(e) if required || e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(path.display(), e))
        }
        Err(_) => Ok(()),
    }
}

/// Load credentials for `inspect`: from `--pull-secret` (read from the namespace), else the
/// docker config file.
async fn load_keyring(global: &GlobalOpts, args: &InspectArgs) -> Result<Keyring> {
    let mut keyring = Keyring::new();
    if let Some(name) = &args.pull_secret {
        let cluster = crate::cluster::Cluster::connect(global, None).await?;
        let secret = cluster
            .get(&crate::cluster::resources::SECRET, &cluster.namespace, name)
            .await?
            .ok_or_else(|| {
                Error::invalid(format!(
                    "secret {name:?} not found in namespace {:?}",
                    cluster.namespace
                ))
            })?;
        let secret_type = secret.get("type").and_then(|t| t.as_str());
        let mut data = BTreeMap::new();
        if let Some(map) = secret.get("data").and_then(|d| d.as_object()) {
            for (k, v) in map {
                let raw = v.as_str().unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .map_err(|_| {
                        Error::invalid(format!("secret {name:?}: key {k:?} is not base64"))
                    })?;
                data.insert(k.clone(), bytes);
            }
        }
        let config = parse_pull_secret(secret_type, &data)
            .map_err(|e| Error::invalid(format!("secret {name:?}: {e}")))?;
        keyring.add(name, &config);
        return Ok(keyring);
    }
    add_docker_config(&mut keyring, args.docker_config.as_ref())?;
    Ok(keyring)
}

/// The command. The lead wires it as
/// `Command::Inspect(args) => inspect::run(&cli.global, args).await`.
pub async fn run(global: &GlobalOpts, args: InspectArgs) -> Result<Outcome> {
    let reference = ImageReference::parse(&args.image)
        .map_err(|e| Error::invalid(format!("invalid image reference {:?}: {e}", args.image)))?;
    let inspector = inspector_from_opts(&args.registry_opts)?;
    let keyring = load_keyring(global, &args).await?;
    let insp = inspect_with_keyring(&inspector, &args.image, &reference, &keyring)
        .await
        .map_err(registry_error)?;
    let report = build_report(&args.image, &reference, &insp, jiff::Timestamp::now());
    let text = match args.output {
        InspectOutput::Json => output::to_kubectl_json(&report)?,
        InspectOutput::Yaml => output::to_yaml(&report)?,
        InspectOutput::Table => render_table(&report),
    };
    output::write_stdout(&text)?;
    if reaches_fail_on(report.findings.iter().map(|f| f.severity), args.fail_on) {
        Ok(Outcome::Findings)
    } else {
        Ok(Outcome::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image_contents::ContentFinding;
    use crate::registry::manifest::ImageConfig;

    #[test]
    fn fail_on_threshold() {
        use Severity::*;
        assert!(reaches_fail_on([Low, High], High));
        assert!(reaches_fail_on([Critical], High));
        assert!(!reaches_fail_on([Low, Medium], High));
        assert!(reaches_fail_on([Info], Info));
        assert!(!reaches_fail_on([], Info));
        assert_eq!(category_severity(Category::Shell), High);
        assert_eq!(category_severity(Category::NetworkTool), Medium);
        assert_eq!(category_severity(Category::Editor), Low);
    }

    #[test]
    fn ages() {
        let now: jiff::Timestamp = "2024-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(age_days(Some("2024-01-31T12:00:00Z"), now), Some(29));
        assert_eq!(age_days(Some("garbage"), now), None);
        assert_eq!(age_days(None, now), None);
    }

    fn inspection() -> ImageInspection {
        let mut config: ImageConfig = serde_json::from_str(
            r#"{"created":"2024-01-01T00:00:00Z","os":"linux","architecture":"amd64",
                "config":{"User":"","Entrypoint":["/app"],"Labels":{"org.opencontainers.image.base.name":"debian:12"}}}"#,
        )
        .unwrap();
        config.config.cmd = None;
        ImageInspection {
            request: ImageRequest {
                image: "r.io/a/b:1".into(),
                registry: "r.io".into(),
                repository: "a/b".into(),
                reference: "1".into(),
                credentials: Credentials::Anonymous,
            },
            digest: "sha256:aa".into(),
            platform_digest: None,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform: Platform::linux_amd64(),
            from_index: false,
            manifest_annotations: BTreeMap::new(),
            config,
            layers: vec![],
            findings: vec![ContentFinding {
                category: Category::Shell,
                name: "sh".into(),
                path: "/bin/sh".into(),
                target: Some("/bin/busybox".into()),
            }],
        }
    }

    #[test]
    fn report_and_table() {
        let r = ImageReference::parse("r.io/a/b:1").unwrap();
        let now: jiff::Timestamp = "2024-01-11T00:00:00Z".parse().unwrap();
        let rep = build_report("r.io/a/b:1", &r, &inspection(), now);
        assert_eq!(rep.age_days, Some(10));
        assert_eq!(rep.user, None);
        assert_eq!(rep.contents["shell"], vec!["/bin/sh".to_string()]);
        assert!(rep.contents["editor"].is_empty());
        assert_eq!(rep.findings[0].rule, "contains-shell");
        assert_eq!(
            rep.base_image,
            Some(BaseImage {
                name: Some("debian:12".into()),
                digest: None
            })
        );
        let json = serde_json::to_value(&rep).unwrap();
        assert_eq!(json["findings"][0]["severity"], "high");
        assert_eq!(json["reference"]["normalized"], "r.io/a/b:1");
        let table = render_table(&rep);
        assert!(
            table.contains("contains-shell") && table.contains("/bin/busybox"),
            "{table}"
        );
        assert!(table.contains("10 days ago"), "{table}");
    }

    #[test]
    fn server_to_registry_host() {
        assert_eq!(
            registry_host_from_server("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(
            registry_host_from_server("Registry.Example:5000"),
            "registry.example:5000"
        );
        assert_eq!(
            registry_host_from_server("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_host_from_server("docker.io"), "docker.io");
    }

    #[test]
    fn credentials_from_entries() {
        let mut e = AuthEntry {
            key: "r.io".into(),
            username: "u".into(),
            password: "p".into(),
            email: None,
            identity_token: None,
            registry_token: None,
        };
        assert_eq!(credentials_from_entry(&e), Credentials::basic("u", "p"));
        e.identity_token = Some("tok".into());
        assert!(matches!(
            credentials_from_entry(&e),
            Credentials::IdentityToken(_)
        ));
        let keyring = Keyring::new();
        let r = ImageReference::parse("r.io/a/b:1").unwrap();
        assert_eq!(
            candidate_credentials(&r, &keyring),
            vec![Credentials::Anonymous]
        );
    }
}
