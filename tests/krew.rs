//! The krew release template renders into a manifest that passes krew's validation rules
//! (krew's pkg/index/validation): API version and kind, a safe plugin name, a semver version with
//! a leading `v`, a short description, and for every platform a selector, an https URI, a
//! lowercase 64-hex sha256 that is the archive's real hash, and a `bin` (`.exe` on Windows).
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PLATFORMS: [(&str, &str, &str); 5] = [
    ("linux", "amd64", "tar.gz"),
    ("linux", "arm64", "tar.gz"),
    ("darwin", "amd64", "tar.gz"),
    ("darwin", "arm64", "tar.gz"),
    ("windows", "amd64", "zip"),
];

fn render(tag: &str, dist: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(root.join("scripts/render-krew-manifest.py"))
        .arg(tag)
        .arg(dist)
        .output()
        .expect("python3 runs the renderer")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// krew's rules for one manifest; returns the problems found.
fn krew_problems(m: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if s(m, "/apiVersion") != "krew.googlecontainertools.github.com/v1alpha2" {
        problems.push("apiVersion".into());
    }
    if s(m, "/kind") != "Plugin" {
        problems.push("kind".into());
    }
    let name = s(m, "/metadata/name");
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(format!("name {name:?}"));
    }
    let version = s(m, "/spec/version");
    let semver = version.strip_prefix('v').map(|v| {
        v.split('-')
            .next()
            .unwrap_or("")
            .split('.')
            .collect::<Vec<_>>()
    });
    if !semver.is_some_and(|parts| {
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }) {
        problems.push(format!("version {version:?}"));
    }
    if s(m, "/spec/shortDescription").is_empty() {
        problems.push("shortDescription".into());
    }
    let platforms = m
        .pointer("/spec/platforms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if platforms.is_empty() {
        problems.push("no platforms".into());
    }
    for p in &platforms {
        let os = s(p, "/selector/matchLabels/os");
        let uri = s(p, "/uri");
        let sha = s(p, "/sha256");
        let bin = s(p, "/bin");
        if os.is_empty() || s(p, "/selector/matchLabels/arch").is_empty() {
            problems.push("selector".into());
        }
        if !uri.starts_with("https://") {
            problems.push(format!("uri {uri:?}"));
        }
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            problems.push(format!("sha256 {sha:?}"));
        }
        if bin.is_empty() || (os == "windows") != bin.ends_with(".exe") {
            problems.push(format!("bin {bin:?} for {os}"));
        }
    }
    problems
}

#[test]
fn the_release_template_renders_a_valid_krew_manifest_with_real_hashes() {
    let dist = tempfile::tempdir().unwrap();
    for (os, arch, ext) in PLATFORMS {
        let name = format!("kubectl-image_sec-{os}-{arch}.{ext}");
        std::fs::write(dist.path().join(&name), format!("archive for {os}/{arch}")).unwrap();
    }
    let out = render("v0.1.0", dist.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_saphyr::from_str(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    assert_eq!(krew_problems(&manifest), Vec::<String>::new());
    assert_eq!(manifest["metadata"]["name"], "image-sec");
    assert_eq!(manifest["spec"]["version"], "v0.1.0");
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), PLATFORMS.len());
    for (p, (os, arch, ext)) in platforms.iter().zip(PLATFORMS) {
        assert_eq!(p["selector"]["matchLabels"]["os"], os);
        assert_eq!(p["selector"]["matchLabels"]["arch"], arch);
        let name = format!("kubectl-image_sec-{os}-{arch}.{ext}");
        assert!(p["uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v0.1.0/{name}")));
        let bytes = std::fs::read(dist.path().join(&name)).unwrap();
        assert_eq!(p["sha256"], sha256_hex(&bytes), "{name}");
    }
}

#[test]
fn rendering_refuses_missing_archives_and_bad_tags() {
    let dist = tempfile::tempdir().unwrap();
    let out = render("v0.1.0", dist.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));
    let out = render("0.1", dist.path());
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_validator_catches_what_krew_rejects() {
    let good = serde_json::json!({
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2", "kind": "Plugin",
        "metadata": {"name": "image-sec"},
        "spec": {"version": "v1.2.3", "shortDescription": "x", "platforms": [{
            "selector": {"matchLabels": {"os": "windows", "arch": "amd64"}},
            "uri": "https://e.x/a.zip", "sha256": "a".repeat(64), "bin": "k.exe"}]}
    });
    assert!(krew_problems(&good).is_empty());
    for (pointer, bad) in [
        ("/metadata/name", Value::from("Image_Sec")),
        ("/spec/version", Value::from("1.2.3")),
        ("/spec/platforms/0/sha256", Value::from("A".repeat(64))),
        ("/spec/platforms/0/bin", Value::from("k")),
        ("/spec/platforms/0/uri", Value::from("http://e.x/a.zip")),
    ] {
        let mut m = good.clone();
        *m.pointer_mut(pointer).unwrap() = bad;
        assert!(
            !krew_problems(&m).is_empty(),
            "{pointer} should be rejected"
        );
    }
}
