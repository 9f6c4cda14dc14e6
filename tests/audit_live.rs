//! `audit` against a (fake) live cluster: controller folding, pull-failure triage from status
//! messages and events, partial reads (exit 4), pagination, several contexts.
mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

fn report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().unwrap()
}

fn pod(
    name: &str,
    ns: &str,
    image: &str,
    secrets: &[&str],
    waiting: Option<(&str, &str)>,
) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "imagePullSecrets": secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Always",
                "securityContext": {"readOnlyRootFilesystem": true}}]
        }
    });
    if let Some((reason, message)) = waiting {
        p["status"] = json!({"phase": "Pending", "containerStatuses": [{
            "name": "app", "image": image, "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}}}]});
    }
    p
}

fn event(ns: &str, pod: &str, reason: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{pod}.{reason}"), "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns},
        "reason": reason, "type": "Warning", "message": message})
}

fn docker_secret(name: &str, ns: &str, registry: &str) -> Value {
    use base64::Engine;
    let cfg = json!({"auths": {registry: {"username": "ci", "password": "LIVE-SECRET-PW",
        "auth": base64::engine::general_purpose::STANDARD.encode("ci:LIVE-SECRET-PW")}}});
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}})
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx", securityContext: {readOnlyRootFilesystem: true}}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-5d8f
  namespace: shop
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u1, controller: true}]
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "nginx", securityContext: {readOnlyRootFilesystem: true}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          initContainers: [{name: init, image: "docker.io/library/busybox:1.36", securityContext: {readOnlyRootFilesystem: true}}]
          containers: [{name: run, image: "docker.io/library/busybox:1.36", securityContext: {readOnlyRootFilesystem: true}}]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: nightly-28000
  namespace: shop
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u2, controller: true}]
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: run, image: "docker.io/library/busybox:1.36", securityContext: {readOnlyRootFilesystem: true}}]
"#;

fn owned(mut p: Value, kind: &str, owner: &str) -> Value {
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "x", "controller": true}]);
    p["metadata"]["labels"] = json!({"app": "web"});
    p
}

#[test]
fn pods_fold_into_their_controllers_and_failures_are_reported_there() {
    let c = TestCluster::new();
    c.server.load_yaml(WEB);
    c.server.insert(owned(
        pod("web-5d8f-a", "shop", "nginx", &[], None),
        "ReplicaSet",
        "web-5d8f",
    ));
    c.server.insert(owned(
        pod("web-5d8f-b", "shop", "nginx", &[], None),
        "ReplicaSet",
        "web-5d8f",
    ));
    c.server.insert(owned(
        pod("web-5d8f-c", "shop", "nginx", &[], Some(("ErrImagePull", "failed to pull and unpack image \"docker.io/library/nginx:latest\": failed to resolve reference: unexpected status: 429 Too Many Requests - toomanyrequests: You have reached your pull rate limit"))),
        "ReplicaSet",
        "web-5d8f",
    ));
    let mut job_pod = pod(
        "nightly-28000-x",
        "shop",
        "docker.io/library/busybox:1.36",
        &[],
        None,
    );
    job_pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-28000", "uid": "y", "controller": true}]);
    c.server.insert(job_pod);

    let out = c.run(&["audit", "-n", "shop", "-o", "json"]);
    out.code(3);
    let r = report(&out);
    assert_eq!(r["complete"], true);
    assert_eq!(r["summary"]["workloads"], 2, "{}", out.stdout);
    let mut pods: BTreeMap<String, u64> = BTreeMap::new();
    for img in r["images"].as_array().unwrap() {
        for w in img["workloads"].as_array().unwrap() {
            assert_eq!(w["context"], "fake");
            pods.insert(
                format!(
                    "{}/{}",
                    w["kind"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                w["pods"].as_u64().unwrap(),
            );
        }
    }
    assert_eq!(
        pods,
        BTreeMap::from([
            ("CronJob/nightly".to_string(), 1),
            ("Deployment/web".to_string(), 3)
        ])
    );
    let failing: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["rule"] == "image-pull-failing")
        .collect();
    assert_eq!(failing.len(), 1);
    let f = failing[0];
    assert_eq!(
        (f["kind"].as_str(), f["name"].as_str()),
        (Some("Deployment"), Some("web"))
    );
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["cause"], "rate-limited");
    assert!(f["message"].as_str().unwrap().contains("web-5d8f-c"), "{f}");
    assert!(f["remediation"]
        .as_str()
        .unwrap()
        .starts_with("kubectl image-sec create-secret"));
    // Every finding is at a controller, none at a ReplicaSet, Job or Pod.
    assert!(findings(&r)
        .iter()
        .all(|f| f["kind"] == "Deployment" || f["kind"] == "CronJob"));
    // The table names the workload with its namespace.
    let table = c.run(&["audit", "-n", "shop"]);
    assert!(
        table.stdout.contains("shop/deployment/web"),
        "{}",
        table.stdout
    );
}

#[test]
fn each_pull_failure_cause_is_named() {
    let c = TestCluster::new();
    let ns = "triage";
    let private = "registry.corp.example/team/app:1.0";
    c.server
        .insert(docker_secret("regcred", "other", "registry.corp.example"));
    c.server
        .insert(docker_secret("good", ns, "registry.corp.example"));
    c.server.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "opaque", "namespace": ns},
        "type": "Opaque", "data": {"x": "eA=="}}));
    let unauthorized = "failed to pull and unpack image \"registry.corp.example/team/app:1.0\": failed to resolve reference: pulling from host registry.corp.example failed with status code [manifests 1.0]: 401 Unauthorized";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("p-secret-missing", pod("p-secret-missing", ns, private, &["regcred"], Some(("ErrImagePull", unauthorized))), "pull-secret-not-found"),
        ("p-secret-invalid", pod("p-secret-invalid", ns, private, &["opaque"], Some(("ImagePullBackOff", "Back-off pulling image \"registry.corp.example/team/app:1.0\""))), "pull-secret-invalid"),
        ("p-no-secret", pod("p-no-secret", ns, private, &[], Some(("ErrImagePull", unauthorized))), "missing-pull-secret"),
        ("p-rejected", pod("p-rejected", ns, private, &["good"], Some(("ErrImagePull", unauthorized))), "unauthorized"),
        ("p-not-found", pod("p-not-found", ns, "docker.io/library/nginx:9.99", &[], Some(("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:9.99\": failed to resolve reference \"docker.io/library/nginx:9.99\": docker.io/library/nginx:9.99: not found"))), "not-found"),
        ("p-tls", pod("p-tls", ns, "quay.io/org/app:1", &[], Some(("ErrImagePull", "failed to do request: Head \"https://quay.io/v2/org/app/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority"))), "tls"),
        ("p-network", pod("p-network", ns, "ghcr.io/org/app:1", &[], Some(("ErrImagePull", "failed to do request: Head \"https://ghcr.io/v2/org/app/manifests/1\": dial tcp: lookup ghcr.io: no such host"))), "network"),
        ("p-rate", pod("p-rate", ns, "docker.io/library/redis:7", &[], Some(("ImagePullBackOff", "Back-off pulling image \"docker.io/library/redis:7\""))), "rate-limited"),
        ("p-never", pod("p-never", ns, "docker.io/library/redis:7", &[], Some(("ErrImageNeverPull", "Container image \"docker.io/library/redis:7\" is not present with pull policy of Never"))), "never-pull"),
        ("p-bad-ref", pod("p-bad-ref", ns, "docker.io/library/redis:${TAG}", &[], Some(("InvalidImageName", "Failed to apply default image tag \"docker.io/library/redis:${TAG}\": couldn't parse image reference"))), "invalid-reference"),
        ("p-unknown", pod("p-unknown", ns, "docker.io/library/redis:7", &[], Some(("ImagePullBackOff", "Back-off pulling image \"docker.io/library/redis:7\""))), "unknown"),
    ];
    for (_, p, _) in &cases {
        c.server.insert(p.clone());
    }
    // The rate limit shows only in the pod's events.
    c.server.insert(event(ns, "p-rate", "Failed", "Failed to pull image \"docker.io/library/redis:7\": 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit."));
    c.server.insert(event(
        ns,
        "p-rate",
        "BackOff",
        "Back-off pulling image \"docker.io/library/redis:7\"",
    ));
    c.server
        .insert(event(ns, "p-unknown", "Scheduled", "not a pull problem"));
    c.server.clear_requests();

    let out = c.run(&["audit", "-n", ns, "-o", "json"]);
    out.code(3);
    assert!(!out.all().contains("LIVE-SECRET-PW"));
    let r = report(&out);
    for (name, _, cause) in &cases {
        let f = findings(&r)
            .iter()
            .find(|f| f["rule"] == "image-pull-failing" && f["name"] == *name)
            .unwrap_or_else(|| panic!("no image-pull-failing for {name}:\n{}", out.stdout));
        assert_eq!(f["cause"], *cause, "{name}: {f}");
        assert!(!f["remediation"].as_str().unwrap().is_empty());
    }
    let by = |name: &str| {
        findings(&r)
            .iter()
            .find(|f| f["rule"] == "image-pull-failing" && f["name"] == name)
            .unwrap()
            .clone()
    };
    // A secret of that name exists in another namespace: the fix copies it.
    let missing = by("p-secret-missing");
    assert!(
        missing["message"].as_str().unwrap().contains("\"other\""),
        "{missing}"
    );
    assert!(missing["remediation"]
        .as_str()
        .unwrap()
        .contains("kubectl get secret regcred -n other"));
    assert_eq!(
        by("p-no-secret")["remediation"],
        "kubectl image-sec create-secret regcred --docker-server=registry.corp.example --docker-username=USER --password-stdin --verify -n triage --attach-to=pod/p-no-secret"
    );
    assert!(by("p-rejected")["remediation"]
        .as_str()
        .unwrap()
        .contains("create-secret good --docker-server=registry.corp.example"));
    // Static findings carry no cause.
    assert!(findings(&r)
        .iter()
        .filter(|f| f["rule"] != "image-pull-failing")
        .all(|f| f["cause"].is_null()));
    // Round trips: one events LIST for the namespace, with a field selector.
    let events: Vec<String> = c
        .server
        .requests()
        .iter()
        .filter(|r| r.resource == "events")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0].contains("fieldSelector=involvedObject.kind%3DPod"),
        "{events:?}"
    );
}

#[test]
fn a_denied_kind_gives_a_partial_report_and_exit_4() {
    let c = TestCluster::new();
    c.server.load_yaml(WEB);
    c.server.load_yaml("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  template:\n    spec:\n      containers: [{name: db, image: postgres}]\n");
    c.server
        .fail_always(403, Match::any().verb("list").resource("statefulsets"));
    let out = c.run(&["audit", "-n", "shop", "-o", "json"]);
    out.code(4);
    let r = report(&out);
    assert_eq!(r["complete"], false);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["resource"], "statefulsets.apps");
    assert_eq!(errors[0]["namespace"], "shop");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("403")
            || errors[0]["message"].as_str().unwrap().contains("Forbidden"),
        "{}",
        errors[0]
    );
    // The rest was still audited.
    assert!(findings(&r).iter().any(|f| f["name"] == "web"));
    let table = c.run(&["audit", "-n", "shop"]);
    table.code(4);
    assert!(
        table
            .stdout
            .contains("cannot read statefulsets.apps in namespace shop"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("INCOMPLETE"));
}

#[test]
fn everything_failing_is_an_error_and_transient_failures_are_retried() {
    let c = TestCluster::new();
    c.server.load_yaml(WEB);
    c.server
        .fail_next(2, 503, Match::any().verb("list").resource("deployments"));
    let out = c.run(&["audit", "-n", "shop", "-o", "json"]);
    out.code(3);
    assert_eq!(report(&out)["complete"], true);

    c.server.fail_always(401, Match::any());
    let out = c.run(&["audit", "-n", "shop"]);
    out.code(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}

#[test]
fn clean_cluster_exits_0() {
    let c = TestCluster::new();
    c.server
        .insert(docker_secret("regcred", "ok", "registry.corp.example"));
    c.server.insert(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "ok"}, "imagePullSecrets": [{"name": "regcred"}]}));
    // The pod names no secret: the service account's applies.
    c.server.insert(pod("p", "ok", "registry.corp.example/team/app:1@sha256:4d5f1b3c2a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708", &[], None));
    let out = c.run(&["audit", "-n", "ok", "-o", "json"]);
    out.code(0);
    let r = report(&out);
    assert_eq!(r["findings"], json!([]), "{}", out.stdout);
    assert_eq!(r["summary"]["workloads"], 1);
}

#[test]
fn big_clusters_are_read_page_by_page() {
    let c = TestCluster::with(Options::default().synthesize_pods(1200));
    let out = c.run(&["audit", "-A", "-o", "json", "--fail-on=critical"]);
    assert!(out.code == 0 || out.code == 3, "{}", out.stderr);
    let r = report(&out);
    assert_eq!(r["complete"], true);
    let total_pods: u64 = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["workloads"].as_array().unwrap().iter())
        .filter(|w| w["container"] == "main")
        .map(|w| w["pods"].as_u64().unwrap())
        .sum();
    assert_eq!(total_pods, 1200);
    let pod_lists: Vec<String> = c
        .server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/pods")
        .map(|r| r.query.clone())
        .collect();
    assert!(pod_lists.len() >= 3, "{pod_lists:?}");
    assert!(pod_lists.iter().all(|p| p.contains("limit=500")));
    assert!(pod_lists.iter().any(|p| p.contains("continue=")));
    // No progress line without a terminal.
    assert!(!out.stderr.contains("reading the cluster"));
}

#[test]
fn several_contexts_are_audited_into_one_report() {
    let c = TestCluster::new();
    c.server.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: alpha-ns}\nspec:\n  containers: [{name: app, image: nginx}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: beta-ns}\nspec:\n  containers: [{name: app, image: nginx}]\n");
    let kc = c.server.kubeconfig_yaml().replace(
        "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n",
        "contexts:\n- name: alpha\n  context:\n    cluster: fake\n    user: fake\n    namespace: alpha-ns\n- name: beta\n  context:\n    cluster: fake\n    user: fake\n    namespace: beta-ns\n",
    ).replace("current-context: fake", "current-context: alpha");
    std::fs::write(&c.kubeconfig, kc).unwrap();
    let out = c.run(&[
        "audit",
        "--context",
        "alpha",
        "--context",
        "beta",
        "-o",
        "json",
    ]);
    out.code(3);
    let r = report(&out);
    let mut seen: Vec<(String, String)> = findings(&r)
        .iter()
        .map(|f| {
            (
                f["context"].as_str().unwrap().to_string(),
                f["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            ("alpha".to_string(), "a".to_string()),
            ("beta".to_string(), "b".to_string())
        ]
    );
    // A context that does not exist: with others, a partial report naming it.
    let out = c.run(&[
        "audit",
        "--context",
        "alpha",
        "--context",
        "nope",
        "-o",
        "json",
    ]);
    out.code(4);
    let r = report(&out);
    assert_eq!(r["errors"][0]["context"], "nope");
}
