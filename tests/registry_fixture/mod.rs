//! Shared support for registry tests: builds the fixture images once per machine (the build
//! script keeps a stamp) and starts a `docker-registry` once per test binary. The registry is
//! stopped by a watchdog when the test process exits.
#![allow(dead_code)]

use kubectl_image_sec::registry::{
    Credentials, ImageRequest, Inspector, LayerCache, Platform, RegistryClient, RegistryOptions,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const USER: &str = "fixture";
pub const PASSWORD: &str = "fixture-pass";

pub struct Fixture {
    /// `127.0.0.1:PORT`
    pub registry: String,
    pub work: PathBuf,
    pub log: PathBuf,
    pub ca: Option<PathBuf>,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-registry")
}

fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Where the images are built (shared by all test binaries; the script locks and stamps it).
pub fn images_dir() -> PathBuf {
    let dir = tmp_root().join("registry-images");
    let status = Command::new("bash")
        .arg(scripts().join("build-images.sh"))
        .arg(&dir)
        .status()
        .expect("run build-images.sh");
    assert!(status.success(), "build-images.sh failed");
    dir
}

fn start(tls: bool, push: Option<&str>) -> Fixture {
    let images = images_dir();
    let work = tmp_root().join(format!(
        "registry-run-{}-{}",
        std::process::id(),
        if tls { "tls" } else { "http" }
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create registry work dir");
    let mut cmd = Command::new("bash");
    cmd.arg(scripts().join("start-registry.sh"))
        .arg(&images)
        .arg(&work)
        .env("REGISTRY_USER", USER)
        .env("REGISTRY_PASSWORD", PASSWORD)
        .env("WATCH_PID", std::process::id().to_string())
        .env("TLS", if tls { "1" } else { "0" });
    if let Some(p) = push {
        cmd.env("PUSH", p);
    }
    let out = cmd.output().expect("run start-registry.sh");
    assert!(
        out.status.success(),
        "start-registry.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Fixture {
        registry: vars["REGISTRY"].clone(),
        log: PathBuf::from(&vars["LOG"]),
        ca: vars.get("CA").map(PathBuf::from),
        work,
    }
}

/// Plain-HTTP registry with every fixture image (use it as an insecure registry).
pub fn registry() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| start(false, None))
}

/// HTTPS registry (certificate from the throwaway CA in `ca`) with only `test/clean`.
pub fn tls_registry() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| start(true, Some("clean")))
}

impl Fixture {
    pub fn credentials(&self) -> Credentials {
        Credentials::basic(USER, PASSWORD)
    }

    pub fn request(&self, name: &str) -> ImageRequest {
        ImageRequest {
            image: format!("{}/test/{name}:latest", self.registry),
            registry: self.registry.clone(),
            repository: format!("test/{name}"),
            reference: "latest".into(),
            credentials: self.credentials(),
        }
    }

    /// Options treating this registry as insecure (plain HTTP), like `--insecure-registry`.
    pub fn insecure_options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: vec![self.registry.clone()],
            ..Default::default()
        }
    }

    pub fn inspector(&self, cache_dir: Option<PathBuf>, platform: &str) -> Inspector {
        let client = RegistryClient::new(&self.insecure_options()).expect("client");
        Inspector::new(
            client,
            LayerCache::new(cache_dir),
            Platform::parse(platform).expect("platform"),
        )
    }

    /// Number of access-log lines (`"GET /v2/... HTTP/1.1" 200 ...`) containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("127.0.0.1 - ") && l.contains(needle))
            .count()
    }
}

/// `(category, path)` pairs of an inspection's findings.
pub fn findings(i: &kubectl_image_sec::registry::ImageInspection) -> Vec<(String, String)> {
    i.findings
        .iter()
        .map(|f| (f.category.as_str().to_string(), f.path.clone()))
        .collect()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}
