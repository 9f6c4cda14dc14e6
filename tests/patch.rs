//! `patch` end to end against the fake API server: nothing lost, idempotent, conflicts retried
//! or refused whole, Pods and Jobs explained, and offline `-f` editing that only adds lines.
mod common;

use common::*;
use serde_json::{json, Value};

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn pull_secret(c: &TestCluster, ns: &str, name: &str) {
    c.server.insert(
        json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":name,"namespace":ns},
        "type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"eyJhdXRocyI6e319"}}),
    );
}

fn template(list: Option<Value>) -> Value {
    let mut spec = json!({"containers":[{"name":"app","image":"registry.example.com/app:1"}]});
    if let Some(l) = list {
        spec["imagePullSecrets"] = l;
    }
    json!({"metadata":{"labels":{"app":"x"}},"spec":spec})
}

/// An object of `kind` with the given list, stored in `shop`.
fn workload(c: &TestCluster, kind: &str, name: &str, labels: Value, list: Option<Value>) -> Value {
    let (api, spec) = match kind {
        "CronJob" => (
            "batch/v1",
            json!({"schedule":"@daily","jobTemplate":{"spec":{"template":template(list)}}}),
        ),
        "ReplicationController" => (
            "v1",
            json!({"replicas":1,"selector":{"app":"x"},"template":template(list)}),
        ),
        "Job" => ("batch/v1", json!({"template":template(list)})),
        _ => (
            "apps/v1",
            json!({"replicas":1,"selector":{"matchLabels":{"app":"x"}},"template":template(list)}),
        ),
    };
    c.server.insert(json!({"apiVersion":api,"kind":kind,"metadata":{"name":name,"namespace":"shop","labels":labels},"spec":spec}))
}

fn list_at(c: &TestCluster, resource: &str, name: &str, pointer: &str) -> Vec<String> {
    let obj = c.server.get(resource, "shop", name).expect("object stored");
    names(obj.pointer(pointer).unwrap_or(&Value::Null))
}

const TPL: &str = "/spec/template/spec/imagePullSecrets";
const CJ: &str = "/spec/jobTemplate/spec/template/spec/imagePullSecrets";

#[test]
fn service_account_keeps_entries_is_idempotent_and_counts_pods() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "regcred");
    pull_secret(&c, "shop", "a");
    c.server.insert(json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder","namespace":"shop"},
        "imagePullSecrets":[{"name":"a"},{"name":"zeta"}],"secrets":[{"name":"tok"}]}));
    for (name, list) in [
        ("p1", json!([])),
        ("p2", json!([{"name":"regcred"}])),
        ("p3", json!([{"name":"a"}])),
    ] {
        c.server.insert(json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"shop"},
            "spec":{"serviceAccountName":"builder","imagePullSecrets":list,"containers":[{"name":"c","image":"x"}]},
            "status":{"phase":"Running"}}));
    }
    let out = c.run(&[
        "patch",
        "sa/builder",
        "--secret=zeta",
        "--secret=regcred",
        "-n",
        "shop",
    ]);
    assert_eq!(
        out.ok(),
        "serviceaccount/builder patched: imagePullSecrets [a, zeta] -> [a, zeta, regcred]\n"
    );
    assert!(
        out.stderr.contains("only pods created from now on"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("2 running pods"), "{}", out.stderr);
    let sa = c.server.get("sa", "shop", "builder").unwrap();
    assert_eq!(names(&sa["imagePullSecrets"]), ["a", "zeta", "regcred"]);
    assert_eq!(sa["secrets"], json!([{"name":"tok"}]));
    let writes = c.server.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].content_type.as_deref(),
        Some("application/json-patch+json")
    );
    assert!(writes[0]
        .body_json()
        .as_array()
        .unwrap()
        .iter()
        .any(|op| op["op"] == "test"));
    // The pod count used a field selector.
    assert!(c.server.requests().iter().any(|r| r.resource == "pods"
        && r.query
            .contains("fieldSelector=spec.serviceAccountName%3Dbuilder")));

    let again = c.run(&["patch", "sa/builder", "--secret=regcred", "-n", "shop"]);
    assert_eq!(
        again.ok(),
        "serviceaccount/builder unchanged: imagePullSecrets [a, zeta, regcred]\n"
    );
    assert_eq!(c.write_count(), 1);

    let gone = c.run(&[
        "patch",
        "sa/builder",
        "--secret=nothere",
        "--remove",
        "-n",
        "shop",
    ]);
    assert_eq!(
        gone.ok(),
        "serviceaccount/builder unchanged: imagePullSecrets [a, zeta, regcred]\n"
    );
    assert_eq!(c.write_count(), 1);
}

#[test]
fn every_workload_kind_adds_and_removes_keeping_order() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "new");
    for (kind, short, res, ptr, q) in [
        (
            "Deployment",
            "deploy",
            "deployments",
            TPL,
            "deployment.apps",
        ),
        (
            "StatefulSet",
            "sts",
            "statefulsets",
            TPL,
            "statefulset.apps",
        ),
        ("DaemonSet", "ds", "daemonsets", TPL, "daemonset.apps"),
        ("ReplicaSet", "rs", "replicasets", TPL, "replicaset.apps"),
        (
            "ReplicationController",
            "rc",
            "replicationcontrollers",
            TPL,
            "replicationcontroller",
        ),
        ("CronJob", "cj", "cronjobs", CJ, "cronjob.batch"),
    ] {
        workload(
            &c,
            kind,
            "w",
            json!({"app":"x"}),
            Some(json!([{"name":"b"},{"name":"a"}])),
        );
        let out = c.run(&[
            "patch",
            &format!("{short}/w"),
            "--secret=new",
            "--secret=a",
            "-n",
            "shop",
        ]);
        assert_eq!(
            out.ok(),
            format!("{q}/w patched: imagePullSecrets [b, a] -> [b, a, new]\n"),
            "{kind}"
        );
        assert_eq!(list_at(&c, res, "w", ptr), ["b", "a", "new"], "{kind}");
        let before = c.write_count();
        let again = c.run(&["patch", &format!("{short}/w"), "--secret=new", "-n", "shop"]);
        assert!(
            again
                .ok()
                .contains("unchanged: imagePullSecrets [b, a, new]"),
            "{kind}"
        );
        assert_eq!(
            c.write_count(),
            before,
            "{kind}: no write on the second run"
        );
        let rm = c.run(&[
            "patch",
            &format!("{short}/w"),
            "--secret=b",
            "--remove",
            "-n",
            "shop",
        ]);
        assert_eq!(
            rm.ok(),
            format!("{q}/w patched: imagePullSecrets [b, a, new] -> [a, new]\n"),
            "{kind}"
        );
        assert_eq!(list_at(&c, res, "w", ptr), ["a", "new"], "{kind}");
    }
}

#[test]
fn selectors_and_all() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(&c, "Deployment", "web", json!({"app":"web"}), None);
    workload(
        &c,
        "Deployment",
        "web2",
        json!({"app":"web"}),
        Some(json!([{"name":"keep"}])),
    );
    workload(&c, "Deployment", "db", json!({"app":"db"}), None);
    let out = c.run(&[
        "patch",
        "deployment",
        "-l",
        "app=web",
        "--secret=r",
        "-n",
        "shop",
    ]);
    assert_eq!(
        out.ok(),
        "deployment.apps/web patched: imagePullSecrets [] -> [r]\ndeployment.apps/web2 patched: imagePullSecrets [keep] -> [keep, r]\n"
    );
    assert!(list_at(&c, "deploy", "db", TPL).is_empty());
    let all = c.run(&[
        "patch",
        "deploy",
        "--all",
        "--secret=r",
        "-n",
        "shop",
        "-o",
        "name",
    ]);
    assert_eq!(
        all.ok(),
        "deployment.apps/db\ndeployment.apps/web\ndeployment.apps/web2\n"
    );
    assert_eq!(list_at(&c, "deploy", "db", TPL), ["r"]);
    assert_eq!(list_at(&c, "deploy", "web2", TPL), ["keep", "r"]);
    let none = c.run(&[
        "patch",
        "deploy",
        "-l",
        "app=nothing",
        "--secret=r",
        "-n",
        "shop",
    ]);
    none.code(0);
    assert!(none.stderr.contains("No resources found"));
}

#[test]
fn dry_runs_write_nothing() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(
        &c,
        "Deployment",
        "web",
        json!({}),
        Some(json!([{"name":"a"}])),
    );
    let before = c.server.get("deploy", "shop", "web").unwrap();
    let client = c.run(&[
        "patch",
        "deploy/web",
        "--secret=r",
        "-n",
        "shop",
        "--dry-run=client",
    ]);
    assert_eq!(
        client.ok(),
        "deployment.apps/web patched (dry run): imagePullSecrets [a] -> [a, r]\n"
    );
    assert_eq!(c.write_count(), 0);
    let server = c.run(&[
        "patch",
        "deploy/web",
        "--secret=r",
        "-n",
        "shop",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let printed: Value = serde_json::from_str(server.ok()).unwrap();
    assert_eq!(
        names(&printed["spec"]["template"]["spec"]["imagePullSecrets"]),
        ["a", "r"]
    );
    assert!(c.server.writes().iter().all(|w| w.dry_run));
    assert_eq!(c.server.get("deploy", "shop", "web").unwrap(), before);
    let yaml = c.run(&[
        "patch",
        "deploy/web",
        "--secret=r",
        "-n",
        "shop",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert!(yaml.ok().contains("- name: r"), "{}", yaml.stdout);
    assert_eq!(c.server.get("deploy", "shop", "web").unwrap(), before);
}

#[test]
fn a_conflict_is_retried_and_keeps_the_other_writers_entry() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(
        &c,
        "Deployment",
        "web",
        json!({}),
        Some(json!([{"name":"a"}])),
    );
    c.server
        .fail_next(1, 409, Match::writes().resource("deployments"));
    let out = c.run(&["patch", "deploy/web", "--secret=r", "-n", "shop"]);
    out.ok();
    assert_eq!(list_at(&c, "deploy", "web", TPL), ["a", "r"]);
    assert_eq!(c.write_count(), 2);

    // Another client appends `other` between our read and our write: our test op fails, we
    // re-read and keep its entry.
    workload(
        &c,
        "StatefulSet",
        "db",
        json!({}),
        Some(json!([{"name":"a"}])),
    );
    c.server.before_next_write(
        "sts",
        "shop",
        "db",
        json!([{"op":"add","path":TPL.to_string() + "/-","value":{"name":"other"}}]),
    );
    let out = c.run(&["patch", "sts/db", "--secret=r", "-n", "shop"]);
    assert_eq!(
        out.ok(),
        "statefulset.apps/db patched: imagePullSecrets [a, other] -> [a, other, r]\n"
    );
    assert_eq!(list_at(&c, "sts", "db", TPL), ["a", "other", "r"]);
}

#[test]
fn a_conflict_forever_fails_whole() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(
        &c,
        "Deployment",
        "web",
        json!({}),
        Some(json!([{"name":"a"}])),
    );
    let before = c.server.get("deploy", "shop", "web").unwrap();
    c.server
        .fail_always(409, Match::writes().resource("deployments"));
    let out = c.run(&[
        "patch",
        "deploy/web",
        "--secret=r",
        "--secret=s",
        "-n",
        "shop",
    ]);
    out.code(1);
    assert!(
        out.stderr.lines().last().unwrap().starts_with("error: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("kept changing"), "{}", out.stderr);
    assert_eq!(c.server.get("deploy", "shop", "web").unwrap(), before);
    assert_eq!(c.write_count(), 5);
}

#[test]
fn forbidden_names_the_verb_and_resource() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(&c, "Deployment", "web", json!({}), None);
    c.server
        .fail_always(403, Match::writes().resource("deployments"));
    let out = c.run(&["patch", "deploy/web", "--secret=r", "-n", "shop"]);
    out.code(1);
    assert!(out.stderr.contains("Forbidden"), "{}", out.stderr);
    assert!(out.stderr.contains("patch"), "{}", out.stderr);
    assert!(out.stderr.contains("deployments"), "{}", out.stderr);
}

#[test]
fn secret_checks_warn_but_do_not_fail() {
    let c = TestCluster::new();
    c.server.insert(json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"opaque","namespace":"shop"},"type":"Opaque","data":{"k":"dg=="}}));
    workload(&c, "Deployment", "web", json!({}), None);
    let out = c.run(&[
        "patch",
        "deploy/web",
        "--secret=missing",
        "--secret=opaque",
        "-n",
        "shop",
    ]);
    out.ok();
    assert!(
        out.stderr.contains("\"missing\" does not exist"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("\"Opaque\""), "{}", out.stderr);
    assert!(!out.all().contains("dg=="));
    c.server.fail_always(403, Match::any().resource("secrets"));
    workload(&c, "Deployment", "api", json!({}), None);
    let out = c.run(&["patch", "deploy/api", "--secret=x", "-n", "shop"]);
    out.ok();
    assert!(out.stderr.contains("could not check"), "{}", out.stderr);
    assert_eq!(list_at(&c, "deploy", "api", TPL), ["x"]);
}

#[test]
fn a_live_pod_is_refused_with_its_owner_command() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "regcred");
    let d = workload(&c, "Deployment", "web", json!({}), None);
    c.server.insert(json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-5d4f","namespace":"shop",
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":d["metadata"]["uid"],"controller":true}]},
        "spec":{"selector":{"matchLabels":{"app":"x"}},"template":template(None)}}));
    c.server.insert(json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-5d4f-abc","namespace":"shop",
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5d4f","uid":"u","controller":true}]},
        "spec":{"containers":[{"name":"c","image":"x"}]}}));
    c.server.insert(
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"bare","namespace":"shop"},
        "spec":{"containers":[{"name":"c","image":"x"}]}}),
    );
    let out = c.run(&[
        "patch",
        "pod/web-5d4f-abc",
        "--secret=regcred",
        "-n",
        "shop",
    ]);
    out.code(1);
    assert!(out.stderr.contains("cannot be changed"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("kubectl image-sec patch deployment/web --secret=regcred -n shop"),
        "{}",
        out.stderr
    );
    let out = c.run(&["patch", "po/bare", "--secret=regcred", "-n", "shop"]);
    out.code(1);
    assert!(
        out.stderr.contains("patch -f pod.yaml --secret=regcred"),
        "{}",
        out.stderr
    );
    assert_eq!(c.write_count(), 0);
}

#[test]
fn a_job_is_explained() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    c.server.insert(json!({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"nightly-123","namespace":"shop",
        "ownerReferences":[{"apiVersion":"batch/v1","kind":"CronJob","name":"nightly","uid":"u","controller":true}]},
        "spec":{"template":template(None)}}));
    workload(&c, "Job", "once", json!({}), None);
    let out = c.run(&["patch", "job/nightly-123", "--secret=r", "-n", "shop"]);
    out.code(1);
    assert!(
        out.stderr
            .contains("kubectl image-sec patch cronjob/nightly --secret=r -n shop"),
        "{}",
        out.stderr
    );
    let out = c.run(&["patch", "job", "once", "--secret=r", "-n", "shop"]);
    out.code(1);
    assert!(out.stderr.contains("recreate"), "{}", out.stderr);
    assert_eq!(c.write_count(), 0);
}

#[test]
fn several_targets_continue_past_a_failure() {
    let c = TestCluster::new();
    pull_secret(&c, "shop", "r");
    workload(&c, "Deployment", "web", json!({}), None);
    let out = c.run(&[
        "patch",
        "deploy/web",
        "deploy/ghost",
        "--secret=r",
        "-n",
        "shop",
    ]);
    out.code(1);
    assert!(out.stdout.contains("deployment.apps/web patched"));
    assert!(out.stderr.contains("ghost"), "{}", out.stderr);
    assert_eq!(list_at(&c, "deploy", "web", TPL), ["r"]);
}

#[test]
fn usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let out = run_with(
        &["patch", "-f", "x.yaml", "deploy/web", "--secret=r"],
        None,
        home.path(),
        &[],
    );
    out.code(2);
    let out = run_with(&["patch", "--secret=r"], None, home.path(), &[]);
    out.code(2);
    let out = run_with(&["patch", "deploy/web"], None, home.path(), &[]);
    out.code(2);
    let out = run_with(&["patch", "secret/x", "--secret=r"], None, home.path(), &[]);
    out.code(1);
}

// ------------------------------------------------------------------ offline

fn offline(input: &str, args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut a = vec!["patch", "-f", "-"];
    a.extend(args);
    let out = run_with(&a, Some(input.as_bytes()), home.path(), &[]);
    out.ok().to_string()
}

const MULTI: &str = r#"# Generated by hand; keep this comment.
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  spec: |
    template:
      spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the web tier
  labels: {app: web}
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: web
    spec:
      # containers first
      containers:
      - name: app
        image: 'registry.example.com/web:1.2'
        args: ["--port", "8080"]
      imagePullSecrets:
      - name: old   # from 2021
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{port: 80}]
"#;

#[test]
fn offline_yaml_is_byte_identical_except_the_added_entries() {
    let out = offline(MULTI, &["--secret=regcred", "--secret=old"]);
    assert_eq!(
        out,
        MULTI.replace(
            "      - name: old   # from 2021\n",
            "      - name: old   # from 2021\n      - name: regcred\n"
        )
    );
    // Idempotent and reversible.
    assert_eq!(offline(&out, &["--secret=regcred"]), out);
    assert_eq!(offline(&out, &["--secret=regcred", "--remove"]), MULTI);
}

#[test]
fn offline_flow_lists_lists_and_json() {
    let flow = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec:\n      imagePullSecrets: [{name: a}]  # inline\n      containers: [{name: c, image: x}]\n  - apiVersion: batch/v1\n    kind: CronJob\n    metadata:\n      name: cj\n    spec:\n      schedule: \"0 * * * *\"\n      jobTemplate:\n        spec:\n          template:\n            spec:\n              restartPolicy: OnFailure\n              containers:\n                - name: c\n                  image: x\n";
    let out = offline(flow, &["--secret=b"]);
    let expected = flow
        .replace("[{name: a}]  # inline", "[{name: a}, {name: b}]  # inline")
        .replace("                  image: x\n", "                  image: x\n              imagePullSecrets:\n                - name: b\n");
    assert_eq!(out, expected);

    let json_in = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ServiceAccount\",\n  \"metadata\": {\n    \"name\": \"default\"\n  },\n  \"imagePullSecrets\": [\n    {\n      \"name\": \"a\"\n    }\n  ]\n}\n";
    let out = offline(json_in, &["--secret=b"]);
    assert_eq!(
        out,
        json_in.replace(
            "\"a\"\n    }\n",
            "\"a\"\n    },\n    {\n      \"name\": \"b\"\n    }\n"
        )
    );
    let out = offline(json_in, &["--secret=a", "--remove"]);
    assert_eq!(out, "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ServiceAccount\",\n  \"metadata\": {\n    \"name\": \"default\"\n  }\n}\n");
}

#[test]
fn offline_from_a_directory_and_nothing_to_do() {
    let c = TestCluster::new();
    let sa = "kind: ServiceAccount\napiVersion: v1\nmetadata:\n  name: x\n";
    let svc =
        "kind: Service\napiVersion: v1\nmetadata:\n  name: x\nspec:\n  template:\n    spec: {}\n";
    c.file("m/a.yaml", sa.as_bytes());
    c.file("m/b.yaml", svc.as_bytes());
    let dir = c.home().join("m").display().to_string();
    let out = c.run(&["patch", "-f", &dir, "--secret=r"]);
    assert_eq!(
        out.ok(),
        format!("{sa}imagePullSecrets:\n  - name: r\n---\n{svc}")
    );
    let out = offline(svc, &["--secret=r"]);
    assert_eq!(out, svc);
}
