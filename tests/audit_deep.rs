//! `audit --deep` end to end: the real binary against the fake API server and the real local
//! fixture registry (htpasswd auth, plain HTTP on 127.0.0.1). Credentials come from the pods'
//! pull secrets (or their service account's), from `--docker-config`, or from Secrets in `-f`
//! manifests. Each test uses its own layer cache directory.
mod common;
mod registry_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use common::*;
use registry_fixture::{registry, PASSWORD, USER};
use serde_json::{json, Value};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn image(name: &str) -> String {
    format!("{}/test/{name}:latest", registry().registry)
}

fn docker_config_json(user: &str, pass: &str) -> String {
    json!({"auths": {registry().registry.clone(): {
        "username": user, "password": pass, "auth": b64(&format!("{user}:{pass}"))}}})
    .to_string()
}

fn pull_secret(name: &str, ns: &str, user: &str, pass: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(&docker_config_json(user, pass))}})
}

fn pod(name: &str, ns: &str, image: &str, secrets: &[&str]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "imagePullSecrets": secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Always",
                "securityContext": {"readOnlyRootFilesystem": true}}]
        }
    })
}

/// Runs the binary against `c` with its own cache dir (and nothing from the user's env).
fn audit(c: &TestCluster, cache: &Path, args: &[&str]) -> Out {
    let kc = c.kubeconfig.display().to_string();
    let cache = cache.display().to_string();
    let mut all = vec![
        "audit",
        "--deep",
        "--insecure-registry",
        &registry().registry,
    ];
    all.extend_from_slice(args);
    run_with(
        &all,
        None,
        c.home(),
        &[("KUBECONFIG", &kc), ("KUBECTL_IMAGE_SEC_CACHE_DIR", &cache)],
    )
}

fn report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// `name -> {deep rules}` of the report's findings (suppressed ones included).
fn deep_rules(r: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in r["findings"].as_array().unwrap() {
        let rule = f["rule"].as_str().unwrap();
        if rule.starts_with("contains-") || rule.starts_with("image-too") || rule == "image-stale" {
            out.entry(f["name"].as_str().unwrap().to_string())
                .or_default()
                .insert(rule.to_string());
        }
    }
    out
}

fn contains_rules(r: &Value) -> BTreeMap<String, BTreeSet<String>> {
    deep_rules(r)
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter()
                    .filter(|r| r.starts_with("contains-"))
                    .collect(),
            )
        })
        .filter(|(_, v): &(String, BTreeSet<String>)| !v.is_empty())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn finding<'a>(r: &'a Value, name: &str, rule: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name && f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} finding for {name}"))
}

/// `layers: N downloaded, M from cache` from the `-v=4` stats line.
fn layer_stats(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("deep:") && l.contains("layers:"))
        .unwrap_or_else(|| panic!("no stats line in:\n{stderr}"));
    let num_before = |word: &str| -> u64 {
        let i = line.find(word).unwrap();
        line[..i]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num_before(" downloaded"), num_before(" from cache"))
}

#[test]
fn deep_live_uses_pull_secrets_dedupes_images_and_caches_layers() {
    let reg = registry();
    let c = TestCluster::new();
    let ns = "deep-live";
    c.server.insert(pull_secret("regcred", ns, USER, PASSWORD));
    c.server
        .insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "builder", "namespace": ns},
        "imagePullSecrets": [{"name": "regcred"}]}));
    for name in ["shell", "apt", "curl", "vi", "clean", "whiteout"] {
        c.server
            .insert(pod(&format!("p-{name}"), ns, &image(name), &["regcred"]));
    }
    // Same image as p-shell, credentials through its service account.
    let mut shared = pod("p-shell-sa", ns, &image("shell"), &[]);
    shared["spec"]["serviceAccountName"] = json!("builder");
    c.server.insert(shared);

    let cache = tempfile::tempdir().unwrap();
    let manifests_before = reg.log_count("GET /v2/test/shell/manifests/latest HTTP/1.1\" 200");
    let out = audit(&c, cache.path(), &["-n", ns, "-o", "json", "-v=4"]);
    out.code(3);
    let r = report(&out);
    assert_eq!(r["complete"], true, "{}", out.stdout);
    assert_eq!(r["errors"], json!([]));
    assert_eq!(
        contains_rules(&r),
        BTreeMap::from([
            ("p-shell".to_string(), set(&["contains-shell"])),
            ("p-shell-sa".to_string(), set(&["contains-shell"])),
            ("p-apt".to_string(), set(&["contains-package-manager"])),
            ("p-curl".to_string(), set(&["contains-network-tool"])),
            ("p-vi".to_string(), set(&["contains-editor"])),
        ]),
        "{}",
        out.stdout
    );
    let shell = finding(&r, "p-shell", "contains-shell");
    assert_eq!(shell["severity"], "high");
    assert_eq!(shell["image"], image("shell"));
    let msg = shell["message"].as_str().unwrap();
    assert!(
        msg.contains("contains a shell: ") && msg.contains("/bin/sh -> /bin/busybox"),
        "{msg}"
    );
    assert!(shell["remediation"]
        .as_str()
        .unwrap()
        .contains("multi-stage build"));
    assert_eq!(
        finding(&r, "p-curl", "contains-network-tool")["severity"],
        "medium"
    );
    assert_eq!(finding(&r, "p-vi", "contains-editor")["severity"], "low");
    // Small images, default maxImageBytes (500 MiB): never too large.
    assert!(deep_rules(&r)
        .values()
        .all(|rules| !rules.contains("image-too-large")));
    // Two workloads, one image: read once.
    assert_eq!(
        reg.log_count("GET /v2/test/shell/manifests/latest HTTP/1.1\" 200") - manifests_before,
        1
    );
    let (downloaded, _) = layer_stats(&out.stderr);
    assert!(downloaded >= 6, "{}", out.stderr);
    assert!(!out.all().contains(PASSWORD));

    // Second run: every layer from the cache, same findings.
    let again = audit(&c, cache.path(), &["-n", ns, "-o", "json", "-v=4"]);
    again.code(3);
    assert_eq!(contains_rules(&report(&again)), contains_rules(&r));
    let (downloaded, cached) = layer_stats(&again.stderr);
    assert_eq!(downloaded, 0, "{}", again.stderr);
    assert!(cached >= 6, "{}", again.stderr);

    // The table shows the deep findings too.
    let table = audit(&c, cache.path(), &["-n", ns]);
    assert!(table.stdout.contains("contains-shell"), "{}", table.stdout);
}

#[test]
fn deep_registry_errors_make_the_report_incomplete() {
    let c = TestCluster::new();
    let ns = "deep-errors";
    c.server
        .insert(pull_secret("wrong", ns, USER, "NOT-THE-PASSWORD-xyz"));
    c.server.insert(pull_secret("regcred", ns, USER, PASSWORD));
    // No secret at all, and a secret with the wrong password: both refused.
    c.server.insert(pod("nosecret", ns, &image("multi"), &[]));
    c.server
        .insert(pod("badsecret", ns, &image("corrupt"), &["wrong"]));
    // Good credentials, repository that does not exist.
    let missing = format!("{}/test/does-not-exist:1", registry().registry);
    c.server.insert(pod("missing", ns, &missing, &["regcred"]));
    // Invalid reference: skipped by --deep (it gets invalid-reference).
    c.server.insert(pod("invalid", ns, "Bad/Image:1", &[]));

    let cache = tempfile::tempdir().unwrap();
    let out = audit(&c, cache.path(), &["-n", ns, "-o", "json"]);
    out.code(4);
    let r = report(&out);
    assert_eq!(r["complete"], false);
    let errors: BTreeMap<String, String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["namespace"], ns);
            (
                e["resource"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[&image("multi")].contains("unauthorized"),
        "{errors:?}"
    );
    assert!(
        errors[&image("corrupt")].contains("unauthorized"),
        "{errors:?}"
    );
    assert!(
        errors[&image("corrupt")]
            .ends_with("(credentials tried: pull secret \"wrong\", anonymous)"),
        "{errors:?}"
    );
    assert!(
        errors[&image("multi")].ends_with("(credentials tried: anonymous)"),
        "{errors:?}"
    );
    assert!(
        errors[&missing].starts_with("--deep: not-found: manifest"),
        "{errors:?}"
    );
    assert!(deep_rules(&r).is_empty(), "{}", out.stdout);
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "invalid" && f["rule"] == "invalid-reference"));
    let all = out.all();
    assert!(!all.contains(PASSWORD) && !all.contains("NOT-THE-PASSWORD"));

    // The table says the report is partial too.
    let table = audit(&c, cache.path(), &["-n", ns]);
    table.code(4);
}

#[test]
fn deep_manifests_with_docker_config_policy_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, docker_config_json(USER, PASSWORD)).unwrap();
    let manifests = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  template:
    spec:
      containers:
      - {{name: app, image: "{clean}", imagePullPolicy: Always, securityContext: {{readOnlyRootFilesystem: true}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: tools
  namespace: shop
  annotations: {{image-sec.io/ignore: "contains-network-tool"}}
spec:
  template:
    spec:
      containers:
      - {{name: app, image: "{curl}", imagePullPolicy: Always, securityContext: {{readOnlyRootFilesystem: true}}}}
"#,
        clean = image("clean"),
        curl = image("curl"),
    );
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, manifests).unwrap();
    let cache = dir.path().join("cache");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--deep",
            "-f",
            file.to_str().unwrap(),
            "--insecure-registry",
            &registry().registry,
            "--docker-config",
            cfg.to_str().unwrap(),
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        run_with(
            &args,
            None,
            dir.path(),
            &[("KUBECTL_IMAGE_SEC_CACHE_DIR", cache.to_str().unwrap())],
        )
    };

    // Defaults: the 2024 fixtures are older than 90 days; none is above 500 MiB.
    let out = run(&[]);
    let r = report(&out);
    assert_eq!(r["complete"], true, "{}", out.stdout);
    assert_eq!(
        deep_rules(&r),
        BTreeMap::from([
            ("web".to_string(), set(&["image-stale"])),
            (
                "tools".to_string(),
                set(&["contains-network-tool", "image-stale"])
            ),
        ])
    );
    let stale = finding(&r, "web", "image-stale");
    assert_eq!(stale["severity"], "low");
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .contains("2024-01-15T10:00:00Z"),
        "{stale}"
    );
    // Exempted by annotation: listed, suppressed.
    assert_eq!(
        finding(&r, "tools", "contains-network-tool")["suppressed"],
        true
    );

    // Small thresholds: both fire; severities from the policy apply.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "maxImageBytes: 1\nmaxImageAgeDays: 1\nseverities: {image-too-large: high}\n",
    )
    .unwrap();
    let out = run(&["--policy", policy.to_str().unwrap()]);
    let r = report(&out);
    assert_eq!(
        deep_rules(&r)["web"],
        set(&["image-stale", "image-too-large"])
    );
    let large = finding(&r, "web", "image-too-large");
    assert_eq!(large["severity"], "high");
    assert!(large["message"]
        .as_str()
        .unwrap()
        .contains("above maxImageBytes (1 bytes)"));

    // Generous thresholds and a disabled rule: nothing fires.
    std::fs::write(
        &policy,
        "maxImageAgeDays: 1000000\ndisabledRules: [contains-network-tool]\n",
    )
    .unwrap();
    let out = run(&["--policy", policy.to_str().unwrap()]);
    assert!(deep_rules(&report(&out)).is_empty(), "{}", out.stdout);

    // Without credentials the registry refuses: exit 4.
    let out = run_with(
        &[
            "audit",
            "--deep",
            "-f",
            file.to_str().unwrap(),
            "--insecure-registry",
            &registry().registry,
            "-o",
            "json",
        ],
        None,
        dir.path(),
        &[("KUBECTL_IMAGE_SEC_CACHE_DIR", cache.to_str().unwrap())],
    );
    out.code(4);
    assert!(out.stdout.contains("unauthorized"), "{}", out.stdout);
}

#[test]
fn deep_manifests_use_secrets_from_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: regcred, namespace: shop}}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {secret}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: shop}}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          imagePullSecrets: [{{name: regcred}}]
          restartPolicy: Never
          containers:
          - {{name: run, image: "{vi}", imagePullPolicy: Always, securityContext: {{readOnlyRootFilesystem: true}}}}
"#,
        secret = b64(&docker_config_json(USER, PASSWORD)),
        vi = image("vi"),
    );
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, manifests).unwrap();
    let cache = dir.path().join("cache");
    let out = run_with(
        &[
            "audit",
            "--deep",
            "-f",
            file.to_str().unwrap(),
            "--insecure-registry",
            &registry().registry,
            "-o",
            "json",
            "--fail-on",
            "low",
        ],
        None,
        dir.path(),
        &[("KUBECTL_IMAGE_SEC_CACHE_DIR", cache.to_str().unwrap())],
    );
    out.code(3);
    let r = report(&out);
    assert_eq!(r["complete"], true, "{}", out.stdout);
    let f = finding(&r, "nightly", "contains-editor");
    assert_eq!(f["kind"], "CronJob");
    assert_eq!(f["container"], "run");
    assert!(
        f["message"].as_str().unwrap().contains("/usr/bin/vi"),
        "{f}"
    );
    assert!(!out.all().contains(PASSWORD));
}

#[test]
fn deep_honours_platform() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, docker_config_json(USER, PASSWORD)).unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: multi, namespace: shop}}\nspec:\n  containers: [{{name: app, image: \"{}\"}}]\n",
            image("multi")
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let network_tool = |platform: &str| -> String {
        let out = run_with(
            &[
                "audit",
                "--deep",
                "-f",
                file.to_str().unwrap(),
                "--insecure-registry",
                &registry().registry,
                "--docker-config",
                cfg.to_str().unwrap(),
                "--platform",
                platform,
                "-o",
                "json",
            ],
            None,
            dir.path(),
            &[("KUBECTL_IMAGE_SEC_CACHE_DIR", cache.to_str().unwrap())],
        );
        let r = report(&out);
        assert_eq!(r["complete"], true, "{}", out.stdout);
        finding(&r, "multi", "contains-network-tool")["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(network_tool("linux/amd64").contains("/usr/bin/curl"));
    assert!(network_tool("linux/arm64").contains("/usr/bin/wget"));
}

#[test]
fn progress_goes_to_a_terminal_only() {
    // Listing and image reading both report progress on a terminal (stderr), and clear it;
    // piped, neither prints a progress line.
    let c = TestCluster::new();
    let ns = "deep-progress";
    c.server.insert(pull_secret("regcred", ns, USER, PASSWORD));
    for name in ["shell", "clean"] {
        c.server
            .insert(pod(&format!("p-{name}"), ns, &image(name), &["regcred"]));
    }
    let cache = tempfile::tempdir().unwrap();
    let kc = c.kubeconfig.display().to_string();
    let cache_dir = cache.path().display().to_string();
    let envs = [
        ("KUBECONFIG", kc.as_str()),
        ("KUBECTL_IMAGE_SEC_CACHE_DIR", cache_dir.as_str()),
    ];
    let args = [
        "audit",
        "--deep",
        "--insecure-registry",
        &registry().registry,
        "-n",
        ns,
        "-o",
        "json",
    ];
    let shown = run_on_terminal(&args, c.home(), &envs);
    shown.code(3);
    let screen = &shown.stdout;
    assert!(screen.contains("\rreading the cluster: "), "{screen:?}");
    for step in ["0/2", "1/2", "2/2"] {
        assert!(
            screen.contains(&format!("\rinspecting images: {step}")),
            "{step}: {screen:?}"
        );
    }
    // Each progress line is wiped before the report starts.
    let report_at = screen.find('{').expect("the JSON report");
    assert!(screen[..report_at].ends_with("\r\x1b[K"), "{screen:?}");
    assert!(!screen.contains(PASSWORD));
    let piped = audit(&c, cache.path(), &["-n", ns, "-o", "json"]);
    piped.code(3);
    assert!(
        !piped.all().contains("inspecting images"),
        "{}",
        piped.stderr
    );
    assert!(
        !piped.all().contains("reading the cluster"),
        "{}",
        piped.stderr
    );
}
