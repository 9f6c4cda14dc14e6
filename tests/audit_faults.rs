//! `audit` under faults and bad input: transient failures are retried until the report is the
//! same as without faults; a resource that cannot be read makes the report partial (exit 4) and
//! says which; dead or slow servers give one clear line; malformed manifests, secrets, image
//! references and policies give clear errors or findings, never a panic.
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// Sorts every array by its elements' JSON text, so two reports compare regardless of order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_cached_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

#[track_caller]
fn no_panic(what: &str, out: &Out) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("internal error"),
        "{what}: {}",
        out.stderr
    );
}

#[track_caller]
fn one_line_error(what: &str, out: &Out) {
    no_panic(what, out);
    assert!(out.stderr.starts_with("error: "), "{what}: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{what}: {}", out.stderr);
}

const PODS: usize = 300;

#[test]
fn ten_percent_failures_give_the_same_complete_report() {
    let clean = TestCluster::with(Options::default().synthesize_pods(PODS));
    let out = clean.run(&["audit", "-A", "-o", "json"]);
    assert!([0, 3].contains(&out.code), "{}", out.stderr);
    let expected = report(&out);
    assert_eq!(expected["complete"], true);
    assert!(expected["summary"]["workloads"].as_u64().unwrap() > 10);
    let expected = canonical(&expected);
    for status in [503, 429, 500] {
        // About a dozen requests per audit: try seeds until two runs really met failures.
        let mut runs_with_failures = 0;
        for seed in 1..=10 {
            let c = TestCluster::with(Options::default().synthesize_pods(PODS).seed(seed));
            c.server.fail_fraction(0.1, status, Match::any());
            let out = c.run(&["audit", "-A", "-o", "json"]);
            no_panic("faults", &out);
            assert!(
                [0, 3].contains(&out.code),
                "{status} seed {seed}: {}",
                out.stderr
            );
            let got = report(&out);
            assert_eq!(got["complete"], true, "{status}: {}", got["errors"]);
            assert!(
                canonical(&got) == expected,
                "{status} seed {seed}: the report differs from the fault-free one"
            );
            let failed = c
                .server
                .requests()
                .iter()
                .filter(|r| r.status == status)
                .count();
            if failed > 0 {
                runs_with_failures += 1;
                if runs_with_failures == 2 {
                    break;
                }
            }
        }
        assert_eq!(runs_with_failures, 2, "{status}: faults were injected");
    }
}

#[test]
fn a_list_that_keeps_failing_makes_the_report_partial_and_names_it() {
    for (status, resource, name) in [
        (503, "pods", "pods"),
        (500, "deployments", "deployments.apps"),
        (429, "cronjobs", "cronjobs.batch"),
        (403, "secrets", "secrets"),
    ] {
        let c = TestCluster::with(Options::default().synthesize_pods(PODS));
        c.server
            .fail_always(status, Match::any().verb("list").resource(resource));
        let started = Instant::now();
        let out = c.run(&["audit", "-A", "-o", "json"]);
        no_panic(resource, &out);
        out.code(4);
        let r = report(&out);
        assert_eq!(r["complete"], false);
        let errors = r["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["resource"], name, "{errors:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{resource}: bounded retries ({:?})",
            started.elapsed()
        );
        // The table says what is missing.
        let out = c.run(&["audit", "-A"]);
        out.code(4);
        assert!(
            out.stdout.contains("INCOMPLETE") && out.stdout.contains(name),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn a_dead_server_is_one_line_quickly() {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_with(
        &[
            "audit",
            "-A",
            "--server=http://127.0.0.1:9",
            "--token=x",
            "-o",
            "json",
        ],
        None,
        home.path(),
        &[],
    );
    out.code(1);
    one_line_error("dead server", &out);
    assert!(
        out.stderr.contains("127.0.0.1:9") || out.stderr.contains("cannot reach"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "no half report: {}", out.stdout);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn request_timeout_gives_a_clear_error() {
    let c = TestCluster::new();
    c.server.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: web}\nspec:\n  containers: [{name: a, image: nginx}]\n");
    c.server.add_latency(Duration::from_secs(20), Match::any());
    let started = Instant::now();
    let out = c.run(&["audit", "-A", "--request-timeout=1s"]);
    no_panic("timeout", &out);
    out.code(1);
    one_line_error("timeout", &out);
    assert!(
        out.stderr.contains("timed out") && out.stderr.contains("--request-timeout"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(19),
        "gave up before the server answered: {:?}",
        started.elapsed()
    );
}

fn write(c: &TestCluster, name: &str, text: &str) -> String {
    c.file(name, text.as_bytes()).display().to_string()
}

const GOOD_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: good, namespace: web}\nspec:\n  containers: [{name: a, image: docker.io/library/nginx:1.27, securityContext: {readOnlyRootFilesystem: true}}]\n";

#[test]
fn malformed_manifests_get_clear_errors() {
    let c = TestCluster::new();
    // Bad YAML in one document: reported with file and line; the other documents are audited.
    let bad = write(
        &c,
        "bad.yaml",
        &format!("{GOOD_POD}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: [oops\n"),
    );
    let out = c.run(&["audit", "-f", &bad, "-o", "json"]);
    no_panic("bad yaml", &out);
    out.code(4);
    let r = report(&out);
    assert_eq!(r["summary"]["workloads"], 1);
    let e = r["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text = format!("{e} {}", r["errors"]);
    // Named by file and the line its document starts on (the parser's line is within it).
    assert!(
        text.contains("bad.yaml:7") && text.contains("unclosed"),
        "{text}"
    );
    // Unknown kinds are skipped with a note; not an error.
    let unknown = write(
        &c,
        "unknown.yaml",
        &format!("{GOOD_POD}---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\nspec: {{image: nginx}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"),
    );
    let out = c.run(&["audit", "-f", &unknown]);
    no_panic("unknown kinds", &out);
    out.code(0);
    assert!(
        out.stderr.contains("note: skipping Widget") && out.stderr.contains("ConfigMap"),
        "{}",
        out.stderr
    );
    // Not a Kubernetes object.
    let scalar = write(&c, "scalar.yaml", "just a string\n---\n42\n---\n[1, 2]\n");
    let out = c.run(&["audit", "-f", &scalar, "-o", "json"]);
    no_panic("scalars", &out);
    assert!([0, 4].contains(&out.code), "{}", out.stderr);
    // A file over the size limit is refused before it is read (a sparse file: no disk used).
    let huge = c.dir.path().join("huge.yaml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    let out = c.run(&["audit", "-f", &huge.display().to_string()]);
    out.code(1);
    one_line_error("huge", &out);
    assert!(out.stderr.contains("64 MiB limit"), "{}", out.stderr);
    // Binary garbage and invalid UTF-8 on stdin.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = c.run_stdin(&["audit", "-f", "-"], Some(&garbage));
    out.code(1);
    one_line_error("garbage", &out);
    assert!(out.stderr.contains("<stdin>"), "{}", out.stderr);
    let out = c.run_stdin(&["audit", "-f", "-"], Some(b"kind: Pod\nname: \xff\xfe\n"));
    out.code(1);
    one_line_error("latin1", &out);
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    // A YAML alias bomb and deep nesting hit the parser's budget, not the memory limit.
    let mut bomb = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\na0: &a0 [x,x,x,x,x,x,x,x,x]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    let deep_yaml = format!(
        "apiVersion: v1\nkind: Pod\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_json = format!(
        "{{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"x\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for (name, text) in [
        ("bomb.yaml", bomb),
        ("deep.yaml", deep_yaml),
        ("deep.json", deep_json),
    ] {
        let f = write(&c, name, &text);
        let started = Instant::now();
        let out = c.run(&["audit", "-f", &f, "-o", "json"]);
        no_panic(name, &out);
        out.code(4);
        assert!(
            report(&out)["errors"].to_string().contains(name),
            "{}",
            out.stdout
        );
        let out = c.run(&["patch", "-f", &f, "--secret=x"]);
        no_panic(name, &out);
        out.code(1);
        one_line_error(name, &out);
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
    }
}

const BAD_SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: not-json, namespace: web}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{\"auths\": "}
---
apiVersion: v1
kind: Secret
metadata: {name: not-base64, namespace: web}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: "%%%not base64%%%"}
---
apiVersion: v1
kind: Secret
metadata: {name: wrong-type, namespace: web}
type: Opaque
stringData: {.dockerconfigjson: "{\"auths\": {}}"}
---
apiVersion: v1
kind: Secret
metadata: {name: bad-auth, namespace: web}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{\"auths\": {\"reg.example.com\": {\"auth\": \"bm9jb2xvbg==\"}}}"}
---
apiVersion: v1
kind: Secret
metadata: {name: auths-array, namespace: web}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: "{\"auths\": [1, 2]}"}
---
apiVersion: v1
kind: Secret
metadata: {name: no-data, namespace: web}
type: kubernetes.io/dockerconfigjson
"#;

fn pod_using(name: &str, secret: &str) -> String {
    format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  imagePullSecrets: [{{name: {secret}}}]\n  containers: [{{name: a, image: reg.example.com/team/app:1, imagePullPolicy: Always, securityContext: {{readOnlyRootFilesystem: true}}}}]\n")
}

#[test]
fn malformed_secrets_are_findings() {
    let c = TestCluster::new();
    let secrets = [
        "not-json",
        "not-base64",
        "wrong-type",
        "bad-auth",
        "auths-array",
        "no-data",
    ];
    let mut text = BAD_SECRETS.to_string();
    for s in secrets {
        text.push_str(&pod_using(&format!("p-{s}"), s));
    }
    let f = write(&c, "secrets.yaml", &text);
    let out = c.run(&["audit", "-f", &f, "-o", "json"]);
    no_panic("secrets", &out);
    assert!([3, 4].contains(&out.code), "{}", out.stderr);
    let r = report(&out);
    for s in secrets {
        let pod = format!("p-{s}");
        let rules: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == pod.as_str())
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(
            rules.contains(&"pull-secret-invalid"),
            "{s}: {rules:?}\n{}",
            r["errors"]
        );
    }
    // The same secrets live.
    let live = TestCluster::new();
    for doc in text.split("\n---\n") {
        if doc.contains("kind: Secret") && doc.contains("not-base64") {
            // The real API server refuses invalid base64 in data; insert its bytes directly.
            live.server
                .insert(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "not-base64", "namespace": "web"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "bm90IGpzb24="}}));
            continue;
        }
        if !doc.trim().is_empty() {
            live.server.load_yaml(doc);
        }
    }
    let out = live.run(&["audit", "-n", "web", "-o", "json"]);
    no_panic("live secrets", &out);
    out.code(3);
    let r = report(&out);
    let invalid = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "pull-secret-invalid")
        .count();
    assert!(invalid >= secrets.len(), "{}", out.stdout);
}

#[test]
fn invalid_image_references_are_critical_findings() {
    let c = TestCluster::new();
    let images = [
        "Nginx:1.27",
        "nginx:bad tag",
        "nginx:-bad",
        "nginx@sha256:abc",
        "{{ .Values.image }}",
        "",
        "nginx::1",
        "a//b:1",
        "\u{1F600}",
    ];
    let mut text = String::new();
    for (i, image) in images.iter().enumerate() {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: web}}\nspec:\n  containers: [{{name: a, image: {}}}]\n",
            serde_json::to_string(image).unwrap()
        ));
    }
    let f = write(&c, "images.yaml", &text);
    for o in ["json", "table", "wide", "yaml", "sarif"] {
        let out = c.run(&["audit", "-f", &f, "-o", o]);
        no_panic(o, &out);
        out.code(3);
    }
    let out = c.run(&["audit", "-f", &f, "-o", "json"]);
    let r = report(&out);
    for (i, image) in images.iter().enumerate() {
        let pod = format!("p{i}");
        assert!(
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == pod.as_str()
                    && f["rule"] == "invalid-reference"
                    && f["severity"] == "critical"),
            "{image:?}: {}",
            out.stdout
        );
    }
    // Live, too, and `inspect` refuses them before any network access.
    for (i, image) in images.iter().enumerate() {
        c.server.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i}"), "namespace": "web"},
            "spec": {"containers": [{"name": "a", "image": image}]}}));
    }
    let out = c.run(&["audit", "-n", "web", "-o", "json"]);
    no_panic("live", &out);
    out.code(3);
    for image in images {
        let out = c.run(&["inspect", image]);
        no_panic(image, &out);
        assert!([1, 2].contains(&out.code), "{image:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{image:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn invalid_policy_files_are_one_line_errors() {
    let c = TestCluster::new();
    let pod = write(&c, "pod.yaml", GOOD_POD);
    let cases = [
        ("bad-yaml", "allowedRegistries: [unclosed\n", "policy"),
        ("unknown-key", "allowedRegistry: [docker.io]\n", "allowedRegistry"),
        ("wrong-type", "allowedRegistries: docker.io\n", "allowedRegistries"),
        ("bad-pattern", "deniedRegistries: ['*']\n", "deniedRegistries"),
        ("bad-severity", "severities: {missing-tag: urgent}\n", "severities"),
        ("unknown-rule", "disabledRules: [no-such-rule]\n", "disabledRules"),
        ("negative", "maxImageBytes: -5\n", "maxImageBytes"),
        ("bool", "requireDigest: maybe\n", "requireDigest"),
        ("list", "- a\n- b\n", "mapping"),
        ("binary", "\u{1}\u{2}\u{3}", "policy"),
        (
            "bomb",
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
            "policy",
        ),
    ];
    for (name, text, needle) in cases {
        let p = write(&c, &format!("{name}.policy.yaml"), text);
        let out = c.run(&["audit", "-f", &pod, "--policy", &p]);
        out.code(1);
        one_line_error(name, &out);
        assert!(
            out.stderr.contains(&format!("{name}.policy.yaml")),
            "{name}: names the file: {}",
            out.stderr
        );
        assert!(out.stderr.contains(needle), "{name}: {}", out.stderr);
    }
    let out = c.run(&["audit", "-f", &pod, "--policy", "/nonexistent/policy.yaml"]);
    out.code(1);
    one_line_error("missing policy", &out);
}
