//! Manifests (Docker v2 schema 2, OCI image manifest), indexes (Docker manifest list, OCI
//! index), image config, and platform selection.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `Accept` header for manifest requests: every type we can read.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]` (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected OS/ARCH[/VARIANT]");
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: normalize_arch(&parts[1].to_ascii_lowercase()).to_string(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// The contract's default, `linux/amd64`.
    pub fn linux_amd64() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Does an index entry's platform satisfy this requested one? Architectures are compared
    /// after normalising aliases; a requested variant must match (arm64 treats `v8` and none
    /// alike); with no requested variant any variant matches.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os.to_ascii_lowercase()
            || self.architecture != normalize_arch(&candidate.architecture.to_ascii_lowercase())
        {
            return false;
        }
        match (&self.variant, &candidate.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Either kind of manifest document, decoded leniently and classified by content.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ImageIndex {
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Decode a manifest body. `content_type` is the response header (may be empty); the body's own
/// `mediaType` wins when present. Schema 1 is refused with a clear message.
pub fn parse_manifest(content_type: &str, body: &[u8]) -> Result<Manifest, String> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let mt = raw
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| ct.to_string());
    if raw.schema_version == Some(1) || mt.contains("manifest.v1+") && mt.contains("docker") {
        return Err("Docker schema 1 manifests are not supported".into());
    }
    let is_index = mt == MT_DOCKER_LIST || mt == MT_OCI_INDEX || raw.manifests.is_some();
    if is_index {
        return Ok(Manifest::Index(ImageIndex {
            media_type: if mt.is_empty() {
                MT_OCI_INDEX.into()
            } else {
                mt
            },
            manifests: raw.manifests.unwrap_or_default(),
            annotations: raw.annotations,
        }));
    }
    match (raw.config, raw.layers) {
        (Some(config), Some(layers)) => Ok(Manifest::Image(ImageManifest {
            media_type: if mt.is_empty() {
                MT_OCI_MANIFEST.into()
            } else {
                mt
            },
            config,
            layers,
            annotations: raw.annotations,
        })),
        _ => Err(format!(
            "unsupported manifest (media type {mt:?}): no config or layers"
        )),
    }
}

/// Pick the index entry for `want`. Entries without a platform or with `unknown/unknown`
/// (attestation manifests) are skipped. Exact variant matches beat variant-less ones.
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .collect();
    candidates
        .iter()
        .find(|d| d.platform.as_ref().and_then(|p| p.variant.as_deref()) == want.variant.as_deref())
        .or_else(|| candidates.first())
        .copied()
}

/// Platforms listed by an index, for error messages.
pub fn available_platforms(index: &ImageIndex) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| p.to_string())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The parts of the image config (OCI image spec `config` / Docker container config) we report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> ImageIndex {
        let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"amd64"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v6"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cc","size":1,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:dd","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ee","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        match parse_manifest("", body.as_bytes()).unwrap() {
            Manifest::Index(i) => i,
            _ => panic!("not an index"),
        }
    }

    #[test]
    fn platform_parse() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().architecture,
            "arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().variant.as_deref(),
            Some("v7")
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//").is_err());
    }

    #[test]
    fn selects_platforms() {
        let i = idx();
        let pick =
            |s: &str| select_platform(&i, &Platform::parse(s).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").as_deref(), Some("sha256:aa"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("sha256:cc"));
        assert_eq!(pick("linux/arm64").as_deref(), Some("sha256:dd"));
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("sha256:dd"));
        assert_eq!(pick("windows/amd64"), None);
        assert_eq!(
            available_platforms(&i),
            "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8"
        );
    }

    #[test]
    fn parses_docker_manifest_and_refuses_schema1() {
        let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":7},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:l","size":9}]}"#;
        match parse_manifest("", body.as_bytes()).unwrap() {
            Manifest::Image(m) => {
                assert_eq!(m.media_type, MT_DOCKER_MANIFEST);
                assert_eq!(m.layers.len(), 1);
            }
            _ => panic!(),
        }
        assert!(parse_manifest("", br#"{"schemaVersion":1,"fsLayers":[]}"#).is_err());
        assert!(parse_manifest("", b"nope").is_err());
    }

    #[test]
    fn parses_config() {
        let c: ImageConfig = serde_json::from_str(r#"{"created":"2024-01-02T03:04:05Z","architecture":"amd64","os":"linux",
          "config":{"User":"1000","Entrypoint":["/app"],"Env":["PATH=/bin"],"Labels":{"a":"b"}},
          "rootfs":{"type":"layers","diff_ids":["sha256:x"]},"history":[{"created_by":"x","empty_layer":true}]}"#).unwrap();
        assert_eq!(c.config.user.as_deref(), Some("1000"));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert!(c.history[0].empty_layer);
    }
}
