//! `audit -f`: the rules against manifest files, the policy file, exemptions, every output
//! format and the exit codes, all offline.
mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audit");
const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo");

fn audit(args: &[&str]) -> Out {
    let home = tempfile::tempdir().unwrap();
    let mut all = vec!["audit"];
    all.extend(args);
    run_with(&all, None, home.path(), &[])
}

fn json_report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// Unsuppressed rule IDs per container of the report.
fn rules_of(report: &Value, container: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["container"] == container && f["suppressed"] == false)
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn registry_patterns_cannot_be_bypassed() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        &dir,
        "allow.yaml",
        "allowedRegistries: [myregistry.io, docker.io/mycompany, docker.io/library, docker.io/bitnami, localhost:5000]\ntrustedPublishers: [bitnami]\n",
    );
    let file = format!("{FIXTURES}/bypass.yaml");
    let out = audit(&["-f", &file, "--policy", &policy, "-o", "json"]);
    out.code(3);
    let r = json_report(&out);
    let not_allowed = |c: &str| rules_of(&r, c).contains("registry-not-allowed");
    assert!(not_allowed("suffix-host"));
    assert!(not_allowed("dash-host"));
    assert!(not_allowed("account-prefix"));
    assert!(not_allowed("unofficial"));
    assert!(!not_allowed("account-ok"));
    assert!(!not_allowed("registry-ok"));
    assert!(!not_allowed("bare"), "nginx is docker.io/library/nginx");
    assert!(!not_allowed("local"));
    assert!(!not_allowed("legacy-hub"), "index.docker.io is docker.io");

    assert_eq!(
        rules_of(&r, "bare"),
        set(&["implicit-registry", "missing-tag"])
    );
    assert_eq!(
        rules_of(&r, "local"),
        set(&["missing-account", "missing-pull-secret"])
    );
    assert_eq!(rules_of(&r, "tag-and-digest"), set(&[]));
    assert_eq!(rules_of(&r, "upper"), set(&["invalid-reference"]));
    assert_eq!(rules_of(&r, "env-template"), set(&["invalid-reference"]));
    assert_eq!(rules_of(&r, "helm-template"), set(&["invalid-reference"]));
    assert_eq!(rules_of(&r, "latest"), set(&["mutable-tag"]));
    assert_eq!(
        rules_of(&r, "unofficial"),
        set(&["registry-not-allowed", "unofficial-docker-hub-image"])
    );
    assert_eq!(rules_of(&r, "trusted"), set(&["implicit-registry"]));
    assert_eq!(
        rules_of(&r, "account-ok"),
        set(&["unofficial-docker-hub-image"])
    );
    // A private registry: no public entry, no secret.
    assert_eq!(rules_of(&r, "registry-ok"), set(&["missing-pull-secret"]));
    // Invalid images have a null reference.
    let upper = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "docker.io/Library/Nginx:1")
        .unwrap();
    assert!(upper["reference"].is_null());
    let template = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["container"] == "env-template")
        .unwrap();
    assert!(
        template["message"].as_str().unwrap().contains("template"),
        "{template}"
    );
}

#[test]
fn denied_registries_match_normalized_names() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        &dir,
        "deny.yaml",
        "deniedRegistries: [docker.io, '*.evil.com']\n",
    );
    let file = format!("{FIXTURES}/bypass.yaml");
    let out = audit(&["-f", &file, "--policy", &policy, "-o", "json"]);
    let r = json_report(&out);
    let denied = |c: &str| rules_of(&r, c).contains("registry-denied");
    for c in [
        "bare",
        "latest",
        "unofficial",
        "trusted",
        "legacy-hub",
        "account-ok",
        "suffix-host",
    ] {
        assert!(denied(c), "{c} should be denied");
    }
    for c in ["registry-ok", "dash-host", "local"] {
        assert!(!denied(c), "{c} should not be denied");
    }
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "registry-denied")
        .unwrap();
    assert_eq!(f["severity"], "critical");
}

#[test]
fn every_kind_and_container_list_is_audited() {
    let file = format!("{FIXTURES}/kinds.yaml");
    let out = audit(&["-f", &file, "-o", "json", "--fail-on=critical"]);
    out.code(0);
    // Unknown kinds: one note per kind.
    assert_eq!(out.stderr.matches("ConfigMap").count(), 1, "{}", out.stderr);
    let r = json_report(&out);
    assert_eq!(r["summary"]["workloads"], 8);
    let mut kinds = BTreeSet::new();
    let mut containers = BTreeSet::new();
    for img in r["images"].as_array().unwrap() {
        for w in img["workloads"].as_array().unwrap() {
            kinds.insert(w["kind"].as_str().unwrap().to_string());
            containers.insert(w["container"].as_str().unwrap().to_string());
            assert_eq!(w["context"], "");
        }
    }
    assert_eq!(
        kinds,
        set(&[
            "CronJob",
            "DaemonSet",
            "Deployment",
            "Job",
            "Pod",
            "ReplicaSet",
            "ReplicationController",
            "StatefulSet"
        ])
    );
    assert!(containers.contains("init") && containers.contains("cj-init"));
    assert!(containers.contains("debugger"));
    assert_eq!(
        rules_of(&r, "cj-init"),
        set(&["missing-tag", "writable-root-filesystem"])
    );
    assert_eq!(
        rules_of(&r, "debugger"),
        set(&["missing-tag", "writable-root-filesystem"])
    );
    // Namespace defaults to "default" when the manifest has none.
    let pod = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "Pod")
        .unwrap();
    assert_eq!(pod["namespace"], "default");
}

#[test]
fn pull_secret_rules_and_service_accounts() {
    let file = format!("{FIXTURES}/secrets.yaml");
    let out = audit(&["-f", &file, "-o", "json"]);
    out.code(3);
    assert!(!out.all().contains("TOPSECRET"), "secret data leaked");
    let r = json_report(&out);
    let of = |name: &str| -> BTreeSet<String> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == name && f["suppressed"] == false)
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };
    // The service account's secret matches the registry: nothing to report.
    assert_eq!(of("via-sa"), set(&[]));
    // The pod names its own (wrong-registry) secret: the SA's is not used.
    assert_eq!(of("own-secret-wins"), set(&["missing-pull-secret"]));
    assert_eq!(
        of("broken-secrets"),
        set(&[
            "pull-secret-invalid",
            "pull-secret-not-found",
            "missing-pull-secret",
            "pull-policy-not-always"
        ])
    );
    let invalid: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "pull-secret-invalid")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(invalid.len(), 2);
    assert!(invalid
        .iter()
        .any(|m| m.contains("\"opaque\"") && m.contains("Opaque")));
    assert!(invalid.iter().any(|m| m.contains("\"bad-auth\"")));
    let missing = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "missing-pull-secret" && f["name"] == "broken-secrets")
        .unwrap();
    assert_eq!(
        missing["remediation"],
        "kubectl image-sec create-secret regcred --docker-server=registry.corp.example --docker-username=USER --password-stdin -n s --attach-to=deployment/broken-secrets"
    );
}

#[test]
fn exemptions_are_reported_but_not_counted() {
    let file = format!("{FIXTURES}/secrets.yaml");
    let out = audit(&["-f", &file, "-o", "json"]);
    let r = json_report(&out);
    let exempt: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "exempt")
        .collect();
    assert_eq!(exempt.len(), 2);
    assert!(exempt.iter().all(|f| f["suppressed"] == true));
    assert_eq!(r["summary"]["suppressed"], 2);
    let counts = &r["summary"]["findings"];
    let total: u64 = ["critical", "high", "medium", "low", "info"]
        .iter()
        .map(|s| counts[s].as_u64().unwrap())
        .sum();
    let unsuppressed = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["suppressed"] == false)
        .count() as u64;
    assert_eq!(total, unsuppressed);

    // Only suppressed findings at or above --fail-on: exit 0.
    let dir = tempfile::tempdir().unwrap();
    let only = write(
        &dir,
        "only.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {image-sec.io/ignore: \"missing-tag, implicit-registry,writable-root-filesystem\"}\nspec:\n  containers: [{name: a, image: nginx}]\n",
    );
    let out = audit(&["-f", &only]);
    out.code(0);
    assert!(
        out.stdout
            .contains("0 findings in 1 workload, 1 image; 3 suppressed"),
        "{}",
        out.stdout
    );
}

#[test]
fn policy_file_parameters_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pod = write(
        &dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nspec:\n  containers: [{name: a, image: \"quay.io/org/app:main\", securityContext: {readOnlyRootFilesystem: true}}]\n",
    );
    // Defaults: quay.io is public, "main" is not a mutable tag, no digest required.
    let out = audit(&["-f", &pod, "-o", "json"]);
    out.code(0);
    assert_eq!(json_report(&out)["findings"], serde_json::json!([]));

    let policy = write(
        &dir,
        "p.yaml",
        "mutableTags: [main]\nrequireDigest: true\npublicRegistries: [docker.io]\nseverities: {missing-digest: critical, pull-policy-not-always: info}\ndisabledRules: [missing-pull-secret]\n",
    );
    let out = audit(&["-f", &pod, "--policy", &policy, "-o", "json"]);
    out.code(3);
    let r = json_report(&out);
    let sev: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        sev,
        [
            ("missing-digest".to_string(), "critical".to_string()),
            ("mutable-tag".to_string(), "high".to_string()),
            ("pull-policy-not-always".to_string(), "info".to_string()),
        ]
    );

    for (text, expected) in [
        (
            "allowedRegistry: [x.io]\n",
            "unknown key \"allowedRegistry\" in ",
        ),
        (
            "deniedRegistries: ['https://evil.io']\n",
            "deniedRegistries: ",
        ),
        (
            "severities: {missing-tag: urgent}\n",
            "severities: missing-tag",
        ),
        (
            "disabledRules: [no-such-rule]\n",
            "unknown rule \"no-such-rule\"",
        ),
        (
            "requireDigest: maybe\n",
            "requireDigest: must be true or false",
        ),
    ] {
        let p = write(&dir, "bad.yaml", text);
        let out = audit(&["-f", &pod, "--policy", &p]);
        out.code(1);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
        assert!(out.stderr.contains(expected), "{text}: {}", out.stderr);
        assert!(out.stderr.contains("bad.yaml"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    let p = write(&dir, "bad.yaml", "allowedRegistry: [x.io]\n");
    let out = audit(&["-f", &pod, "--policy", &p]);
    assert!(
        out.stderr.contains("did you mean \"allowedRegistries\"?"),
        "{}",
        out.stderr
    );
}

#[test]
fn demo_audits_without_a_cluster() {
    let policy = format!("{DEMO}/policy.yaml");
    let out = audit(&["-f", DEMO, "--policy", &policy, "-o", "json"]);
    out.code(3);
    assert!(!out.all().contains("demo-password"));
    let r = json_report(&out);
    assert_eq!(r["apiVersion"], "image-sec.io/v1");
    assert_eq!(r["kind"], "AuditReport");
    assert_eq!(r["complete"], true);
    assert_eq!(r["errors"], serde_json::json!([]));
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "apiVersion",
            "kind",
            "complete",
            "summary",
            "images",
            "findings",
            "errors"
        ]
    );
    let f = &r["findings"][0];
    let fkeys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fkeys,
        [
            "rule",
            "severity",
            "suppressed",
            "context",
            "namespace",
            "kind",
            "name",
            "container",
            "image",
            "message",
            "remediation",
            "cause"
        ]
    );
    // Sorted: worst first, then namespace, kind, name, container, rule.
    let order = |f: &Value| {
        let rank = ["critical", "high", "medium", "low", "info"]
            .iter()
            .position(|s| f["severity"] == *s)
            .unwrap();
        (
            rank,
            f["namespace"].as_str().unwrap().to_string(),
            f["kind"].as_str().unwrap().to_string(),
            f["name"].as_str().unwrap().to_string(),
            f["container"].as_str().unwrap().to_string(),
            f["rule"].as_str().unwrap().to_string(),
        )
    };
    let findings = r["findings"].as_array().unwrap();
    let keys: Vec<_> = findings.iter().map(order).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // The compliant deployment has no findings; every bad workload has some.
    let names: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains("checkout"));
    for n in [
        "frontend",
        "search",
        "nightly-report",
        "orders-db",
        "log-shipper",
    ] {
        assert!(names.contains(n), "{n}");
    }
    let nginx = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "nginx")
        .unwrap();
    assert_eq!(
        nginx["reference"],
        serde_json::json!({"registry": "docker.io", "repository": "library/nginx", "tag": null, "digest": null, "normalized": "docker.io/library/nginx"})
    );

    // YAML is the same document.
    let y = audit(&["-f", DEMO, "--policy", &policy, "-o", "yaml"]);
    y.code(3);
    let from_yaml: Value = serde_saphyr_free_parse(&y.stdout);
    assert_eq!(from_yaml, r);
}

/// Parses YAML through the binary-independent route: the fake API server's YAML loader.
fn serde_saphyr_free_parse(text: &str) -> Value {
    let docs = fake_apiserver::parse_yaml_docs(text).expect("valid YAML");
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap()
}

#[test]
fn table_and_wide_output() {
    let policy = format!("{DEMO}/policy.yaml");
    let out = audit(&["-f", DEMO, "--policy", &policy]);
    out.code(3);
    let first = out.stdout.lines().next().unwrap();
    for col in [
        "SEVERITY",
        "WORKLOAD",
        "CONTAINER",
        "IMAGE",
        "RULE",
        "MESSAGE",
    ] {
        assert!(first.contains(col), "{first}");
    }
    assert!(!first.contains("REMEDIATION"));
    assert!(
        !out.stdout.contains('\x1b'),
        "no colours without a terminal"
    );
    assert!(out.stdout.lines().nth(1).unwrap().starts_with("critical"));
    let last = out.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("16 findings (1 critical, 7 high, 5 medium, 3 low) in 6 workloads, 8 images; 1 suppressed"),
        "{last}"
    );
    let wide = audit(&["-f", DEMO, "--policy", &policy, "-o", "wide"]);
    assert!(wide.stdout.lines().next().unwrap().contains("REMEDIATION"));
    assert!(wide
        .stdout
        .contains("kubectl image-sec create-secret regcred --docker-server=registry.shop.example"));
}

#[test]
fn sarif_has_the_required_structure() {
    let policy = format!("{DEMO}/policy.yaml");
    let out = audit(&["-f", DEMO, "--policy", &policy, "-o", "sarif"]);
    out.code(3);
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    // SARIF 2.1.0 required properties: version, runs[]; run.tool.driver.name; result.message.
    assert_eq!(s["version"], "2.1.0");
    assert!(s["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "kubectl-image-sec");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "one rule per rule ID");
    for id in [
        "invalid-reference",
        "missing-pull-secret",
        "image-pull-failing",
        "contains-shell",
    ] {
        assert!(unique.contains(id), "{id}");
    }
    for r in rules {
        assert!(r["shortDescription"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert!(["error", "warning", "note", "none"]
            .contains(&r["defaultConfiguration"]["level"].as_str().unwrap()));
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 17);
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(ids[idx], id);
        assert!(["error", "warning", "note", "none"].contains(&res["level"].as_str().unwrap()));
        assert!(!res["message"]["text"].as_str().unwrap().is_empty());
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.ends_with(".yaml"), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    // The line points at the image.
    let nginx = results
        .iter()
        .find(|r| r["ruleId"] == "missing-tag")
        .unwrap();
    let loc = &nginx["locations"][0]["physicalLocation"];
    assert!(loc["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("20-frontend.yaml"));
    let text = std::fs::read_to_string(format!("{DEMO}/20-frontend.yaml")).unwrap();
    let line = loc["region"]["startLine"].as_u64().unwrap() as usize;
    assert_eq!(text.lines().nth(line - 1).unwrap().trim(), "image: nginx");
    let suppressed = results
        .iter()
        .filter(|r| r["suppressions"].is_array())
        .count();
    assert_eq!(suppressed, 1);
}

#[test]
fn stdin_helm_output_and_unreadable_documents() {
    let home = tempfile::tempdir().unwrap();
    let helm = "---\n# Source: chart/templates/deploy.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: \"docker.io/library/nginx:1.27\"\n        securityContext: {readOnlyRootFilesystem: true}\n";
    let out = run_with(
        &["audit", "-f", "-"],
        Some(helm.as_bytes()),
        home.path(),
        &[],
    );
    out.code(0);
    assert!(
        out.stdout.contains("0 findings in 1 workload, 1 image"),
        "{}",
        out.stdout
    );

    // A broken document: the rest is audited, the report is incomplete (exit 4 wins over 3).
    let broken = format!("{helm}---\nkind: [unclosed\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers: [{{name: a, image: nginx}}]\n");
    let out = run_with(
        &["audit", "-f", "-", "-o", "json"],
        Some(broken.as_bytes()),
        home.path(),
        &[],
    );
    out.code(4);
    let r = json_report(&out);
    assert_eq!(r["complete"], false);
    assert_eq!(r["errors"][0]["resource"], "<stdin>:15");
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "missing-tag"));

    // -f of a file that does not exist: exit 1.
    let out = audit(&["-f", "/nonexistent/x.yaml"]);
    out.code(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}

#[test]
fn selector_picks_workloads_from_files_like_kubectl() {
    // `kubectl get -f DIR -l ...` filters the objects of the files; the audit filters the
    // workloads and still reads every pull secret the files hold.
    let dir = tempfile::tempdir().unwrap();
    let deployment = |name: &str, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {labels}\nspec:\n  template:\n    spec:\n      imagePullSecrets: [{{name: regcred}}]\n      containers:\n      - name: main\n        image: registry.example.com/team/{name}:1.0\n"
        )
    };
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: regcred, namespace: shop, labels: {app: other}}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlLmNvbSI6eyJhdXRoIjoiZFRwdyJ9fX0=\n";
    write(
        &dir,
        "web.yaml",
        &deployment("web", "{app: web, tier: front}"),
    );
    write(&dir, "db.yaml", &deployment("db", "{app: db, tier: back}"));
    write(&dir, "batch.yaml", &deployment("batch", "{}"));
    write(&dir, "secret.yaml", secret);
    let path = dir.path().display().to_string();
    let names = |selector: &str| -> BTreeSet<String> {
        let out = audit(&["-f", &path, "-l", selector, "-o", "json"]);
        assert!(out.code == 0 || out.code == 3, "{selector}: {}", out.stderr);
        let r = json_report(&out);
        // The pull secret was read although the selector does not select it.
        assert!(
            !rules_of(&r, "main").iter().any(|id| id.contains("secret")),
            "{selector}: {r}"
        );
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("app=web"), set(&["web"]));
    assert_eq!(names("tier in (front,back)"), set(&["web", "db"]));
    assert_eq!(names("app,app!=web"), set(&["db"]));
    assert_eq!(names("!app"), set(&["batch"]));
    assert_eq!(names(""), set(&["web", "db", "batch"]));
    // A bad selector is a one-line usage error naming what was expected; nothing is read.
    let out = audit(&["-f", &path, "-l", "app=web tier=front"]);
    assert_ne!(out.code, 0);
    assert!(out.stdout.is_empty());
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("error: invalid -l/--selector \"app=web tier=front\": found 'tier', expected: ',' or 'end of string'"),
        "{line}"
    );
}
