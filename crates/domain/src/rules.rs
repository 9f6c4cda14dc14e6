//! The audit rules: one table of rule IDs with their default severities, and one function per
//! rule family evaluating a container in the context of its workload, its pull secrets and the
//! policy. Pure: no I/O. `--deep` rules (`contains-*`, `image-too-large`, `image-stale`) are
//! declared here so the policy, the report and SARIF know them; their evaluation lives with the
//! registry code and produces the same [`Finding`]s.
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::docker_config::DockerConfig;
use crate::keyring::Keyring;
use crate::policy::Policy;
use crate::reference::{ImageReference, ReferenceError, ReferenceErrorKind};
use crate::severity::Severity;
use crate::workload::{ContainerSpec, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    InvalidReference,
    RegistryNotAllowed,
    RegistryDenied,
    ImplicitRegistry,
    MissingAccount,
    UnofficialDockerHubImage,
    MissingTag,
    MutableTag,
    MissingDigest,
    PullSecretNotFound,
    PullSecretInvalid,
    MissingPullSecret,
    PullPolicyNotAlways,
    WritableRootFilesystem,
    ImagePullFailing,
    ContainsShell,
    ContainsPackageManager,
    ContainsNetworkTool,
    ContainsEditor,
    ImageTooLarge,
    ImageStale,
}

/// What the contract says about a rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: RuleId,
    pub name: &'static str,
    pub severity: Severity,
    /// Off unless the policy turns it on (`missing-digest` needs `requireDigest: true`).
    pub on_by_default: bool,
    /// Needs `--deep` (reads the image from its registry).
    pub deep: bool,
    pub description: &'static str,
}

macro_rules! rule {
    ($id:ident, $name:literal, $sev:ident, $on:literal, $deep:literal, $desc:literal) => {
        RuleInfo {
            id: RuleId::$id,
            name: $name,
            severity: Severity::$sev,
            on_by_default: $on,
            deep: $deep,
            description: $desc,
        }
    };
}

/// Every rule, in the contract's order.
pub const RULES: [RuleInfo; 21] = [
    rule!(
        InvalidReference,
        "invalid-reference",
        Critical,
        true,
        false,
        "The image string is not a valid image reference."
    ),
    rule!(
        RegistryNotAllowed,
        "registry-not-allowed",
        High,
        true,
        false,
        "The image's registry is not in the policy's allowedRegistries."
    ),
    rule!(
        RegistryDenied,
        "registry-denied",
        Critical,
        true,
        false,
        "The image's registry matches the policy's deniedRegistries."
    ),
    rule!(
        ImplicitRegistry,
        "implicit-registry",
        Medium,
        true,
        false,
        "The image names no registry host, so docker.io is implied."
    ),
    rule!(
        MissingAccount,
        "missing-account",
        Low,
        true,
        false,
        "The repository path has no account or organization segment."
    ),
    rule!(
        UnofficialDockerHubImage,
        "unofficial-docker-hub-image",
        Medium,
        true,
        false,
        "A Docker Hub image outside library/ from a publisher that is not trusted."
    ),
    rule!(
        MissingTag,
        "missing-tag",
        High,
        true,
        false,
        "Neither tag nor digest: the runtime pulls latest."
    ),
    rule!(
        MutableTag,
        "mutable-tag",
        High,
        true,
        false,
        "The tag is mutable (e.g. latest) and the image is not pinned by digest."
    ),
    rule!(
        MissingDigest,
        "missing-digest",
        Medium,
        false,
        false,
        "The image is not pinned by digest."
    ),
    rule!(
        PullSecretNotFound,
        "pull-secret-not-found",
        High,
        true,
        false,
        "A referenced imagePullSecret does not exist."
    ),
    rule!(
        PullSecretInvalid,
        "pull-secret-invalid",
        High,
        true,
        false,
        "A referenced imagePullSecret is not a valid docker config secret."
    ),
    rule!(
        MissingPullSecret,
        "missing-pull-secret",
        High,
        true,
        false,
        "An image from a private registry has no usable pull secret for its registry."
    ),
    rule!(
        PullPolicyNotAlways,
        "pull-policy-not-always",
        Medium,
        true,
        false,
        "A private image is not pulled with imagePullPolicy: Always."
    ),
    rule!(
        WritableRootFilesystem,
        "writable-root-filesystem",
        Low,
        true,
        false,
        "The container does not set readOnlyRootFilesystem: true."
    ),
    rule!(
        ImagePullFailing,
        "image-pull-failing",
        Critical,
        true,
        false,
        "A container is waiting because its image cannot be pulled."
    ),
    rule!(
        ContainsShell,
        "contains-shell",
        High,
        true,
        true,
        "The image contains a shell."
    ),
    rule!(
        ContainsPackageManager,
        "contains-package-manager",
        High,
        true,
        true,
        "The image contains a package manager."
    ),
    rule!(
        ContainsNetworkTool,
        "contains-network-tool",
        Medium,
        true,
        true,
        "The image contains a network tool."
    ),
    rule!(
        ContainsEditor,
        "contains-editor",
        Low,
        true,
        true,
        "The image contains a text editor."
    ),
    rule!(
        ImageTooLarge,
        "image-too-large",
        Low,
        true,
        true,
        "The image's compressed size is above maxImageBytes (default 500 MiB)."
    ),
    rule!(
        ImageStale,
        "image-stale",
        Low,
        true,
        true,
        "The image was built more than maxImageAgeDays (default 90) days ago."
    ),
];

impl RuleId {
    pub fn info(self) -> &'static RuleInfo {
        RULES
            .iter()
            .find(|r| r.id == self)
            .expect("every rule is in RULES")
    }
    pub fn as_str(self) -> &'static str {
        self.info().name
    }
    pub fn from_name(name: &str) -> Option<RuleId> {
        RULES.iter().find(|r| r.name == name).map(|r| r.id)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an image pull fails (`cause` of `image-pull-failing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    InvalidReference,
    PullSecretNotFound,
    PullSecretInvalid,
    MissingPullSecret,
    Unauthorized,
    NotFound,
    Tls,
    Network,
    RateLimited,
    NeverPull,
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::InvalidReference => "invalid-reference",
            Cause::PullSecretNotFound => "pull-secret-not-found",
            Cause::PullSecretInvalid => "pull-secret-invalid",
            Cause::MissingPullSecret => "missing-pull-secret",
            Cause::Unauthorized => "unauthorized",
            Cause::NotFound => "not-found",
            Cause::Tls => "tls",
            Cause::Network => "network",
            Cause::RateLimited => "rate-limited",
            Cause::NeverPull => "never-pull",
            Cause::Unknown => "unknown",
        }
    }
}

/// A manifest position (SARIF); never serialized into the report itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
}

/// One finding, as the contract's report prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    pub suppressed: bool,
    pub context: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub container: String,
    pub image: String,
    pub message: String,
    pub remediation: String,
    pub cause: Option<Cause>,
    #[serde(skip)]
    pub location: Option<Location>,
}

/// What became of one imagePullSecret a workload uses.
#[derive(Debug, Clone)]
pub enum SecretState<'a> {
    /// No such secret in the namespace. `elsewhere`: namespaces holding a secret of that name.
    NotFound {
        elsewhere: Vec<String>,
    },
    /// Exists but cannot be used: why (never secret material).
    Invalid(String),
    Usable(&'a DockerConfig),
}

/// A pull secret as the workload's pods will use it.
#[derive(Debug, Clone)]
pub struct PullSecretUse<'a> {
    pub name: String,
    /// The service account it comes from, when the pod names none itself.
    pub via_service_account: Option<String>,
    pub state: SecretState<'a>,
}

/// Everything the rules know about one workload.
pub struct WorkloadInput<'a> {
    pub workload: &'a Workload,
    pub secrets: &'a [PullSecretUse<'a>],
    pub policy: &'a Policy,
}

/// Builds findings with the policy's severity; drops disabled rules; marks exempt ones.
pub struct Emitter<'a> {
    pub workload: &'a Workload,
    pub policy: &'a Policy,
    pub out: Vec<Finding>,
}

impl<'a> Emitter<'a> {
    pub fn new(workload: &'a Workload, policy: &'a Policy) -> Self {
        Emitter {
            workload,
            policy,
            out: Vec::new(),
        }
    }

    /// Records a finding unless the policy turns the rule off. Exempted rules
    /// (`image-sec.io/ignore`) are still reported, with `suppressed: true`: the report then
    /// shows what was waived, while the exit code and the summary's counts ignore them.
    pub fn emit(
        &mut self,
        rule: RuleId,
        container: Option<&ContainerSpec>,
        message: String,
        remediation: String,
        cause: Option<Cause>,
    ) {
        let Some(severity) = self.policy.severity(rule) else {
            return;
        };
        let w = self.workload;
        let suppressed = w.ignore.contains(rule.as_str()) || w.ignore.contains("all");
        let image = container.map(|c| c.image.clone()).unwrap_or_default();
        let location = w.source.as_ref().map(|s| Location {
            file: s.file.clone(),
            line: container
                .and_then(|c| {
                    crate::manifests::find_image_line(&s.document_text, s.document_line, &c.image)
                })
                .or(Some(s.line)),
        });
        self.out.push(Finding {
            rule,
            severity,
            suppressed,
            context: w.context.clone(),
            namespace: w.namespace.clone(),
            kind: w.kind.clone(),
            name: w.name.clone(),
            container: container.map(|c| c.name.clone()).unwrap_or_default(),
            image,
            message,
            remediation,
            cause,
            location,
        });
    }
}

/// `kubectl set image deployment/web app=<...> -n shop`. The rules pass `format_args!` for
/// `image`: written straight into the command, with no string of its own.
pub fn set_image_command(w: &Workload, c: &ContainerSpec, image: impl fmt::Display) -> String {
    format!(
        "kubectl set image {} {}={} -n {}",
        w.kind_name_display(),
        c.name,
        image,
        w.namespace
    )
}

/// Every static rule for one workload, in a stable order.
pub fn evaluate(input: &WorkloadInput<'_>) -> Vec<Finding> {
    evaluate_with(input, &mut ParsedImages::default())
}

/// Image references parsed once each: workloads of one cluster share most of their images
/// (sidecars, base images, replicas of one app).
#[derive(Default)]
pub struct ParsedImages(HashMap<String, Result<ImageReference, ReferenceError>>);

impl ParsedImages {
    pub fn get(&mut self, image: &str) -> &Result<ImageReference, ReferenceError> {
        if !self.0.contains_key(image) {
            self.0
                .insert(image.to_string(), ImageReference::parse(image));
        }
        &self.0[image]
    }
}

/// [`evaluate`], parsing each image at most once across calls that share `images`.
pub fn evaluate_with(input: &WorkloadInput<'_>, images: &mut ParsedImages) -> Vec<Finding> {
    let w = input.workload;
    let mut em = Emitter::new(w, input.policy);
    secret_rules(input, &mut em);
    // Built once per workload, when a container's image needs credentials.
    let mut keyring = None;
    for c in &w.containers {
        container_rules(input, c, images.get(&c.image), &mut keyring, &mut em);
    }
    em.out
}

fn secret_rules(input: &WorkloadInput<'_>, em: &mut Emitter<'_>) {
    let w = input.workload;
    for s in input.secrets {
        let via = match &s.via_service_account {
            Some(sa) => format!(" (via service account {sa:?})"),
            None => String::new(),
        };
        match &s.state {
            SecretState::NotFound { elsewhere } => {
                let (message, remediation) = match elsewhere.first() {
                    Some(other) => (
                        format!(
                            "imagePullSecret {:?}{via} does not exist in namespace {:?}; a secret of that name exists in namespace {other:?}",
                            s.name, w.namespace
                        ),
                        copy_secret_command(&s.name, other, &w.namespace),
                    ),
                    None => (
                        format!(
                            "imagePullSecret {:?}{via} does not exist in namespace {:?}",
                            s.name, w.namespace
                        ),
                        format!(
                            "kubectl image-sec create-secret {} --docker-server=REGISTRY --docker-username=USER --password-stdin -n {}",
                            s.name, w.namespace
                        ),
                    ),
                };
                em.emit(RuleId::PullSecretNotFound, None, message, remediation, None);
            }
            SecretState::Invalid(why) => em.emit(
                RuleId::PullSecretInvalid,
                None,
                format!("imagePullSecret {:?}{via} cannot be used: {why}", s.name),
                format!(
                    "kubectl image-sec create-secret {} --docker-server=REGISTRY --docker-username=USER --password-stdin --overwrite -n {}",
                    s.name, w.namespace
                ),
                None,
            ),
            SecretState::Usable(_) => {}
        }
    }
}

/// Copies a secret into another namespace (metadata that pins it to the old one removed).
pub fn copy_secret_command(name: &str, from: &str, to: &str) -> String {
    format!(
        "kubectl get secret {name} -n {from} -o json | jq 'del(.metadata.namespace,.metadata.uid,.metadata.resourceVersion,.metadata.creationTimestamp,.metadata.ownerReferences)' | kubectl create -n {to} -f -"
    )
}

/// Whether the image's registry is public per the policy.
pub fn is_public(policy: &Policy, r: &ImageReference) -> bool {
    policy.public_registries.iter().any(|p| p.matches(r))
}

/// The keyring of the usable pull secrets, in their order (the kubelet's matching rules).
fn usable_keyring(secrets: &[PullSecretUse<'_>]) -> Keyring {
    let mut keyring = Keyring::new();
    for s in secrets {
        if let SecretState::Usable(cfg) = &s.state {
            keyring.add(&s.name, cfg);
        }
    }
    keyring
}

/// Kubernetes' defaulting of `imagePullPolicy`: `Always` when the runtime would pull `latest`
/// (tag `latest`, or neither tag nor digest), else `IfNotPresent`.
pub fn effective_pull_policy<'a>(c: &'a ContainerSpec, r: &ImageReference) -> &'a str {
    match &c.pull_policy {
        Some(p) if !p.is_empty() => p,
        _ => {
            let pulls_latest =
                r.tag.as_deref() == Some("latest") || (r.tag.is_none() && r.digest.is_none());
            if pulls_latest {
                "Always"
            } else {
                "IfNotPresent"
            }
        }
    }
}

fn container_rules(
    input: &WorkloadInput<'_>,
    c: &ContainerSpec,
    parsed: &Result<ImageReference, ReferenceError>,
    keyring: &mut Option<Keyring>,
    em: &mut Emitter<'_>,
) {
    let w = input.workload;
    let policy = input.policy;
    if !c.read_only_root_filesystem {
        em.emit(
            RuleId::WritableRootFilesystem,
            Some(c),
            format!(
                "container {:?} can write to its root filesystem (securityContext.readOnlyRootFilesystem is not true)",
                c.name
            ),
            format!(
                "kubectl patch {} -n {} --type=json -p '[{{\"op\":\"add\",\"path\":\"{}/securityContext\",\"value\":{{\"readOnlyRootFilesystem\":true}}}}]' (mount an emptyDir where the app must write)",
                w.kind_name_display(),
                w.namespace,
                w.container_pointer_display(c)
            ),
            None,
        );
    }
    let r = match parsed {
        Ok(r) => r,
        Err(e) => {
            let what = match e.kind {
                ReferenceErrorKind::UnrenderedTemplate => {
                    "contains a template placeholder that was never rendered".to_string()
                }
                _ => e.detail.clone(),
            };
            em.emit(
                RuleId::InvalidReference,
                Some(c),
                format!("image {:?} is not a valid image reference: {what}", c.image),
                format!(
                    "render the manifest (helm template / envsubst) or fix the image: {}",
                    set_image_command(w, c, "REGISTRY/ACCOUNT/REPOSITORY:TAG")
                ),
                None,
            );
            return;
        }
    };
    let normalized = r.normalized();
    if let Some(p) = policy.denied_registries.iter().find(|p| p.matches(r)) {
        em.emit(
            RuleId::RegistryDenied,
            Some(c),
            format!(
                "image {normalized} comes from {}, which the policy denies ({p})",
                r.registry
            ),
            format!(
                "mirror the image to an allowed registry and {}",
                set_image_command(w, c, format_args!("ALLOWED-REGISTRY/{}", r.repository))
            ),
            None,
        );
    }
    if let Some(allowed) = &policy.allowed_registries {
        if !allowed.iter().any(|p| p.matches(r)) {
            let list: Vec<String> = allowed.iter().map(|p| p.to_string()).collect();
            em.emit(
                RuleId::RegistryNotAllowed,
                Some(c),
                format!(
                    "image {normalized} is from {}, which is not in allowedRegistries ({})",
                    r.registry,
                    list.join(", ")
                ),
                format!(
                    "mirror the image to an allowed registry and {}",
                    set_image_command(
                        w,
                        c,
                        format_args!(
                            "{}/{}",
                            list.first().map(String::as_str).unwrap_or("REGISTRY"),
                            r.repository
                        )
                    )
                ),
                None,
            );
        }
    }
    if !r.registry_written {
        em.emit(
            RuleId::ImplicitRegistry,
            Some(c),
            format!(
                "image {:?} names no registry, so {} is implied",
                c.image, r.registry
            ),
            set_image_command(w, c, &normalized),
            None,
        );
    }
    if r.account().is_none() && !r.is_official_image() {
        em.emit(
            RuleId::MissingAccount,
            Some(c),
            format!(
                "repository {:?} on {} has no account or organization segment",
                r.repository, r.registry
            ),
            set_image_command(
                w,
                c,
                format_args!("{}/ACCOUNT/{}", r.registry, r.repository),
            ),
            None,
        );
    }
    if r.is_docker_hub() && !r.is_official_image() && !policy.is_trusted_publisher(r) {
        em.emit(
            RuleId::UnofficialDockerHubImage,
            Some(c),
            format!(
                "image {normalized} is a Docker Hub image from {:?}, which is neither an official image nor a trusted publisher",
                r.account().unwrap_or("")
            ),
            format!(
                "use an official or verified image, or add {:?} to trustedPublishers in the policy",
                r.account().unwrap_or("")
            ),
            None,
        );
    }
    if r.tag.is_none() && r.digest.is_none() {
        em.emit(
            RuleId::MissingTag,
            Some(c),
            format!(
                "image {:?} has neither tag nor digest, so the runtime pulls {}/{}:latest",
                c.image, r.registry, r.repository
            ),
            set_image_command(
                w,
                c,
                format_args!("{}/{}:VERSION", r.registry, r.repository),
            ),
            None,
        );
    }
    if let Some(tag) = &r.tag {
        if r.digest.is_none() && policy.mutable_tags.iter().any(|t| t == tag) {
            em.emit(
                RuleId::MutableTag,
                Some(c),
                format!(
                    "image {normalized} uses the mutable tag {tag:?} without a digest; what runs can change on every pull"
                ),
                set_image_command(
                    w,
                    c,
                    format_args!("{}/{}:VERSION", r.registry, r.repository)
                ),
                None,
            );
        }
    }
    if r.digest.is_none() {
        em.emit(
            RuleId::MissingDigest,
            Some(c),
            format!("image {normalized} is not pinned by digest"),
            set_image_command(w, c, format_args!("{normalized}@sha256:DIGEST")),
            None,
        );
    }
    if is_public(policy, r) {
        return;
    }
    // Private registry: credentials and cached-image exposure.
    let keyring = keyring.get_or_insert_with(|| usable_keyring(input.secrets));
    if keyring.lookup(r).is_empty() {
        let names: Vec<String> = input
            .secrets
            .iter()
            .map(|s| {
                let state = match &s.state {
                    SecretState::NotFound { .. } => "not found",
                    SecretState::Invalid(_) => "invalid",
                    SecretState::Usable(_) => "no entry for this registry",
                };
                format!("{} ({state})", s.name)
            })
            .collect();
        let have = if names.is_empty() {
            "the pod has no imagePullSecrets".to_string()
        } else {
            format!("its pull secrets: {}", names.join(", "))
        };
        em.emit(
            RuleId::MissingPullSecret,
            Some(c),
            format!(
                "image {normalized} is from the private registry {} and no usable pull secret matches it ({have})",
                r.registry
            ),
            format!(
                "kubectl image-sec create-secret regcred --docker-server={} --docker-username=USER --password-stdin -n {} --attach-to={}",
                r.registry,
                w.namespace,
                w.kind_name_display()
            ),
            None,
        );
    }
    let policy_now = effective_pull_policy(c, r);
    if policy_now != "Always" {
        em.emit(
            RuleId::PullPolicyNotAlways,
            Some(c),
            format!(
                "private image {normalized} is pulled with imagePullPolicy {policy_now}: pods on the same node can start it from the cache without credentials"
            ),
            format!(
                "kubectl patch {} -n {} --type=json -p '[{{\"op\":\"add\",\"path\":\"{}/imagePullPolicy\",\"value\":\"Always\"}}]'",
                w.kind_name_display(),
                w.namespace,
                w.container_pointer_display(c)
            ),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::extract;
    use serde_json::json;

    fn run(image: &str, policy: &Policy, secrets: &[PullSecretUse<'_>]) -> Vec<&'static str> {
        let obj = json!({"metadata": {"name": "p", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": image, "imagePullPolicy": "Always",
                "securityContext": {"readOnlyRootFilesystem": true}}]}});
        let w = extract("Pod", &obj, "", "default").unwrap();
        let mut ids: Vec<&'static str> = evaluate(&WorkloadInput {
            workload: &w,
            secrets,
            policy,
        })
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
        ids.sort();
        ids
    }

    /// The remediations written through `KindName`, `ContainerPointer` and `format_args!`,
    /// spelled out in full.
    #[test]
    fn remediations_are_spelled_in_full() {
        let obj = json!({"metadata": {"name": "Web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "nginx"}]}}}});
        let w = extract("Deployment", &obj, "", "default").unwrap();
        let findings = evaluate(&WorkloadInput {
            workload: &w,
            secrets: &[],
            policy: &Policy::default(),
        });
        let remediation = |rule: RuleId| {
            findings
                .iter()
                .find(|f| f.rule == rule)
                .map(|f| f.remediation.as_str())
                .unwrap()
        };
        assert_eq!(
            remediation(RuleId::MissingTag),
            "kubectl set image deployment/Web app=docker.io/library/nginx:VERSION -n shop"
        );
        assert_eq!(
            remediation(RuleId::WritableRootFilesystem),
            "kubectl patch deployment/Web -n shop --type=json -p '[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/securityContext\",\"value\":{\"readOnlyRootFilesystem\":true}}]' (mount an emptyDir where the app must write)"
        );
    }

    #[test]
    fn a_shared_image_cache_gives_the_same_findings() {
        let p = Policy::default();
        let images = [
            "nginx",
            "reg.example.com/team/app:1",
            "nginx",
            "Bad//Ref",
            "nginx",
        ];
        let mut cache = ParsedImages::default();
        for (i, image) in images.iter().enumerate() {
            let obj = json!({"metadata": {"name": format!("p{i}"), "namespace": "shop"},
                "spec": {"containers": [{"name": "app", "image": image}]}});
            let w = extract("Pod", &obj, "", "default").unwrap();
            let input = WorkloadInput {
                workload: &w,
                secrets: &[],
                policy: &p,
            };
            let alone: Vec<String> = evaluate(&input).iter().map(|f| f.message.clone()).collect();
            let shared: Vec<String> = evaluate_with(&input, &mut cache)
                .iter()
                .map(|f| f.message.clone())
                .collect();
            assert_eq!(alone, shared, "{image}");
            assert!(!alone.is_empty(), "{image}");
        }
        assert_eq!(cache.0.len(), 3);
        assert_eq!(
            cache.get("nginx").as_ref().unwrap().normalized(),
            "docker.io/library/nginx"
        );
    }

    #[test]
    fn naming_rules() {
        let p = Policy::default();
        assert_eq!(run("nginx", &p, &[]), ["implicit-registry", "missing-tag"]);
        assert_eq!(
            run("docker.io/library/nginx:1.27", &p, &[]),
            Vec::<&str>::new()
        );
        assert_eq!(
            run("nginx:latest", &p, &[]),
            ["implicit-registry", "mutable-tag"]
        );
        assert_eq!(
            run("bitnami/redis:7", &p, &[]),
            ["implicit-registry", "unofficial-docker-hub-image"]
        );
        assert_eq!(run("${TAG}", &p, &[]), ["invalid-reference"]);
        assert_eq!(run("Registry.io/App:1", &p, &[]), ["invalid-reference"]);
        assert_eq!(
            run("localhost:5000/app:1", &p, &[]),
            ["missing-account", "missing-pull-secret"]
        );
        assert_eq!(
            run("docker.io/library/nginx:latest@sha256:4d5f1b3c2a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708", &p, &[]),
            Vec::<&str>::new()
        );
    }
}
