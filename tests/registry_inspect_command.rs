//! `kubectl image-sec inspect` end to end against the fixture registry: credentials from a docker
//! config file, output formats, exit codes, error wording.
mod registry_fixture;

use base64::Engine as _;
use registry_fixture::{registry, PASSWORD, USER};
use std::process::{Command, Output};

fn docker_config(
    dir: &std::path::Path,
    registry: &str,
    user: &str,
    pass: &str,
) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let path = dir.join(format!("config-{user}-{}.json", pass.len()));
    std::fs::write(
        &path,
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    path
}

fn inspect(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-image_sec"))
        .arg("inspect")
        .args(args)
        .env("KUBECTL_IMAGE_SEC_CACHE_DIR", cache)
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn inspect_reports_contents_and_exit_codes() {
    let f = registry();
    let dir = tempfile::tempdir().unwrap();
    let cfg = docker_config(dir.path(), &f.registry, USER, PASSWORD);
    let cfg = cfg.to_str().unwrap();
    let cache = dir.path().join("cache");
    let image = |n: &str| format!("{}/test/{n}:latest", f.registry);

    // Shell found: high, at the default --fail-on=high → exit 3; table lists the paths.
    let out = inspect(
        &[
            &image("shell"),
            "--docker-config",
            cfg,
            "--insecure-registry",
            &f.registry,
        ],
        &cache,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("contains-shell") && stdout.contains("/bin/sh"),
        "{stdout}"
    );

    // Editor only: low, below the default threshold → 0; --fail-on=low → 3.
    let out = inspect(
        &[
            &image("vi"),
            "--docker-config",
            cfg,
            "--insecure-registry",
            &f.registry,
            "-o",
            "json",
        ],
        &cache,
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "ImageInspection");
    assert_eq!(
        v["contents"]["editor"],
        serde_json::json!(["/usr/bin/vi", "/usr/bin/vim.basic"])
    );
    assert_eq!(v["findings"][0]["rule"], "contains-editor");
    assert_eq!(v["findings"][0]["severity"], "low");
    assert_eq!(v["platform"], "linux/amd64");
    let out = inspect(
        &[
            &image("vi"),
            "--docker-config",
            cfg,
            "--insecure-registry",
            &f.registry,
            "--fail-on",
            "low",
        ],
        &cache,
    );
    assert_eq!(out.status.code(), Some(3));

    // Multi-arch with --platform, YAML.
    let out = inspect(
        &[
            &image("multi"),
            "--docker-config",
            cfg,
            "--insecure-registry",
            &f.registry,
            "--platform",
            "linux/arm64",
            "-o",
            "yaml",
        ],
        &cache,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("platform: linux/arm64/v8") && stdout.contains("/usr/bin/wget"),
        "{stdout}"
    );

    // Clean image: base image from labels, exit 0.
    let out = inspect(
        &[
            &image("clean"),
            "--docker-config",
            cfg,
            "--insecure-registry",
            &f.registry,
        ],
        &cache,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("example.com/base/static:1"), "{stdout}");
}

#[test]
fn inspect_errors_are_one_clear_line() {
    let f = registry();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bad = docker_config(dir.path(), &f.registry, USER, "wrong-password-123");
    let image = format!("{}/test/clean:latest", f.registry);
    let out = inspect(
        &[
            &image,
            "--docker-config",
            bad.to_str().unwrap(),
            "--insecure-registry",
            &f.registry,
        ],
        &cache,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: unauthorized: ")
            && stderr.contains(&f.registry)
            && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password-123"));

    // Without --insecure-registry the plain-HTTP registry is refused as a TLS problem, with a hint.
    let good = docker_config(dir.path(), &f.registry, USER, PASSWORD);
    let out = inspect(&[&image, "--docker-config", good.to_str().unwrap()], &cache);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: tls: ") && stderr.contains("--insecure-registry"),
        "{stderr}"
    );

    let out = inspect(&["Not/A/Valid:Ref!"], &cache);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: invalid image reference"));
}

#[test]
fn verify_registry_credentials_for_create_secret() {
    use kubectl_image_sec::cli::RegistryOpts;
    use kubectl_image_sec::commands::inspect::verify_registry_credentials;
    use kubectl_image_sec::domain::pull_secret::RegistryCredential;
    let f = registry();
    let opts = RegistryOpts {
        insecure_registry: vec![f.registry.clone()],
        registry_ca: None,
        platform: "linux/amd64".into(),
    };
    let cred = |pass: &str| RegistryCredential {
        server: format!("http://{}/v1/", f.registry),
        username: USER.into(),
        password: pass.into(),
        email: String::new(),
    };
    let rt = registry_fixture::runtime();
    rt.block_on(verify_registry_credentials(&[cred(PASSWORD)], &opts))
        .expect("valid");
    let err = rt
        .block_on(verify_registry_credentials(&[cred("bad-pass-xyz")], &opts))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains(&f.registry) && !err.contains("bad-pass-xyz"),
        "{err}"
    );
}

#[test]
fn deep_inspection_of_distinct_images_keeps_errors() {
    use kubectl_image_sec::commands::inspect::{inspect_images, DEFAULT_CONCURRENCY};
    use kubectl_image_sec::domain::docker_config::parse_docker_config_json;
    use kubectl_image_sec::domain::keyring::Keyring;
    use kubectl_image_sec::domain::reference::ImageReference;
    let f = registry();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let cfg = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, f.registry);
    let mut keyring = Keyring::new();
    keyring.add(
        "pull-secret",
        &parse_docker_config_json(cfg.as_bytes()).unwrap(),
    );
    let refs: Vec<ImageReference> = ["shell", "curl", "shell", "does-not-exist"]
        .iter()
        .map(|n| ImageReference::parse(&format!("{}/test/{n}:latest", f.registry)).unwrap())
        .collect();
    let insp = f.inspector(None, "linux/amd64");
    let out = registry_fixture::runtime().block_on(inspect_images(
        &insp,
        &refs,
        &keyring,
        DEFAULT_CONCURRENCY,
    ));
    assert_eq!(out.len(), 3, "duplicates inspected once");
    assert_eq!(out[0].0.repository, "test/shell");
    assert_eq!(out[0].1.as_ref().unwrap().findings.len(), 3);
    assert_eq!(out[1].1.as_ref().unwrap().findings[0].path, "/usr/bin/curl");
    let err = out[2].1.as_ref().unwrap_err();
    assert_eq!(err.cause(), "not-found", "{err}");
}
