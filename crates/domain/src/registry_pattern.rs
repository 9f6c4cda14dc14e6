//! Registry patterns for policies (`allowedRegistries`, `deniedRegistries`, ...).
//!
//! A pattern is `host[:port][/path]` where host is either exact (`registry.io`, `localhost`,
//! `10.0.0.1`, `[::1]`) or `*.` followed by a domain (`*.example.com`). Matching is on the
//! *normalised* reference, never on the raw string:
//! - an exact host matches the image's registry exactly, port included (`registry.io` does not match
//!   `registry.io:5000`); `docker.io` matches `nginx`, `library/nginx` and `index.docker.io/x`, and a
//!   pattern written `index.docker.io` means `docker.io`;
//! - `*.example.com` matches one or more whole leading labels (`a.example.com`,
//!   `a.b.example.com`) but **not** `example.com` itself: write both patterns to allow both;
//! - a path matches on `/` boundaries: `registry.io/team` matches `registry.io/team` and
//!   `registry.io/team/app`, not `registry.io/teamevil/app`. Docker Hub paths are normalised, so
//!   official images are under `docker.io/library`.
//!
//! Host names compare ASCII-case-insensitively (DNS does), so `EVIL.com/x` cannot slip past a
//! `evil.com` rule; patterns themselves must be written in lowercase.

use std::fmt;

use super::reference::{
    is_domain_component, is_path_component, split_host_port, ImageReference, DOCKER_HUB_REGISTRY,
    LEGACY_DOCKER_HUB_REGISTRY,
};

/// A parsed registry pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryPattern {
    text: String,
    host: HostPattern,
    port: Option<String>,
    /// Path prefix without leading or trailing `/`.
    path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`: the suffix without `*.`.
    AnySubdomainOf(String),
}

/// What is wrong with a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternErrorKind {
    Empty,
    SchemeGiven,
    Uppercase,
    InvalidHost,
    InvalidWildcard,
    InvalidPort,
    InvalidPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub kind: PatternErrorKind,
    pub pattern: String,
    pub detail: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid registry pattern {:?}: {}",
            self.pattern, self.detail
        )
    }
}

impl std::error::Error for PatternError {}

impl RegistryPattern {
    pub fn parse(text: &str) -> Result<RegistryPattern, PatternError> {
        use PatternErrorKind as K;
        let error = |kind, detail: &str| PatternError {
            kind,
            pattern: text.to_string(),
            detail: detail.to_string(),
        };
        if text.is_empty() {
            return Err(error(K::Empty, "pattern is empty"));
        }
        if text.contains("://") {
            return Err(error(
                K::SchemeGiven,
                "give a registry host, not a URL (remove the scheme)",
            ));
        }
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(error(K::Uppercase, "patterns must be lowercase"));
        }
        let (host_and_port, path) = match text.split_once('/') {
            Some((host, path)) => (host, Some(path)),
            None => (text, None),
        };
        let (host, port) = split_host_port(host_and_port);
        if let Some(port) = port {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error(K::InvalidPort, "port must be digits"));
            }
        }
        let host = parse_host(host).map_err(|(kind, detail)| error(kind, detail))?;
        let path = match path {
            None => None,
            Some(path) => Some(parse_path(path).map_err(|detail| error(K::InvalidPath, detail))?),
        };
        Ok(RegistryPattern {
            text: text.to_string(),
            host,
            port: port.map(str::to_string),
            path,
        })
    }

    /// Whether the image's normalised registry and repository fall under this pattern.
    pub fn matches(&self, image: &ImageReference) -> bool {
        self.matches_registry(&image.registry) && self.matches_path(&image.repository)
    }

    /// Whether a registry `host[:port]` matches the host part of this pattern (its path, if any, is
    /// not considered).
    pub fn matches_registry(&self, registry: &str) -> bool {
        let registry = if registry.eq_ignore_ascii_case(LEGACY_DOCKER_HUB_REGISTRY) {
            DOCKER_HUB_REGISTRY
        } else {
            registry
        };
        let (host, port) = split_host_port(registry);
        if port != self.port.as_deref() {
            return false;
        }
        match &self.host {
            HostPattern::Exact(exact) => host.eq_ignore_ascii_case(exact),
            HostPattern::AnySubdomainOf(suffix) => is_strict_subdomain(host, suffix),
        }
    }

    /// Whether this pattern has a path part.
    pub fn has_path(&self) -> bool {
        self.path.is_some()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches_path(&self, repository: &str) -> bool {
        match &self.path {
            None => true,
            Some(prefix) => {
                repository == prefix
                    || repository
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

/// `host` ends with `.suffix` (so at least one whole label precedes it), ignoring ASCII case.
fn is_strict_subdomain(host: &str, suffix: &str) -> bool {
    let Some(split) = host.len().checked_sub(suffix.len() + 1) else {
        return false;
    };
    split > 0
        && host.is_char_boundary(split)
        && host[split..].starts_with('.')
        && host[split + 1..].eq_ignore_ascii_case(suffix)
}

fn parse_host(host: &str) -> Result<HostPattern, (PatternErrorKind, &'static str)> {
    use PatternErrorKind as K;
    if host.is_empty() {
        return Err((K::InvalidHost, "registry host is empty"));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err((K::InvalidWildcard, "`*` may only be the whole first label"));
        }
        if !is_domain_name(suffix) {
            return Err((K::InvalidHost, "after `*.` must come a domain name"));
        }
        return Ok(HostPattern::AnySubdomainOf(suffix.to_string()));
    }
    if host.contains('*') {
        return Err((
            K::InvalidWildcard,
            "`*` may only be the whole first label, as in `*.example.com`",
        ));
    }
    let is_ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|inner| {
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
        });
    if !is_ipv6 && !is_domain_name(host) {
        return Err((
            K::InvalidHost,
            "registry host must be labels of [a-z0-9-] separated by dots (no empty label, no `-` at a label's ends)",
        ));
    }
    let host = if host == LEGACY_DOCKER_HUB_REGISTRY {
        DOCKER_HUB_REGISTRY
    } else {
        host
    };
    Ok(HostPattern::Exact(host.to_string()))
}

fn is_domain_name(name: &str) -> bool {
    name.split('.').all(is_domain_component)
}

fn parse_path(path: &str) -> Result<String, &'static str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Err("path after the host is empty");
    }
    if !path.split('/').all(is_path_component) {
        return Err("path components must be [a-z0-9] joined by '.', '_', '__' or dashes, separated by single '/'");
    }
    Ok(path.to_string())
}

impl fmt::Display for RegistryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for RegistryPattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegistryPattern::parse(s)
    }
}

impl serde::Serialize for RegistryPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for RegistryPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RegistryPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PatternErrorKind as K;

    fn image(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matching_table() {
        let cases = [
            // Exact hosts, on the normalised reference.
            ("docker.io", "nginx", true),
            ("docker.io", "library/nginx:1", true),
            ("docker.io", "index.docker.io/nginx", true),
            ("docker.io", "bitnami/redis", true),
            ("index.docker.io", "nginx", true),
            ("docker.io", "registry-1.docker.io/library/nginx", false),
            ("docker.io", "docker.io.evil.com/app", false),
            ("myregistry.io", "myregistry.io/app", true),
            ("myregistry.io", "MyRegistry.IO/app", true),
            ("myregistry.io", "myregistry.io.evil.com/app", false),
            ("myregistry.io", "myregistry.io-evil/app", false),
            ("myregistry.io", "evilmyregistry.io/app", false),
            ("myregistry.io", "myregistry.io:5000/app", false),
            ("myregistry.io", "myregistry/app", false),
            ("localhost:5000", "localhost:5000/app", true),
            ("localhost:5000", "localhost/app", false),
            ("localhost:5000", "localhost:50000/app", false),
            ("localhost", "localhost/app", true),
            ("localhost", "localhost:5000/app", false),
            ("[::1]:5000", "[::1]:5000/app", true),
            ("10.0.0.1:5000", "10.0.0.1:5000/app", true),
            // Wildcards: one or more whole leading labels, never the bare domain.
            ("*.example.com", "a.example.com/app", true),
            ("*.example.com", "a.b.example.com/app", true),
            ("*.example.com", "A.Example.COM/app", true),
            ("*.example.com", "example.com/app", false),
            ("*.example.com", "badexample.com/app", false),
            ("*.example.com", "a.example.com.evil.io/app", false),
            ("*.example.com", "a.example.com:5000/app", false),
            ("*.example.com:5000", "a.example.com:5000/app", true),
            ("*.example.com:5000", "a.example.com/app", false),
            // Paths on `/` boundaries.
            ("registry.io/team", "registry.io/team/app", true),
            ("registry.io/team", "registry.io/team", true),
            ("registry.io/team/", "registry.io/team/app", true),
            ("registry.io/team", "registry.io/teamevil/app", false),
            ("registry.io/team", "registry.io/other/team", false),
            ("registry.io/team/app", "registry.io/team/app:1", true),
            ("docker.io/mycompany", "mycompany/app", true),
            ("docker.io/mycompany", "docker.io/mycompany/app", true),
            ("docker.io/mycompany", "docker.io/mycompanyevil/app", false),
            ("docker.io/mycompany", "mycompanyevil/app", false),
            ("docker.io/library", "nginx", true),
            ("docker.io/nginx", "nginx", false), // official images live under library/
            ("*.example.com/team", "a.example.com/team/x", true),
            ("*.example.com/team", "a.example.com/teams/x", false),
        ];
        for (pattern, reference, expected) in cases {
            let parsed = RegistryPattern::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                parsed.matches(&image(reference)),
                expected,
                "{pattern} vs {reference}"
            );
        }
    }

    #[test]
    fn matches_registry_ignores_the_path() {
        let pattern = RegistryPattern::parse("registry.io/team").unwrap();
        assert!(pattern.matches_registry("registry.io"));
        assert!(pattern.has_path());
        let docker_hub = RegistryPattern::parse("docker.io").unwrap();
        assert!(docker_hub.matches_registry("index.docker.io"));
        assert!(!docker_hub.matches_registry("docker.io:443"));
        assert!(!RegistryPattern::parse("*.io")
            .unwrap()
            .matches_registry("io"));
    }

    #[test]
    fn invalid_patterns() {
        let cases = [
            ("", K::Empty),
            ("https://registry.io", K::SchemeGiven),
            ("Registry.io", K::Uppercase),
            ("registry..io", K::InvalidHost),
            (".registry.io", K::InvalidHost),
            ("registry.io.", K::InvalidHost),
            ("-registry.io", K::InvalidHost),
            ("registry-.io", K::InvalidHost),
            ("reg_istry.io", K::InvalidHost),
            ("registry io", K::InvalidHost),
            ("/team", K::InvalidHost),
            ("*", K::InvalidWildcard),
            ("*example.com", K::InvalidWildcard),
            ("a.*.com", K::InvalidWildcard),
            ("*.*.com", K::InvalidWildcard),
            ("registry.*", K::InvalidWildcard),
            ("*.", K::InvalidHost),
            ("registry.io:", K::InvalidPort),
            ("registry.io:http", K::InvalidPort),
            ("registry.io:5000:1", K::InvalidPort),
            ("registry.io/", K::InvalidPath),
            ("registry.io//team", K::InvalidPath),
            ("registry.io/team//app", K::InvalidPath),
            ("registry.io/te*m", K::InvalidPath),
            ("registry.io/team:tag", K::InvalidPath),
            ("[::1", K::InvalidHost),
            ("[]", K::InvalidHost),
        ];
        for (pattern, kind) in cases {
            match RegistryPattern::parse(pattern) {
                Ok(parsed) => panic!("{pattern:?} should be invalid: {parsed:?}"),
                Err(err) => {
                    assert_eq!(err.kind, kind, "{pattern:?}: {err}");
                    assert!(err.to_string().starts_with("invalid registry pattern"));
                }
            }
        }
    }

    #[test]
    fn display_and_serde_keep_the_text() {
        let pattern = RegistryPattern::parse("index.docker.io/library").unwrap();
        assert_eq!(pattern.to_string(), "index.docker.io/library");
        let json = serde_json::to_string(&pattern).unwrap();
        assert_eq!(json, r#""index.docker.io/library""#);
        let back: RegistryPattern = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pattern);
        let err = serde_json::from_str::<RegistryPattern>(r#""HTTPS://x""#).unwrap_err();
        assert!(
            err.to_string().contains("invalid registry pattern"),
            "{err}"
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_and_match_never_panic(pattern in "\\PC{0,30}", registry in "\\PC{0,20}") {
                if let Ok(parsed) = RegistryPattern::parse(&pattern) {
                    let _ = parsed.matches_registry(&registry);
                    prop_assert_eq!(parsed.to_string(), pattern);
                }
            }

            #[test]
            fn exact_host_never_matches_a_longer_host(
                host in "[a-z][a-z0-9]{0,6}\\.[a-z]{2,3}",
                extra in "[a-z0-9.-]{1,8}",
            ) {
                let pattern = RegistryPattern::parse(&host).unwrap();
                let longer = format!("{host}{extra}");
                prop_assert!(!pattern.matches_registry(&longer));
                let prefixed = format!("{extra}{host}");
                prop_assert!(!pattern.matches_registry(&prefixed));
            }
        }
    }
}
