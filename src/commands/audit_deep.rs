//! `audit --deep`: reads every image in scope from its registry (each distinct image once, at
//! most [`DEFAULT_CONCURRENCY`] at a time, layers from the on-disk cache when already scanned)
//! and turns what is inside into findings attached to every container using the image:
//! `contains-shell`, `contains-package-manager`, `contains-network-tool`, `contains-editor`,
//! `image-too-large` (compressed size above `maxImageBytes`, default
//! [`DEFAULT_MAX_IMAGE_BYTES`]) and `image-stale` (config `created` older than
//! `maxImageAgeDays`, default [`DEFAULT_MAX_IMAGE_AGE_DAYS`]).
//!
//! Credentials per image, in the kubelet's order: the entries matching the image in the pull
//! secrets of the workloads using it (pod imagePullSecrets, else its service account's), then
//! the docker config (`--docker-config`, else `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), then anonymous. A refused credential moves on to the next one.
//! An image that cannot be read is one entry in the report's `errors` (the report is then
//! incomplete: exit 4). Invalid references are skipped (they get `invalid-reference`).
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use futures::StreamExt;

use crate::cli::AuditArgs;
use crate::commands::inspect::{
    age_days, credentials_from_entry, inspector_from_opts, DEFAULT_CONCURRENCY,
};
use crate::domain::image_contents::Category;
use crate::domain::keyring::Keyring;
use crate::domain::policy::Policy;
use crate::domain::reference::ImageReference;
use crate::domain::rules::{
    set_image_command, Emitter, Finding, PullSecretUse, RuleId, SecretState,
};
use crate::domain::workload::{ContainerSpec, Workload};
use crate::error::Result;
use crate::output;
use crate::registry::{Credentials, ImageInspection, ImageRequest, Inspector, RegistryError};
use crate::report::ReportError;

/// `image-too-large` threshold when the policy sets no `maxImageBytes`: 500 MiB compressed.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 500 * 1024 * 1024;
/// `image-stale` threshold when the policy sets no `maxImageAgeDays`.
pub const DEFAULT_MAX_IMAGE_AGE_DAYS: u64 = 90;

/// What was learnt about one distinct image (no layer data, no credentials).
struct ImageFacts {
    compressed_size: u64,
    created: Option<String>,
    /// `(category, "path" or "path -> target")`, in the inspection's order.
    contents: Vec<(Category, String)>,
}

impl ImageFacts {
    fn from_inspection(i: &ImageInspection) -> Self {
        ImageFacts {
            compressed_size: i.compressed_size(),
            created: i.config.created.clone(),
            contents: i
                .findings
                .iter()
                .map(|f| {
                    let shown = match &f.target {
                        Some(t) if *t != f.path => format!("{} -> {t}", f.path),
                        _ => f.path.clone(),
                    };
                    (f.category, shown)
                })
                .collect(),
        }
    }
}

/// The outcome of a deep scan, keyed by normalized reference.
pub struct DeepScan {
    images: HashMap<String, ImageFacts>,
    errors: Vec<ReportError>,
    now: jiff::Timestamp,
}

/// The keyring of a workload's usable pull secrets (the same secrets `missing-pull-secret`
/// judges), in the order the pod lists them.
pub fn keyring(secrets: &[PullSecretUse<'_>]) -> Keyring {
    let mut k = Keyring::new();
    for s in secrets {
        if let SecretState::Usable(cfg) = &s.state {
            k.add(&format!("pull secret {:?}", s.name), cfg);
        }
    }
    k
}

fn docker_config_keyring(explicit: Option<&PathBuf>) -> Result<Keyring> {
    let mut keyring = Keyring::new();
    super::inspect::add_docker_config(&mut keyring, explicit)?;
    Ok(keyring)
}

/// Adds the credentials of `keyring` matching `r` (with where they come from: a secret name or
/// the docker config path, never the secret itself), skipping ones already there.
fn push_matches(out: &mut Vec<(String, Credentials)>, r: &ImageReference, keyring: &Keyring) {
    for m in keyring.lookup(r) {
        let c = credentials_from_entry(m.entry);
        if !c.is_anonymous() && !out.iter().any(|(_, x)| *x == c) {
            out.push((m.source.to_string(), c));
        }
    }
}

/// One distinct image to read, with everything needed to report about it.
struct Planned {
    reference: ImageReference,
    /// In the order tried: `(source, credentials)`.
    credentials: Vec<(String, Credentials)>,
    /// `(context, namespace)` of the workloads using it, for the error entry.
    users: BTreeSet<(String, String)>,
}

/// Reads every distinct valid image of `workloads` (whose pull-secret keyrings are
/// `keyrings`, index for index).
pub async fn scan(
    workloads: &[Workload],
    keyrings: &[Keyring],
    args: &AuditArgs,
    verbosity: u8,
) -> Result<DeepScan> {
    let docker = docker_config_keyring(args.docker_config.as_ref())?;
    let inspector = inspector_from_opts(&args.registry_opts)?;
    let mut order: Vec<String> = Vec::new();
    let mut plan: HashMap<String, Planned> = HashMap::new();
    for (w, keyring) in workloads.iter().zip(keyrings) {
        for c in &w.containers {
            let Ok(r) = ImageReference::parse(&c.image) else {
                continue;
            };
            let key = r.normalized();
            let p = plan.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                Planned {
                    reference: r.clone(),
                    credentials: Vec::new(),
                    users: BTreeSet::new(),
                }
            });
            push_matches(&mut p.credentials, &r, keyring);
            p.users.insert((w.context.clone(), w.namespace.clone()));
        }
    }
    for p in plan.values_mut() {
        push_matches(&mut p.credentials, &p.reference.clone(), &docker);
        p.credentials
            .push(("anonymous".to_string(), Credentials::Anonymous));
    }
    let inspector = &inspector;
    // An image of a few hundred MB can take a while to download.
    let progress = output::Progress::of("inspecting images", order.len());
    let progress = &progress;
    let results: Vec<(String, std::result::Result<ImageFacts, RegistryError>)> =
        // Owned keys: a closure taking `&String` into the async block would make this future
        // not `Send` for every lifetime (a rustc limitation), and commands run as tasks.
        futures::stream::iter(order.iter().cloned().map(|key| {
            let p = &plan[&key];
            async move {
                let r = inspect(inspector, p).await;
                progress.add(1);
                (key, r.map(|i| ImageFacts::from_inspection(&i)))
            }
        }))
        .buffered(DEFAULT_CONCURRENCY)
        .collect()
        .await;
    progress.finish();
    let mut images = HashMap::new();
    let mut errors = Vec::new();
    for (key, r) in results {
        match r {
            Ok(facts) => {
                images.insert(key, facts);
            }
            Err(e) => {
                let p = &plan[&key];
                errors.push(image_error(&key, p, &e));
            }
        }
    }
    if verbosity >= 4 {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &inspector.stats;
        eprintln!(
            "I0000 audit] deep: {} images read, {} failed; layers: {} downloaded, {} from cache; {} bytes downloaded",
            images.len(),
            errors.len(),
            s.layers_downloaded.load(Relaxed),
            s.layers_from_cache.load(Relaxed),
            s.bytes_downloaded.load(Relaxed),
        );
    }
    Ok(DeepScan {
        images,
        errors,
        now: jiff::Timestamp::now(),
    })
}

/// Tries the credentials in order until one is not refused (like the kubelet's pull loop);
/// the last refusal when all are.
async fn inspect(
    inspector: &Inspector,
    p: &Planned,
) -> std::result::Result<ImageInspection, RegistryError> {
    let r = &p.reference;
    let mut last = None;
    for (_, credentials) in &p.credentials {
        let req = ImageRequest {
            image: r.normalized(),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            reference: r.pull_target().to_string(),
            credentials: credentials.clone(),
        };
        match inspector.inspect(&req).await {
            Err(e @ RegistryError::Unauthorized { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::Config("no credentials to try".into())))
}

fn image_error(key: &str, p: &Planned, e: &RegistryError) -> ReportError {
    let cause = e.cause();
    let text = e.to_string();
    let spelled = cause.replace('-', " ");
    let mut detail = if text.starts_with(cause) {
        text
    } else if let Some(rest) = text.strip_prefix(&format!("{spelled}: ")) {
        format!("{cause}: {rest}")
    } else {
        format!("{cause}: {text}")
    };
    if matches!(e, RegistryError::Unauthorized { .. }) {
        let tried: Vec<&str> = p.credentials.iter().map(|(s, _)| s.as_str()).collect();
        detail.push_str(&format!(" (credentials tried: {})", tried.join(", ")));
    }
    let one = |f: fn(&(String, String)) -> &String| -> String {
        let set: BTreeSet<&String> = p.users.iter().map(f).collect();
        if set.len() == 1 {
            set.into_iter().next().cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    ReportError {
        resource: key.to_string(),
        namespace: one(|u| &u.1),
        message: format!("--deep: {detail}"),
        context: one(|u| &u.0),
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

fn content_rule(c: Category) -> RuleId {
    match c {
        Category::Shell => RuleId::ContainsShell,
        Category::PackageManager => RuleId::ContainsPackageManager,
        Category::NetworkTool => RuleId::ContainsNetworkTool,
        Category::Editor => RuleId::ContainsEditor,
    }
}

fn what(c: Category) -> &'static str {
    match c {
        Category::Shell => "a shell",
        Category::PackageManager => "a package manager",
        Category::NetworkTool => "a network tool",
        Category::Editor => "a text editor",
    }
}

impl DeepScan {
    /// Per-image errors for the report (each makes it incomplete).
    pub fn errors(&self) -> Vec<ReportError> {
        self.errors.clone()
    }

    /// The deep findings of every container of `w` whose image was read.
    pub fn findings(&self, w: &Workload, policy: &Policy) -> Vec<Finding> {
        let mut em = Emitter::new(w, policy);
        for c in &w.containers {
            let Ok(r) = ImageReference::parse(&c.image) else {
                continue;
            };
            if let Some(facts) = self.images.get(&r.normalized()) {
                self.container_findings(&mut em, w, c, &r, facts, policy);
            }
        }
        em.out
    }

    fn container_findings(
        &self,
        em: &mut Emitter<'_>,
        w: &Workload,
        c: &ContainerSpec,
        r: &ImageReference,
        facts: &ImageFacts,
        policy: &Policy,
    ) {
        let normalized = r.normalized();
        let roll_out = set_image_command(w, c, format_args!("{}:NEW-TAG", r.name()));
        for cat in Category::ALL {
            let paths: Vec<&str> = facts
                .contents
                .iter()
                .filter(|(k, _)| *k == cat)
                .map(|(_, p)| p.as_str())
                .collect();
            if paths.is_empty() {
                continue;
            }
            let remediation = match cat {
                Category::Shell => format!(
                    "use a multi-stage build that copies only the application onto a distroless or scratch base, so no shell ships (debug with kubectl debug and an ephemeral container instead); rebuild and roll out: {roll_out}"
                ),
                Category::PackageManager => format!(
                    "install packages in a build stage and copy the result onto a distroless or scratch base (or remove the package manager from the final stage); rebuild and roll out: {roll_out}"
                ),
                Category::NetworkTool | Category::Editor => format!(
                    "remove the package providing {} from the final image (use it only in a build stage of a multi-stage build, or a distroless base); rebuild and roll out: {roll_out}",
                    paths.join(", ")
                ),
            };
            em.emit(
                content_rule(cat),
                Some(c),
                format!(
                    "image {normalized} contains {}: {}",
                    what(cat),
                    paths.join(", ")
                ),
                remediation,
                None,
            );
        }
        let max_bytes = policy.max_image_bytes.unwrap_or(DEFAULT_MAX_IMAGE_BYTES);
        if facts.compressed_size > max_bytes {
            em.emit(
                RuleId::ImageTooLarge,
                Some(c),
                format!(
                    "image {normalized} is {} compressed ({} bytes), above maxImageBytes ({} bytes)",
                    human_size(facts.compressed_size),
                    facts.compressed_size,
                    max_bytes
                ),
                format!(
                    "use a multi-stage build onto a slim, distroless or scratch base and leave build tools, caches and package lists out of the final stage (or raise maxImageBytes in the policy); rebuild and roll out: {roll_out}"
                ),
                None,
            );
        }
        let max_days = policy
            .max_image_age_days
            .unwrap_or(DEFAULT_MAX_IMAGE_AGE_DAYS);
        if let Some(days) = age_days(facts.created.as_deref(), self.now) {
            if days > 0 && days as u64 > max_days {
                em.emit(
                    RuleId::ImageStale,
                    Some(c),
                    format!(
                        "image {normalized} was built {days} days ago ({}), more than maxImageAgeDays ({max_days})",
                        facts.created.as_deref().unwrap_or("")
                    ),
                    format!(
                        "rebuild the image on a current base image to pick up security fixes (automate it, e.g. weekly); roll out: {roll_out}"
                    ),
                    None,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(600 * 1024 * 1024), "600.0 MiB");
    }
}
