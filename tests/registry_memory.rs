//! Memory stays flat while a large layer streams through the scanner. Measured in a child
//! process (this test binary re-executed) so other tests' allocations do not count: the child
//! reads its peak RSS (VmHWM) after a warm-up inspection and again after the large one.
mod registry_fixture;

use kubectl_image_sec::registry::{
    Credentials, ImageRequest, Inspector, LayerCache, Platform, RegistryClient, RegistryOptions,
};
use std::process::Command;

const CHILD_ENV: &str = "IMAGE_SEC_MEM_CHILD_IMAGE";
const REGISTRY_ENV: &str = "IMAGE_SEC_MEM_CHILD_REGISTRY";

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs only as the child (the env var is set by `measure`); a no-op in the normal suite.
#[test]
fn child_measure() {
    let (Ok(image), Ok(registry)) = (std::env::var(CHILD_ENV), std::env::var(REGISTRY_ENV)) else {
        return;
    };
    let client = RegistryClient::new(&RegistryOptions {
        insecure_registries: vec![registry.clone()],
        ..Default::default()
    })
    .unwrap();
    let insp = Inspector::new(client, LayerCache::new(None), Platform::linux_amd64());
    let req = |name: &str| ImageRequest {
        image: name.to_string(),
        registry: registry.clone(),
        repository: format!("test/{name}"),
        reference: "latest".into(),
        credentials: Credentials::basic(registry_fixture::USER, registry_fixture::PASSWORD),
    };
    let rt = registry_fixture::runtime();
    // Warm-up: TLS/HTTP machinery, thread stacks, the runtime's blocking pool.
    rt.block_on(insp.inspect(&req("corrupt"))).ok();
    rt.block_on(insp.inspect(&req("clean"))).unwrap();
    let before = vm_hwm_kib();
    let r = rt.block_on(insp.inspect(&req(&image))).unwrap();
    let after = vm_hwm_kib();
    println!(
        "\nMEASURE before={before} after={after} layer_bytes={}",
        r.compressed_size()
    );
}

fn measure(image: &str) -> (u64, u64, u64) {
    let f = registry_fixture::registry();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_measure",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, image)
        .env(REGISTRY_ENV, &f.registry)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("MEASURE ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no measurement in {stdout}"));
    let get = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (get("before"), get("after"), get("layer_bytes"))
}

/// Peak RSS may grow by at most this much while a layer streams, whatever its size.
const MAX_GROWTH_KIB: u64 = 12 * 1024;

#[test]
fn memory_stays_flat_scanning_a_20mb_layer() {
    let (before, after, bytes) = measure("big");
    eprintln!("peak RSS {before} KiB -> {after} KiB while scanning {bytes} bytes");
    assert!(bytes > 20_000_000, "layer is {bytes} bytes");
    assert!(
        after.saturating_sub(before) < MAX_GROWTH_KIB,
        "peak RSS grew from {before} KiB to {after} KiB for a {bytes}-byte layer"
    );
}

#[test]
#[ignore = "builds and pushes a 200 MB layer; scripts/test.sh runs it first with BUILD_LARGE=1"]
fn memory_stays_flat_scanning_a_200mb_layer() {
    assert_eq!(
        std::env::var("BUILD_LARGE").as_deref(),
        Ok("1"),
        "set BUILD_LARGE=1"
    );
    let (before, after, bytes) = measure("large");
    eprintln!("peak RSS {before} KiB -> {after} KiB while scanning {bytes} bytes");
    assert!(bytes > 200_000_000, "layer is {bytes} bytes");
    assert!(
        after.saturating_sub(before) < MAX_GROWTH_KIB,
        "peak RSS grew from {before} KiB to {after} KiB for a {bytes}-byte layer"
    );
}
