//! Inspecting the fixture images from a real `docker-registry` on loopback.
mod registry_fixture;

use kubectl_image_sec::registry::{
    Credentials, ImageRequest, RegistryClient, RegistryError, RegistryOptions,
};
use registry_fixture::{findings, registry, runtime, tls_registry, PASSWORD};
use std::sync::atomic::Ordering;

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn each_fixture_image_gives_exactly_its_categories() {
    let f = registry();
    let cache = tempfile::tempdir().unwrap();
    let insp = f.inspector(Some(cache.path().to_path_buf()), "linux/amd64");
    let names = [
        "clean",
        "shell",
        "apt",
        "curl",
        "vi",
        "whiteout",
        "shell-zstd",
        "apt-docker",
    ];
    let reqs: Vec<ImageRequest> = names.iter().map(|n| f.request(n)).collect();
    let results = runtime().block_on(insp.inspect_many(&reqs, 4));
    assert_eq!(results.len(), names.len());
    let mut got = std::collections::BTreeMap::new();
    for (name, r) in names.iter().zip(results) {
        let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        got.insert(*name, r);
    }
    let shell = pairs(&[
        ("shell", "/bin/ash"),
        ("shell", "/bin/busybox"),
        ("shell", "/bin/sh"),
    ]);
    let apt = pairs(&[
        ("package-manager", "/usr/bin/apt"),
        ("package-manager", "/usr/bin/apt-get"),
        ("package-manager", "/usr/bin/dpkg"),
    ]);
    assert_eq!(findings(&got["clean"]), vec![]);
    assert_eq!(findings(&got["shell"]), shell);
    assert_eq!(findings(&got["shell-zstd"]), shell);
    assert_eq!(findings(&got["apt"]), apt);
    assert_eq!(findings(&got["apt-docker"]), apt);
    assert_eq!(
        findings(&got["curl"]),
        pairs(&[("network-tool", "/usr/bin/curl")])
    );
    assert_eq!(
        findings(&got["vi"]),
        pairs(&[("editor", "/usr/bin/vi"), ("editor", "/usr/bin/vim.basic")])
    );
    // The shells of the first layer were deleted by whiteouts in the second.
    assert_eq!(findings(&got["whiteout"]), vec![]);
    assert_eq!(got["whiteout"].layers.len(), 2);

    // Symlink targets are reported.
    let sh = got["shell"]
        .findings
        .iter()
        .find(|f| f.path == "/bin/sh")
        .unwrap();
    assert_eq!(sh.target.as_deref(), Some("/bin/busybox"));

    // Metadata from the config.
    let clean = &got["clean"];
    assert_eq!(clean.config.config.user.as_deref(), Some("65532"));
    assert_eq!(
        clean.config.config.entrypoint.as_deref(),
        Some(&["/app/server".to_string()][..])
    );
    assert_eq!(
        clean.config.created.as_deref(),
        Some("2024-01-15T10:00:00Z")
    );
    assert_eq!(clean.platform.to_string(), "linux/amd64");
    assert!(clean.digest.starts_with("sha256:"));
    assert!(clean.uncompressed_size() > clean.compressed_size());
    assert_eq!(
        got["apt-docker"].media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        got["apt"].media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn wrong_credentials_are_unauthorized_naming_the_registry() {
    let f = registry();
    let insp = f.inspector(None, "linux/amd64");
    let mut req = f.request("clean");
    req.credentials = Credentials::basic("fixture", "not-the-password");
    let err = runtime().block_on(insp.inspect(&req)).unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("unauthorized"), "{msg}");
    assert!(msg.contains(&f.registry) && msg.contains("401"), "{msg}");
    assert!(!msg.contains("not-the-password") && !format!("{err:?}").contains("not-the-password"));
    assert_eq!(err.cause(), "unauthorized");

    // Anonymous against a registry that requires a login.
    req.credentials = Credentials::Anonymous;
    let err = runtime().block_on(insp.inspect(&req)).unwrap_err();
    assert_eq!(err.cause(), "unauthorized", "{err}");
}

#[test]
fn verify_credentials_against_v2() {
    let f = registry();
    let client = RegistryClient::new(&f.insecure_options()).unwrap();
    let rt = runtime();
    rt.block_on(client.verify_credentials(&f.registry, &Credentials::basic("fixture", PASSWORD)))
        .expect("good credentials verify");
    let err = rt
        .block_on(client.verify_credentials(&f.registry, &Credentials::basic("fixture", "nope")))
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");
}

#[test]
fn multi_arch_index_picks_the_requested_platform() {
    let f = registry();
    let rt = runtime();
    let amd = rt
        .block_on(
            f.inspector(None, "linux/amd64")
                .inspect(&f.request("multi")),
        )
        .unwrap();
    assert!(amd.from_index);
    assert_eq!(amd.platform.to_string(), "linux/amd64");
    assert_eq!(findings(&amd), pairs(&[("network-tool", "/usr/bin/curl")]));
    let arm = rt
        .block_on(
            f.inspector(None, "linux/arm64")
                .inspect(&f.request("multi")),
        )
        .unwrap();
    assert_eq!(arm.platform.to_string(), "linux/arm64/v8");
    assert_eq!(findings(&arm), pairs(&[("network-tool", "/usr/bin/wget")]));
    assert_eq!(
        amd.digest, arm.digest,
        "both resolve through the same index"
    );
    assert_ne!(amd.platform_digest, arm.platform_digest);
    let err = rt
        .block_on(
            f.inspector(None, "linux/s390x")
                .inspect(&f.request("multi")),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
}

#[test]
fn second_inspection_reads_no_layer_again() {
    let f = registry();
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime();
    let needle = "\"GET /v2/test/cache-probe/blobs/";
    let first = f.inspector(Some(cache.path().to_path_buf()), "linux/amd64");
    let a = rt
        .block_on(first.inspect(&f.request("cache-probe")))
        .unwrap();
    assert_eq!(first.stats.layers_downloaded.load(Ordering::Relaxed), 1);
    let blob_gets = f.log_count(needle);
    // A fresh inspector (new process, in effect) with the same cache directory.
    let second = f.inspector(Some(cache.path().to_path_buf()), "linux/amd64");
    let b = rt
        .block_on(second.inspect(&f.request("cache-probe")))
        .unwrap();
    assert_eq!(second.stats.layers_downloaded.load(Ordering::Relaxed), 0);
    assert_eq!(second.stats.layers_from_cache.load(Ordering::Relaxed), 1);
    assert!(b.layers.iter().all(|l| l.from_cache));
    assert_eq!(findings(&a), findings(&b));
    assert_eq!(a.uncompressed_size(), b.uncompressed_size());
    // Only the config blob was fetched again, never the layer.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        f.log_count(needle),
        blob_gets + 1,
        "only the config blob is fetched again"
    );
    let layer = &a.layers[0].digest;
    assert_eq!(
        f.log_count(&format!("\"GET /v2/test/cache-probe/blobs/{layer}")),
        1
    );
}

#[test]
fn concurrent_inspections_share_a_layer_scan() {
    let f = registry();
    let insp = f.inspector(None, "linux/amd64");
    // Same image four times: one download, three cache hits.
    let reqs: Vec<ImageRequest> = (0..4).map(|_| f.request("curl")).collect();
    let res = runtime().block_on(insp.inspect_many(&reqs, 4));
    assert!(res.iter().all(|r| r.is_ok()));
    assert_eq!(insp.stats.layers_downloaded.load(Ordering::Relaxed), 1);
}

#[test]
fn corrupted_layer_is_rejected() {
    let f = registry();
    let cache = tempfile::tempdir().unwrap();
    let insp = f.inspector(Some(cache.path().to_path_buf()), "linux/amd64");
    let err = runtime()
        .block_on(insp.inspect(&f.request("corrupt")))
        .unwrap_err();
    // Damaged gzip data fails either in decompression or at the digest check; both name the layer.
    match &err {
        RegistryError::DigestMismatch { .. } | RegistryError::Layer { .. } => {}
        other => panic!("unexpected error {other:?}"),
    }
    // Nothing was cached for it.
    let cached = walk(cache.path());
    assert!(cached.is_empty(), "{cached:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn unknown_image_is_not_found() {
    let f = registry();
    let insp = f.inspector(None, "linux/amd64");
    let mut req = f.request("clean");
    req.reference = "no-such-tag".into();
    let err = runtime().block_on(insp.inspect(&req)).unwrap_err();
    assert_eq!(err.cause(), "not-found", "{err}");
    assert!(err.to_string().contains("manifest unknown"), "{err}");
}

#[test]
fn plain_http_registry_needs_insecure_flag() {
    let f = registry();
    let client = RegistryClient::new(&RegistryOptions::default()).unwrap();
    let err = runtime()
        .block_on(client.verify_credentials(&f.registry, &f.credentials()))
        .unwrap_err();
    assert_eq!(err.cause(), "tls", "{err}");
}

#[test]
fn tls_registry_with_and_without_ca() {
    let f = tls_registry();
    let rt = runtime();
    let with_ca = RegistryClient::new(&RegistryOptions {
        ca_file: f.ca.clone(),
        ..Default::default()
    })
    .unwrap();
    rt.block_on(with_ca.verify_credentials(&f.registry, &f.credentials()))
        .expect("trusted through --registry-ca");
    let without = RegistryClient::new(&RegistryOptions::default()).unwrap();
    let err = rt
        .block_on(without.verify_credentials(&f.registry, &f.credentials()))
        .unwrap_err();
    assert_eq!(err.cause(), "tls", "{err}");
    assert!(err.to_string().contains(&f.registry));
    // --insecure-registry: HTTPS without verification.
    let insecure = RegistryClient::new(&f.insecure_options()).unwrap();
    rt.block_on(insecure.verify_credentials(&f.registry, &f.credentials()))
        .expect("insecure registry skips verification");
}

#[test]
fn connection_refused_is_a_network_error() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reg = format!("127.0.0.1:{port}");
    let client = RegistryClient::new(&RegistryOptions::default()).unwrap();
    let err = runtime()
        .block_on(client.verify_credentials(&reg, &Credentials::Anonymous))
        .unwrap_err();
    assert_eq!(err.cause(), "network", "{err}");
    assert!(err.to_string().contains(&reg));
}
