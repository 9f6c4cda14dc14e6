//! Image references exactly as the container runtime and the kubelet read them.
//!
//! This is a hand-written port of `github.com/distribution/reference` (v0.6): the grammar of
//! `regexp.go`, `Parse` in `reference.go` and `ParseNormalizedNamed`/`splitDockerDomain` in
//! `normalize.go`, with go-digest's validation of digests. The same strings are accepted and
//! rejected; the error kinds are finer than distribution's so that a report can say which part is
//! wrong.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path
//! domain           := host [':' port-number]
//! host             := domain-name | IPv4address | '[' IPv6address ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path             := path-component ['/' path-component]*
//! path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex   (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
//! ```
//!
//! Normalisation follows `splitDockerDomain`: the first `/`-separated component is the registry
//! when it contains `.` or `:`, is `localhost`, or contains an uppercase letter; otherwise
//! `docker.io` is implied. `index.docker.io` becomes `docker.io`, and single-component Docker Hub
//! paths gain `library/`. What was written is kept apart from what was implied: no tag written
//! stays `None` (the runtime then pulls `latest`, see [`ImageReference::pull_target`]).

use std::fmt;

/// Docker Hub's canonical registry name after normalisation.
pub const DOCKER_HUB_REGISTRY: &str = "docker.io";
/// Docker Hub's legacy name ("the Docker Index"), normalised to [`DOCKER_HUB_REGISTRY`].
pub const LEGACY_DOCKER_HUB_REGISTRY: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
pub const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
/// The tag the runtime pulls when none is written.
pub const DEFAULT_TAG: &str = "latest";
/// distribution/reference v0.6 limits the repository path (without the registry) to this length.
pub const REPOSITORY_PATH_MAX_LEN: usize = 255;
/// Longest tag the grammar allows.
pub const TAG_MAX_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ImageReference {
    /// Normalised `host[:port]`; `docker.io` for Docker Hub.
    pub registry: String,
    /// Normalised path, e.g. `library/nginx`.
    pub repository: String,
    /// The tag as written; `None` when no tag was written (never filled with `latest`).
    pub tag: Option<String>,
    /// The digest as written, e.g. `sha256:<hex>`.
    pub digest: Option<String>,
    /// `false` when the registry was implied (`docker.io`).
    pub registry_written: bool,
}

/// Which part of a reference is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceErrorKind {
    Empty,
    InvalidFormat,
    InvalidDomain,
    InvalidPath,
    UppercaseRepository,
    InvalidTag,
    InvalidDigest,
    NameTooLong,
    /// `${TAG}`, `{{ .Values.x }}`, `$(VAR)`: a template that was never rendered.
    UnrenderedTemplate,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    pub kind: ReferenceErrorKind,
    /// The string that was parsed.
    pub input: String,
    /// What is wrong with it, in words.
    pub detail: String,
}

impl ReferenceError {
    fn new(kind: ReferenceErrorKind, input: &str, detail: impl Into<String>) -> Self {
        ReferenceError {
            kind,
            input: input.to_string(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reference {:?}: {}", self.input, self.detail)
    }
}

impl std::error::Error for ReferenceError {}

impl ImageReference {
    /// Parses and normalises `s` the way `ParseNormalizedNamed` does.
    pub fn parse(s: &str) -> Result<ImageReference, ReferenceError> {
        Parser { input: s }.parse()
    }

    /// `registry/repository`, e.g. `docker.io/library/nginx` (the name the kubelet looks up
    /// credentials for).
    pub fn name(&self) -> String {
        let mut out = String::with_capacity(self.normalized_len());
        out.push_str(&self.registry);
        out.push('/');
        out.push_str(&self.repository);
        out
    }

    /// The length of [`ImageReference::normalized`], so it and `name` allocate once.
    fn normalized_len(&self) -> usize {
        self.registry.len()
            + 1
            + self.repository.len()
            + self.tag.as_ref().map_or(0, |t| 1 + t.len())
            + self.digest.as_ref().map_or(0, |d| 1 + d.len())
    }

    /// The name plus `:tag` and `@digest` when they were written.
    pub fn normalized(&self) -> String {
        let mut out = self.name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB_REGISTRY
    }

    /// `docker.io/library/<single component>`.
    pub fn is_official_image(&self) -> bool {
        self.is_docker_hub()
            && self
                .repository
                .strip_prefix(OFFICIAL_REPOSITORY_PREFIX)
                .is_some_and(|rest| !rest.contains('/'))
    }

    /// The first path component when the path has two or more components
    /// (`library` for `docker.io/library/nginx`, `None` for `registry.io/app`).
    pub fn account(&self) -> Option<&str> {
        self.repository.split_once('/').map(|(account, _)| account)
    }

    /// What the runtime pulls: the digest if any (it wins over a tag), else the tag, else `latest`.
    pub fn pull_target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

/// The registry part of a reference after `splitDockerDomain`.
struct SplitName<'a> {
    /// The registry as written, or `None` when `docker.io` is implied.
    written_domain: Option<&'a str>,
    /// Everything after the registry: path, tag and digest.
    remainder: &'a str,
}

struct Parser<'a> {
    input: &'a str,
}

impl<'a> Parser<'a> {
    fn error(&self, kind: ReferenceErrorKind, detail: impl Into<String>) -> ReferenceError {
        ReferenceError::new(kind, self.input, detail)
    }

    fn parse(&self) -> Result<ImageReference, ReferenceError> {
        use ReferenceErrorKind as K;
        let s = self.input;
        if s.is_empty() {
            return Err(self.error(K::Empty, "repository name must have at least one component"));
        }
        if let Some(marker) = template_marker(s) {
            return Err(self.error(
                K::UnrenderedTemplate,
                format!("contains the unrendered template marker `{marker}`"),
            ));
        }
        if is_identifier(s) {
            // ParseNormalizedNamed refuses image IDs: they are not names.
            return Err(self.error(
                K::InvalidFormat,
                "cannot specify 64-byte hexadecimal strings (an image ID, not a name)",
            ));
        }

        if check_digest(s).is_ok() {
            // `sha256:<hex>` is how pods name a local image by ID. distribution would read it as
            // `docker.io/library/sha256` tagged `<hex>`, containerd resolves it as an image ID:
            // either way it is not an image name, so it is refused like a bare ID.
            return Err(self.error(
                K::InvalidFormat,
                "a digest alone is an image ID, not an image name",
            ));
        }

        let split = split_docker_domain(s);
        if let Some(domain) = split.written_domain {
            self.check_domain(domain)?;
        }
        let (path_part, tag, digest) = self.split_path_tag_digest(split.remainder)?;
        if path_part.is_empty() {
            return Err(self.error(K::InvalidFormat, "repository name is missing"));
        }
        if path_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(self.error(K::UppercaseRepository, "repository name must be lowercase"));
        }
        self.check_path(path_part)?;
        if let Some(tag) = tag {
            self.check_tag(tag)?;
        }
        if let Some(digest) = digest {
            self.check_digest(digest)?;
        }

        let (registry, repository) = self.normalize_name(&split, path_part)?;
        Ok(ImageReference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
            registry_written: split.written_domain.is_some(),
        })
    }

    /// Splits `path[:tag][@digest]`. Path components cannot hold `:` or `@`, so the path ends at
    /// the first of them; the tag cannot hold `@`.
    #[allow(clippy::type_complexity)]
    fn split_path_tag_digest(
        &self,
        remainder: &'a str,
    ) -> Result<(&'a str, Option<&'a str>, Option<&'a str>), ReferenceError> {
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((before, after)) => (before, Some(after)),
            None => (remainder, None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((before, after)) => (before, Some(after)),
            None => (name_and_tag, None),
        };
        Ok((path, tag, digest))
    }

    fn check_path(&self, path: &str) -> Result<(), ReferenceError> {
        for component in path.split('/') {
            if component.is_empty() {
                return Err(self.error(
                    ReferenceErrorKind::InvalidPath,
                    "repository path has an empty component",
                ));
            }
            if !is_path_component(component) {
                return Err(self.error(
                    ReferenceErrorKind::InvalidPath,
                    format!(
                        "repository path component {component:?} is not made of [a-z0-9] \
                         joined by '.', '_', '__' or dashes"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_tag(&self, tag: &str) -> Result<(), ReferenceError> {
        if is_tag(tag) {
            return Ok(());
        }
        let detail = if tag.is_empty() {
            "tag is empty".to_string()
        } else if tag.len() > TAG_MAX_LEN {
            format!("tag is longer than {TAG_MAX_LEN} characters")
        } else {
            format!("tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]*")
        };
        Err(self.error(ReferenceErrorKind::InvalidTag, detail))
    }

    fn check_digest(&self, digest: &str) -> Result<(), ReferenceError> {
        check_digest(digest).map_err(|detail| self.error(ReferenceErrorKind::InvalidDigest, detail))
    }

    /// Applies the registry rules of `splitDockerDomain` and the length limit of `Parse`.
    fn normalize_name(
        &self,
        split: &SplitName<'_>,
        path: &str,
    ) -> Result<(String, String), ReferenceError> {
        let (registry, repository) = match split.written_domain {
            None => (DOCKER_HUB_REGISTRY, official_if_single(path)),
            Some(LEGACY_DOCKER_HUB_REGISTRY) | Some(DOCKER_HUB_REGISTRY) => {
                (DOCKER_HUB_REGISTRY, official_if_single(path))
            }
            Some(domain) if is_domain_and_port(domain) => (domain, path.to_string()),
            Some(domain) if is_path_component(domain) => {
                // Quirk kept from distribution: `a_b.com/x` is not a host name, but the whole
                // name still matches the grammar as a path without domain, so Parse accepts it
                // and the runtime contacts `a_b.com`. The length limit then covers the whole name.
                let whole = format!("{domain}/{path}");
                if whole.len() > REPOSITORY_PATH_MAX_LEN {
                    return Err(self.too_long());
                }
                (domain, path.to_string())
            }
            Some(domain) => return Err(self.invalid_domain(domain)),
        };
        if repository.len() > REPOSITORY_PATH_MAX_LEN {
            return Err(self.too_long());
        }
        Ok((registry.to_string(), repository))
    }

    fn check_domain(&self, domain: &str) -> Result<(), ReferenceError> {
        if is_domain_and_port(domain) || is_path_component(domain) {
            Ok(())
        } else {
            Err(self.invalid_domain(domain))
        }
    }

    fn invalid_domain(&self, domain: &str) -> ReferenceError {
        let detail = if self.input.contains("://") {
            "an image reference has no URL scheme (remove `https://`)".to_string()
        } else {
            format!("registry {domain:?} is not a valid host[:port]")
        };
        self.error(ReferenceErrorKind::InvalidDomain, detail)
    }

    fn too_long(&self) -> ReferenceError {
        self.error(
            ReferenceErrorKind::NameTooLong,
            format!("repository name must not be more than {REPOSITORY_PATH_MAX_LEN} characters"),
        )
    }
}

/// `splitDockerDomain` from normalize.go, applied to the whole input (tag and digest included,
/// exactly as distribution does).
fn split_docker_domain(s: &str) -> SplitName<'_> {
    let Some((maybe_domain, rest)) = s.split_once('/') else {
        // "Familiar" single-component names are always Docker Hub, even `localhost` or
        // `example.com` (distribution's FIXME).
        return SplitName {
            written_domain: None,
            remainder: s,
        };
    };
    let is_domain = maybe_domain == "localhost"
        || maybe_domain == LEGACY_DOCKER_HUB_REGISTRY
        || maybe_domain.contains(['.', ':'])
        // Uppercase namespaces are not allowed, so an uppercase first element is read as a domain.
        || maybe_domain.bytes().any(|b| b.is_ascii_uppercase());
    if is_domain {
        SplitName {
            written_domain: Some(maybe_domain),
            remainder: rest,
        }
    } else {
        SplitName {
            written_domain: None,
            remainder: s,
        }
    }
}

/// `docker.io/ubuntu` means `docker.io/library/ubuntu`, but only on Docker Hub.
fn official_if_single(path: &str) -> String {
    if path.contains('/') {
        path.to_string()
    } else {
        format!("{OFFICIAL_REPOSITORY_PREFIX}{path}")
    }
}

fn template_marker(s: &str) -> Option<&'static str> {
    ["${", "{{", "}}", "$("]
        .into_iter()
        .find(|marker| s.contains(marker))
}

/// `[a-f0-9]{64}`: an image ID.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub(crate) fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        // An alphanumeric run.
        let start = i;
        while i < bytes.len() && is_lower_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator, which must be followed by another alphanumeric run.
        let sep_start = i;
        while i < bytes.len() && !is_lower_alnum(bytes[i]) {
            i += 1;
        }
        if !is_separator(&bytes[sep_start..i]) {
            return false;
        }
    }
}

fn is_separator(sep: &[u8]) -> bool {
    matches!(sep, b"." | b"_" | b"__") || (!sep.is_empty() && sep.iter().all(|&b| b == b'-'))
}

/// `[\w][\w.-]{0,127}` with ASCII `\w`.
fn is_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_MAX_LEN
        && is_word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| is_word(b) || b == b'.' || b == b'-')
}

/// `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
pub(crate) fn is_domain_component(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `host(:[0-9]+)?` where host is a domain name (IPv4 included) or a bracketed IPv6 address.
pub(crate) fn is_domain_and_port(domain: &str) -> bool {
    let (host, port) = split_host_port(domain);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && is_host(host)
}

/// Splits off `:port`, looking past a bracketed IPv6 address.
pub(crate) fn split_host_port(domain: &str) -> (&str, Option<&str>) {
    let search_from = if domain.starts_with('[') {
        domain.find(']').map_or(domain.len(), |end| end + 1)
    } else {
        0
    };
    match domain[search_from..].find(':') {
        Some(offset) => {
            let colon = search_from + offset;
            (&domain[..colon], Some(&domain[colon + 1..]))
        }
        None => (domain, None),
    }
}

fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // `\[(?:[a-fA-F0-9:]+)\]`: compressed or full IPv6, no zone, no embedded IPv4.
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    host.split('.').all(is_domain_component)
}

/// Validates a digest as the reference grammar and go-digest do together: the algorithm grammar,
/// then a registered algorithm (sha256, sha384, sha512) with its exact lowercase-hex length.
fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err("digest must be algorithm:hex".to_string());
    };
    if !is_digest_algorithm(algorithm) {
        return Err(format!("digest algorithm {algorithm:?} is malformed"));
    }
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("digest must have at least 32 hexadecimal characters".to_string());
    }
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algorithm:?}")),
    };
    if hex.len() != expected_len {
        return Err(format!(
            "{algorithm} digest must have {expected_len} hexadecimal characters, not {}",
            hex.len()
        ));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("digest hex must be lowercase".to_string());
    }
    Ok(())
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*`
fn is_digest_algorithm(algorithm: &str) -> bool {
    algorithm.split(['-', '_', '+', '.']).all(|component| {
        let bytes = component.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphabetic()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use ReferenceErrorKind as K;

    const SHA256: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const SHA256_B: &str =
        "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
    const SHA512: &str = "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const SHA384: &str = "sha384:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// (input, registry, repository, tag, digest, registry_written)
    type Valid = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    fn valid_cases() -> Vec<(
        String,
        &'static str,
        String,
        Option<String>,
        Option<&'static str>,
        bool,
    )> {
        let fixed: Vec<Valid> = vec![
            // Docker Hub normalisation.
            ("nginx", "docker.io", "library/nginx", None, None, false),
            (
                "nginx:1.25",
                "docker.io",
                "library/nginx",
                Some("1.25"),
                None,
                false,
            ),
            (
                "nginx:latest",
                "docker.io",
                "library/nginx",
                Some("latest"),
                None,
                false,
            ),
            (
                "library/nginx",
                "docker.io",
                "library/nginx",
                None,
                None,
                false,
            ),
            (
                "docker.io/nginx",
                "docker.io",
                "library/nginx",
                None,
                None,
                true,
            ),
            (
                "docker.io/library/nginx",
                "docker.io",
                "library/nginx",
                None,
                None,
                true,
            ),
            (
                "index.docker.io/nginx",
                "docker.io",
                "library/nginx",
                None,
                None,
                true,
            ),
            (
                "index.docker.io/library/nginx:1",
                "docker.io",
                "library/nginx",
                Some("1"),
                None,
                true,
            ),
            (
                "bitnami/redis:7.2",
                "docker.io",
                "bitnami/redis",
                Some("7.2"),
                None,
                false,
            ),
            (
                "docker.io/bitnami/redis",
                "docker.io",
                "bitnami/redis",
                None,
                None,
                true,
            ),
            (
                "docker/docker",
                "docker.io",
                "docker/docker",
                None,
                None,
                false,
            ),
            (
                "library/debian",
                "docker.io",
                "library/debian",
                None,
                None,
                false,
            ),
            ("debian", "docker.io", "library/debian", None, None, false),
            (
                "docker.io/docker/docker",
                "docker.io",
                "docker/docker",
                None,
                None,
                true,
            ),
            (
                "docker.io/debian",
                "docker.io",
                "library/debian",
                None,
                None,
                true,
            ),
            (
                "index.docker.io/docker/docker",
                "docker.io",
                "docker/docker",
                None,
                None,
                true,
            ),
            (
                "index.docker.io/debian",
                "docker.io",
                "library/debian",
                None,
                None,
                true,
            ),
            ("fooo/bar", "docker.io", "fooo/bar", None, None, false),
            (
                "index.docker.io/fooo/bar",
                "docker.io",
                "fooo/bar",
                None,
                None,
                true,
            ),
            (
                "nonlibrary/ubuntu",
                "docker.io",
                "nonlibrary/ubuntu",
                None,
                None,
                false,
            ),
            (
                "other/library",
                "docker.io",
                "other/library",
                None,
                None,
                false,
            ),
            (
                "ubuntu-12.04-base",
                "docker.io",
                "library/ubuntu-12.04-base",
                None,
                None,
                false,
            ),
            (
                "library/foo/bar",
                "docker.io",
                "library/foo/bar",
                None,
                None,
                false,
            ),
            (
                "store/foo/bar",
                "docker.io",
                "store/foo/bar",
                None,
                None,
                false,
            ),
            (
                "docker.io/library/foo/bar",
                "docker.io",
                "library/foo/bar",
                None,
                None,
                true,
            ),
            (
                "dmcgowan/myapp:latest",
                "docker.io",
                "dmcgowan/myapp",
                Some("latest"),
                None,
                false,
            ),
            (
                "docker.io/mcgowan/myapp:latest",
                "docker.io",
                "mcgowan/myapp",
                Some("latest"),
                None,
                true,
            ),
            (
                "test_com/foo",
                "docker.io",
                "test_com/foo",
                None,
                None,
                false,
            ),
            (
                "docker/migrator",
                "docker.io",
                "docker/migrator",
                None,
                None,
                false,
            ),
            ("dbcc1", "docker.io", "library/dbcc1", None, None, false),
            // 63 hex characters is a name, not an image ID.
            (
                "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                "docker.io",
                "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                None,
                None,
                false,
            ),
            (
                "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                "docker.io",
                "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                None,
                None,
                true,
            ),
            (
                "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                "docker.io",
                "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
                None,
                None,
                false,
            ),
            // Separators.
            (
                "docker-rules/docker",
                "docker.io",
                "docker-rules/docker",
                None,
                None,
                false,
            ),
            (
                "docker---rules/docker",
                "docker.io",
                "docker---rules/docker",
                None,
                None,
                false,
            ),
            ("doc/docker", "docker.io", "doc/docker", None, None, false),
            ("d/docker", "docker.io", "d/docker", None, None, false),
            ("jess/t", "docker.io", "jess/t", None, None, false),
            (
                "dock__er/docker",
                "docker.io",
                "dock__er/docker",
                None,
                None,
                false,
            ),
            ("b_c__d-e--f.g/h", "b_c__d-e--f.g", "h", None, None, true),
            (
                "b_c__d-e--f/g",
                "docker.io",
                "b_c__d-e--f/g",
                None,
                None,
                false,
            ),
            // Single-component names are always Docker Hub, even when they look like hosts.
            (
                "test_com",
                "docker.io",
                "library/test_com",
                None,
                None,
                false,
            ),
            (
                "test.com:tag",
                "docker.io",
                "library/test.com",
                Some("tag"),
                None,
                false,
            ),
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
                None,
                false,
            ),
            (
                "localhost",
                "docker.io",
                "library/localhost",
                None,
                None,
                false,
            ),
            (
                "localhost:5000",
                "docker.io",
                "library/localhost",
                Some("5000"),
                None,
                false,
            ),
            (
                "example.com",
                "docker.io",
                "library/example.com",
                None,
                None,
                false,
            ),
            (
                "foo_bar.com:8080",
                "docker.io",
                "library/foo_bar.com",
                Some("8080"),
                None,
                false,
            ),
            (
                "192.168.1.1",
                "docker.io",
                "library/192.168.1.1",
                None,
                None,
                false,
            ),
            (
                "192.168.1.1:tag",
                "docker.io",
                "library/192.168.1.1",
                Some("tag"),
                None,
                false,
            ),
            (
                "192.168.1.1:5000",
                "docker.io",
                "library/192.168.1.1",
                Some("5000"),
                None,
                false,
            ),
            (
                "192.168.0.1:80",
                "docker.io",
                "library/192.168.0.1",
                Some("80"),
                None,
                false,
            ),
            // Other registries.
            (
                "foo/foo_bar.com:8080",
                "docker.io",
                "foo/foo_bar.com",
                Some("8080"),
                None,
                false,
            ),
            (
                "test.com/repo:tag",
                "test.com",
                "repo",
                Some("tag"),
                None,
                true,
            ),
            ("test:5000/repo", "test:5000", "repo", None, None, true),
            (
                "test:5000/repo:tag",
                "test:5000",
                "repo",
                Some("tag"),
                None,
                true,
            ),
            (
                "test-com:8080/foo",
                "test-com:8080",
                "foo",
                None,
                None,
                true,
            ),
            (
                "test.com:8080/foo",
                "test.com:8080",
                "foo",
                None,
                None,
                true,
            ),
            ("localhost/app", "localhost", "app", None, None, true),
            (
                "localhost:5000/app",
                "localhost:5000",
                "app",
                None,
                None,
                true,
            ),
            (
                "localhost:5000/app:v1",
                "localhost:5000",
                "app",
                Some("v1"),
                None,
                true,
            ),
            (
                "myregistry.io/app",
                "myregistry.io",
                "app",
                None,
                None,
                true,
            ),
            (
                "myregistry.io.evil.com/app",
                "myregistry.io.evil.com",
                "app",
                None,
                None,
                true,
            ),
            (
                "myregistry.io-evil/app",
                "myregistry.io-evil",
                "app",
                None,
                None,
                true,
            ),
            (
                "myregistry-evil/app",
                "docker.io",
                "myregistry-evil/app",
                None,
                None,
                false,
            ),
            (
                "docker.io/mycompanyevil/app",
                "docker.io",
                "mycompanyevil/app",
                None,
                None,
                true,
            ),
            (
                "registry-1.docker.io/library/nginx",
                "registry-1.docker.io",
                "library/nginx",
                None,
                None,
                true,
            ),
            (
                "ghcr.io/owner/app:sha-abc",
                "ghcr.io",
                "owner/app",
                Some("sha-abc"),
                None,
                true,
            ),
            (
                "quay.io/coreos/etcd:v3.5.0",
                "quay.io",
                "coreos/etcd",
                Some("v3.5.0"),
                None,
                true,
            ),
            (
                "gcr.io/google-containers/pause:3.9",
                "gcr.io",
                "google-containers/pause",
                Some("3.9"),
                None,
                true,
            ),
            (
                "registry.k8s.io/pause",
                "registry.k8s.io",
                "pause",
                None,
                None,
                true,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com",
                "bar/baz/quux",
                None,
                None,
                true,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
                "sub-dom1.foo.com",
                "bar/baz/quux",
                Some("some-long-tag"),
                None,
                true,
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
                None,
                true,
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com",
                "myimage",
                Some("xn--n3h.com"),
                None,
                true,
            ),
            (
                "xn--n3h.com:18080/foo",
                "xn--n3h.com:18080",
                "foo",
                None,
                None,
                true,
            ),
            ("192.168.1.1/repo", "192.168.1.1", "repo", None, None, true),
            (
                "192.168.1.1:5000/repo",
                "192.168.1.1:5000",
                "repo",
                None,
                None,
                true,
            ),
            (
                "192.168.1.1:5000/repo:5050",
                "192.168.1.1:5000",
                "repo",
                Some("5050"),
                None,
                true,
            ),
            (
                "192.168.0.1:8/debian",
                "192.168.0.1:8",
                "debian",
                None,
                None,
                true,
            ),
            (
                "127.0.0.1:5000/docker/docker",
                "127.0.0.1:5000",
                "docker/docker",
                None,
                None,
                true,
            ),
            (
                "127.0.0.1:5000/debian",
                "127.0.0.1:5000",
                "debian",
                None,
                None,
                true,
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000",
                "privatebase",
                None,
                None,
                true,
            ),
            (
                "example.com:8000/private/moonbase",
                "example.com:8000",
                "private/moonbase",
                None,
                None,
                true,
            ),
            // Registries are not made lowercase: an uppercase first component is a host.
            ("Foo/bar", "Foo", "bar", None, None, true),
            ("FOO/bar", "FOO", "bar", None, None, true),
            ("Docker/docker", "Docker", "docker", None, None, true),
            ("LOCALHOST/app", "LOCALHOST", "app", None, None, true),
            ("Docker.io/app", "Docker.io", "app", None, None, true),
            // distribution quirk: not a host name, but the whole name is a valid path.
            ("a_b.com/foo", "a_b.com", "foo", None, None, true),
            // IPv6.
            (
                "[2001:db8::1]/repo",
                "[2001:db8::1]",
                "repo",
                None,
                None,
                true,
            ),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag",
                "[2001:db8:1:2:3:4:5:6]",
                "repo",
                Some("tag"),
                None,
                true,
            ),
            (
                "[2001:db8::1]:5000/repo",
                "[2001:db8::1]:5000",
                "repo",
                None,
                None,
                true,
            ),
            (
                "[2001:db8::1]:5000/repo:tag",
                "[2001:db8::1]:5000",
                "repo",
                Some("tag"),
                None,
                true,
            ),
            (
                "[2001:db8::]:5000/repo",
                "[2001:db8::]:5000",
                "repo",
                None,
                None,
                true,
            ),
            ("[::1]:5000/repo", "[::1]:5000", "repo", None, None, true),
            (
                "[fc00::1]:5000/docker/docker",
                "[fc00::1]:5000",
                "docker/docker",
                None,
                None,
                true,
            ),
            (
                "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
                "[fc00:1:2:3:4:5:6:7]:5000",
                "library/debian",
                None,
                None,
                true,
            ),
            // Tags.
            (
                "lowercase:Uppercase",
                "docker.io",
                "library/lowercase",
                Some("Uppercase"),
                None,
                false,
            ),
            (
                "nginx:_underscore",
                "docker.io",
                "library/nginx",
                Some("_underscore"),
                None,
                false,
            ),
            (
                "nginx:1.2.3-alpine_x",
                "docker.io",
                "library/nginx",
                Some("1.2.3-alpine_x"),
                None,
                false,
            ),
        ];
        let mut cases: Vec<_> = fixed
            .into_iter()
            .map(|(i, r, p, t, d, w)| {
                (i.to_string(), r, p.to_string(), t.map(str::to_string), d, w)
            })
            .collect();
        let digest_cases: Vec<(
            String,
            &'static str,
            &'static str,
            Option<&'static str>,
            &'static str,
            bool,
        )> = vec![
            (
                format!("test:5000/repo@{SHA256}"),
                "test:5000",
                "repo",
                None,
                SHA256,
                true,
            ),
            (
                format!("test:5000/repo:tag@{SHA256}"),
                "test:5000",
                "repo",
                Some("tag"),
                SHA256,
                true,
            ),
            (
                format!("[2001:db8::1]:5000/repo@{SHA256}"),
                "[2001:db8::1]:5000",
                "repo",
                None,
                SHA256,
                true,
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@{SHA256}"),
                "[2001:db8::1]:5000",
                "repo",
                Some("tag"),
                SHA256,
                true,
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}"),
                "xn--7o8h.com",
                "myimage",
                Some("xn--7o8h.com"),
                SHA512,
                true,
            ),
            (
                format!("redis@{SHA256_B}"),
                "docker.io",
                "library/redis",
                None,
                SHA256_B,
                false,
            ),
            (
                format!("docker.io/dmcgowan/myapp@{SHA256_B}"),
                "docker.io",
                "dmcgowan/myapp",
                None,
                SHA256_B,
                true,
            ),
            (
                format!("busybox:latest@{SHA256_B}"),
                "docker.io",
                "library/busybox",
                Some("latest"),
                SHA256_B,
                false,
            ),
            (
                format!("image:tag@{SHA256}"),
                "docker.io",
                "library/image",
                Some("tag"),
                SHA256,
                false,
            ),
            (
                format!("quay.io/a/b@{SHA384}"),
                "quay.io",
                "a/b",
                None,
                SHA384,
                true,
            ),
        ];
        cases.extend(
            digest_cases
                .into_iter()
                .map(|(i, r, p, t, d, w)| (i, r, p.to_string(), t.map(str::to_string), Some(d), w)),
        );
        // The 255-character limit applies to the path only (distribution/reference v0.6).
        let path_255 = format!("{}a", "a/".repeat(127));
        cases.push((
            format!("a.com/{path_255}:tag-puts-this-over-max"),
            "a.com",
            path_255.clone(),
            Some("tag-puts-this-over-max".to_string()),
            None,
            true,
        ));
        let tag_128 = "t".repeat(128);
        cases.push((
            format!("nginx:{tag_128}"),
            "docker.io",
            "library/nginx".into(),
            Some(tag_128),
            None,
            false,
        ));
        cases
    }

    fn invalid_cases() -> Vec<(String, ReferenceErrorKind)> {
        let fixed: Vec<(&str, ReferenceErrorKind)> = vec![
            ("", K::Empty),
            (":justtag", K::InvalidFormat),
            ("@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", K::InvalidFormat),
            ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", K::InvalidFormat),
            ("sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", K::InvalidFormat),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff", K::InvalidDigest),
            ("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", K::InvalidDigest),
            ("nginx@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", K::InvalidDigest),
            ("nginx@sha256:abc", K::InvalidDigest),
            ("nginx@sha256:gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg", K::InvalidDigest),
            ("nginx@md5:ffffffffffffffffffffffffffffffff", K::InvalidDigest),
            ("nginx@sha256", K::InvalidDigest),
            ("nginx@", K::InvalidDigest),
            ("nginx@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff@x", K::InvalidDigest),
            ("Uppercase:tag", K::UppercaseRepository),
            ("Nginx", K::UppercaseRepository),
            ("test:5000/Uppercase/lowercase:tag", K::UppercaseRepository),
            ("docker/Docker", K::UppercaseRepository),
            ("docker.io/docker/Docker", K::UppercaseRepository),
            ("myregistry.io/Team/app", K::UppercaseRepository),
            ("aa/asdf$$^/aa", K::InvalidPath),
            ("-docker", K::InvalidPath),
            ("-docker/docker", K::InvalidPath),
            ("docker-/docker", K::InvalidPath),
            ("-docker-/docker", K::InvalidPath),
            ("____/____", K::InvalidPath),
            ("_docker/_docker", K::InvalidPath),
            ("dock..er/docker", K::InvalidDomain),
            ("dock_.er/docker", K::InvalidDomain),
            ("dock-.er/docker", K::InvalidDomain),
            ("dock___er/docker", K::InvalidPath),
            ("dock..er", K::InvalidPath),
            ("docker/", K::InvalidPath),
            ("docker///docker", K::InvalidPath),
            ("docker.io/docker///docker", K::InvalidPath),
            ("foo.com/", K::InvalidFormat),
            ("nginx ", K::InvalidPath),
            (" nginx", K::InvalidPath),
            ("nginx\n", K::InvalidPath),
            ("ngïnx", K::InvalidPath),
            ("-docker.io/docker/docker", K::InvalidDomain),
            ("https://github.com/docker/docker", K::InvalidDomain),
            ("[2001:db8::1]", K::InvalidPath),
            ("[2001:db8::1]:5000", K::InvalidPath),
            ("[2001:db8::1]:tag", K::InvalidPath),
            ("[fc00::1]", K::InvalidPath),
            ("[fe80::1%eth0]:5000/repo", K::InvalidDomain),
            ("[fe80::1%@invalidzone]:5000/repo", K::InvalidDomain),
            ("fc00::1:5000/debian", K::InvalidDomain),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian", K::InvalidDomain),
            ("[]:5000/app", K::InvalidDomain),
            ("foo.com:/app", K::InvalidDomain),
            ("foo.com:50a/app", K::InvalidDomain),
            ("foo..com/app", K::InvalidDomain),
            ("foo.com:5000:6000/app", K::InvalidDomain),
            ("Foo_bar/baz", K::InvalidDomain),
            ("nginx:", K::InvalidTag),
            ("nginx:-dash", K::InvalidTag),
            ("nginx:.dot", K::InvalidTag),
            ("nginx:a:b", K::InvalidTag),
            ("nginx:tag/x", K::InvalidDomain),
            ("nginx:ta+g", K::InvalidTag),
            ("a/b:5000/c", K::InvalidTag),
            ("${IMAGE}", K::UnrenderedTemplate),
            ("nginx:${TAG}", K::UnrenderedTemplate),
            ("registry.io/app:{{ .Values.tag }}", K::UnrenderedTemplate),
            ("{{ .Values.image }}", K::UnrenderedTemplate),
            ("registry.io/$(APP):1", K::UnrenderedTemplate),
        ];
        let mut cases: Vec<_> = fixed.into_iter().map(|(i, k)| (i.to_string(), k)).collect();
        cases.push((format!("{}a:tag", "a/".repeat(128)), K::NameTooLong));
        cases.push((format!("a.com/{}a", "a/".repeat(128)), K::NameTooLong));
        cases.push(("x".repeat(250), K::NameTooLong)); // "library/" + 250 > 255
        cases.push((format!("nginx:{}", "t".repeat(129)), K::InvalidTag));
        cases.push((
            "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker".to_string(),
            K::NameTooLong,
        ));
        cases
    }

    #[test]
    fn valid_references_normalise_like_the_runtime() {
        let cases = valid_cases();
        for (input, registry, repository, tag, digest, written) in &cases {
            let parsed = ImageReference::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            let expected = ImageReference {
                registry: registry.to_string(),
                repository: repository.clone(),
                tag: tag.clone(),
                digest: digest.map(str::to_string),
                registry_written: *written,
            };
            assert_eq!(parsed, expected, "input {input:?}");
        }
        assert!(cases.len() >= 100, "{} valid cases", cases.len());
    }

    #[test]
    fn invalid_references_name_the_wrong_part() {
        for (input, kind) in invalid_cases() {
            match ImageReference::parse(&input) {
                Ok(parsed) => panic!("{input:?} should be invalid, parsed as {parsed:?}"),
                Err(err) => assert_eq!(err.kind, kind, "input {input:?}: {err}"),
            }
        }
    }

    #[test]
    fn error_messages_are_one_line_and_name_the_part() {
        let err = ImageReference::parse("Nginx").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid reference "Nginx": repository name must be lowercase"#
        );
        let err = ImageReference::parse("nginx\n").unwrap_err();
        assert!(!err.to_string().contains('\n'));
        let err = ImageReference::parse("nginx@sha256:abc").unwrap_err();
        assert!(err.to_string().contains("digest"), "{err}");
    }

    #[test]
    fn accessors() {
        let r = ImageReference::parse("nginx").unwrap();
        assert_eq!(r.name(), "docker.io/library/nginx");
        assert_eq!(r.normalized(), "docker.io/library/nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx");
        assert!(r.is_docker_hub() && r.is_official_image());
        assert_eq!(r.account(), Some("library"));
        assert_eq!(r.pull_target(), "latest");
        assert_eq!(r.tag, None);

        let r = ImageReference::parse(&format!("image:tag@{SHA256}")).unwrap();
        assert_eq!(r.pull_target(), SHA256);
        assert_eq!(
            r.normalized(),
            format!("docker.io/library/image:tag@{SHA256}")
        );

        let r = ImageReference::parse("registry.io/app:v1").unwrap();
        assert_eq!(r.account(), None);
        assert_eq!(r.pull_target(), "v1");
        assert!(!r.is_docker_hub() && !r.is_official_image());

        let r = ImageReference::parse("docker.io/library/foo/bar").unwrap();
        assert!(r.is_docker_hub() && !r.is_official_image());
        let r = ImageReference::parse("bitnami/redis").unwrap();
        assert!(!r.is_official_image());
        assert_eq!(r.account(), Some("bitnami"));
    }

    #[test]
    fn normalized_form_round_trips() {
        for (input, ..) in valid_cases() {
            let parsed = ImageReference::parse(&input).unwrap();
            let again = ImageReference::parse(&parsed.normalized()).unwrap();
            assert_eq!(again.normalized(), parsed.normalized(), "input {input:?}");
            assert_eq!(
                (
                    &again.registry,
                    &again.repository,
                    &again.tag,
                    &again.digest
                ),
                (
                    &parsed.registry,
                    &parsed.repository,
                    &parsed.tag,
                    &parsed.digest
                )
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn component() -> impl Strategy<Value = String> {
            "[a-z0-9]{1,5}([._-][a-z0-9]{1,5}){0,2}"
        }

        fn reference() -> impl Strategy<Value = String> {
            let registry = prop_oneof![
                Just(String::new()),
                Just("docker.io/".to_string()),
                Just("index.docker.io/".to_string()),
                Just("localhost:5000/".to_string()),
                Just("[::1]:5000/".to_string()),
                "[a-z][a-z0-9-]{0,6}[a-z0-9]\\.[a-z]{2,4}(:[0-9]{1,5})?/",
            ];
            let tag = prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
            let digest = prop::option::of("[a-f0-9]{64}");
            (
                registry,
                prop::collection::vec(component(), 1..4),
                tag,
                digest,
            )
                .prop_map(|(registry, path, tag, digest)| {
                    let mut s = registry + &path.join("/");
                    if let Some(tag) = tag {
                        s.push(':');
                        s.push_str(&tag);
                    }
                    if let Some(hex) = digest {
                        s.push_str("@sha256:");
                        s.push_str(&hex);
                    }
                    s
                })
        }

        proptest! {
            #[test]
            fn never_panics_on_arbitrary_input(s in "\\PC{0,80}") {
                let _ = ImageReference::parse(&s);
            }

            #[test]
            fn never_panics_on_reference_like_input(s in "[a-zA-Z0-9:/@._\\[\\]-]{0,60}") {
                if let Ok(parsed) = ImageReference::parse(&s) {
                    let again = ImageReference::parse(&parsed.normalized());
                    prop_assert_eq!(again.map(|r| r.normalized()), Ok(parsed.normalized()));
                }
            }

            #[test]
            fn generated_references_parse_and_round_trip(s in reference()) {
                let parsed = ImageReference::parse(&s);
                prop_assert!(parsed.is_ok(), "{:?}: {:?}", s, parsed);
                let parsed = parsed.unwrap();
                let again = ImageReference::parse(&parsed.normalized()).unwrap();
                prop_assert_eq!(again.normalized(), parsed.normalized());
                prop_assert!(again.registry_written);
            }
        }
    }
}
