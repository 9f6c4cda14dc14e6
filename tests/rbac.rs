//! Least privilege, against the fake API server's RBAC authorizer with the shipped roles
//! (`deploy/rbac-audit.yaml`): what each role can do, how a denial is reported (the server's
//! Forbidden message naming verb and resource), and that `docs/RBAC.md` lists exactly what the
//! commands request.
mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

const ROLES: &str = include_str!("../deploy/rbac-audit.yaml");

const SECRETS_ALL: &str = "tok-secrets-all";
const READ_ONLY: &str = "tok-read-only";
const SECRETS_WEB: &str = "tok-secrets-web";
const NOBODY: &str = "tok-nobody";
const NO_PATCH: &str = "tok-no-patch";
const NO_CREATE: &str = "tok-no-create";

fn cluster_role_binding(name: &str, user: &str, role: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}})
}

fn role_binding(name: &str, ns: &str, user: &str, kind: &str, role: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}})
}

fn pull_secret(name: &str, ns: &str) -> Value {
    use base64::Engine;
    let cfg = json!({"auths": {"reg.example.com": {"username": "u", "password": "p",
        "auth": base64::engine::general_purpose::STANDARD.encode("u:p")}}});
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}})
}

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: front, namespace: web}
spec:
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      imagePullSecrets: [{name: regcred}]
      containers:
      - {name: app, image: "reg.example.com/team/front:1.2", imagePullPolicy: Always,
         securityContext: {readOnlyRootFilesystem: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
spec:
  imagePullSecrets: [{name: regcred}]
  containers:
  - {name: api, image: "reg.example.com/team/api:2.0", imagePullPolicy: Always,
     securityContext: {readOnlyRootFilesystem: true}}
"#;

fn cluster() -> TestCluster {
    let opts = Options::default()
        .rbac(true)
        .user(SECRETS_ALL, "alice", &[])
        .user(READ_ONLY, "bob", &[])
        .user(SECRETS_WEB, "carol", &[])
        .user(NOBODY, "dave", &[])
        .user(NO_PATCH, "erin", &[])
        .user(NO_CREATE, "frank", &[]);
    let c = TestCluster::with(opts);
    c.server.load_yaml(ROLES);
    c.server.load_yaml(WORKLOADS);
    c.server.insert(pull_secret("regcred", "web"));
    c.server.insert(pull_secret("regcred", "shop"));
    c.server.insert(cluster_role_binding(
        "alice",
        "alice",
        "image-sec-audit-secrets",
    ));
    c.server
        .insert(cluster_role_binding("bob", "bob", "image-sec-audit"));
    c.server.insert(role_binding(
        "carol",
        "web",
        "carol",
        "ClusterRole",
        "image-sec-audit-secrets",
    ));
    // erin may read service accounts but not patch them.
    c.server.insert(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "sa-read", "namespace": "web"},
        "rules": [{"apiGroups": [""], "resources": ["serviceaccounts", "secrets"], "verbs": ["get", "list"]}]}));
    c.server
        .insert(role_binding("erin", "web", "erin", "Role", "sa-read"));
    // frank may read and update secrets, but not create them.
    c.server.insert(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "secret-update", "namespace": "web"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"]}]}),
    );
    c.server.insert(role_binding(
        "frank",
        "web",
        "frank",
        "Role",
        "secret-update",
    ));
    c
}

/// Runs as the user with `token` (its own kubeconfig).
fn run_as(c: &TestCluster, token: &str, args: &[&str], stdin: Option<&[u8]>) -> Out {
    c.run_as_user(&[("token", token)], args, stdin)
}

fn report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

#[test]
fn audit_with_the_secrets_role_is_complete() {
    let c = cluster();
    let out = run_as(&c, SECRETS_ALL, &["audit", "-A", "-o", "json"], None);
    assert!([0, 3].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    let r = report(&out);
    assert_eq!(r["complete"], true, "{}", r["errors"]);
    assert_eq!(r["errors"].as_array().map_or(0, Vec::len), 0);
    // The credential checks ran: both pods have a usable pull secret.
    assert!(
        !r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "missing-pull-secret" || f["rule"] == "pull-secret-not-found"),
        "{}",
        r["findings"]
    );
    // A RoleBinding to the same ClusterRole gives a complete audit of that namespace.
    let out = run_as(&c, SECRETS_WEB, &["audit", "-n", "web", "-o", "json"], None);
    assert!([0, 3].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(report(&out)["complete"], true);
    // ...but not of the cluster.
    let out = run_as(&c, SECRETS_WEB, &["audit", "-A", "-o", "json"], None);
    assert!([1, 4].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.all().contains("cannot list resource"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn audit_with_the_read_only_role_is_partial_and_names_secrets() {
    let c = cluster();
    let out = run_as(&c, READ_ONLY, &["audit", "-A", "-o", "json"], None);
    out.code(4);
    let r = report(&out);
    assert_eq!(r["complete"], false);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "only the secrets are missing: {errors:?}");
    assert_eq!(errors[0]["resource"], "secrets");
    let msg = errors[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("Forbidden") && msg.contains(r#"User "bob" cannot list resource "secrets""#),
        "documented Forbidden wording: {msg}"
    );
    // The table says so too.
    let out = run_as(&c, READ_ONLY, &["audit", "-A"], None);
    out.code(4);
    assert!(out.stdout.contains("INCOMPLETE"), "{}", out.stdout);
    assert!(out.stdout.contains("secrets"), "{}", out.stdout);
}

#[test]
fn a_user_without_any_binding_is_told_what_is_denied() {
    let c = cluster();
    for args in [
        &["audit", "-A", "-o", "json"][..],
        &["audit", "-n", "web", "-o", "json"][..],
    ] {
        let out = run_as(&c, NOBODY, args, None);
        assert!(
            [1, 4].contains(&out.code),
            "{args:?}: {}\n{}",
            out.stdout,
            out.stderr
        );
        let text = out.all();
        assert!(
            text.contains(r#"User "dave" cannot list resource"#),
            "{args:?} names the verb and resource:\n{text}"
        );
        if out.code == 1 {
            assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
            assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        }
    }
}

#[test]
fn patch_without_the_patch_verb_is_refused_with_the_servers_message() {
    let c = cluster();
    let out = run_as(
        &c,
        NO_PATCH,
        &["patch", "sa/default", "-n", "web", "--secret=regcred"],
        None,
    );
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ")
            && out.stderr.contains("Forbidden")
            && out
                .stderr
                .contains(r#"User "erin" cannot patch resource "serviceaccounts""#),
        "{}",
        out.stderr
    );
    let sa = c.server.get("sa", "web", "default").unwrap();
    assert!(
        sa.get("imagePullSecrets").is_none(),
        "nothing written: {sa}"
    );
    // A user who may not even read the target is told about `get`.
    let out = run_as(
        &c,
        NOBODY,
        &["patch", "deploy/front", "-n", "web", "--secret=regcred"],
        None,
    );
    out.code(1);
    assert!(
        out.stderr
            .contains(r#"cannot get resource "deployments" in API group "apps""#),
        "{}",
        out.stderr
    );
}

#[test]
fn create_secret_without_create_names_create_and_secrets() {
    let c = cluster();
    let out = run_as(
        &c,
        NO_CREATE,
        &[
            "create-secret",
            "newcred",
            "-n",
            "web",
            "--docker-server=reg.example.com",
            "--docker-username=u",
            "--password-stdin",
        ],
        Some(b"pw\n"),
    );
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ")
            && out
                .stderr
                .contains(r#"User "frank" cannot create resource "secrets""#),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(c.server.get("secret", "web", "newcred").is_none());
    // docs/RBAC.md: `create` is needed even with --overwrite (the create is tried first; an
    // existing secret is then read and updated). Without it, the denial is named.
    let out = run_as(
        &c,
        NO_CREATE,
        &[
            "create-secret",
            "regcred",
            "-n",
            "web",
            "--docker-server=ghcr.io",
            "--docker-username=u",
            "--password-stdin",
            "--overwrite",
        ],
        Some(b"pw\n"),
    );
    out.code(1);
    assert!(
        out.stderr
            .contains(r#"User "frank" cannot create resource "secrets""#),
        "{}",
        out.stderr
    );
}

/// (verb, resource) pairs the server saw since `from`.
fn verbs(c: &TestCluster, from: usize) -> BTreeSet<(String, String)> {
    c.server.requests()[from..]
        .iter()
        .filter(|r| !r.resource.is_empty())
        .map(|r| (r.verb.clone(), r.resource.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(v, r)| (v.to_string(), r.to_string()))
        .collect()
}

/// What each command requests, as admin (nothing denied), against docs/RBAC.md's table.
#[test]
fn docs_rbac_table_matches_what_the_commands_request() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RBAC.md")).unwrap();
    let c = cluster();
    c.server.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: front-1, namespace: web, labels: {app: front}}\nspec:\n  serviceAccountName: default\n  containers: [{name: app, image: nginx}]\n");
    let check = |what: &str, args: &[&str], stdin: Option<&[u8]>, allowed: &[(&str, &str)]| {
        let from = c.server.requests().len();
        let out = c.run_stdin(args, stdin);
        assert!([0, 3].contains(&out.code), "{what}: {}", out.stderr);
        let seen = verbs(&c, from);
        let allowed = pairs(allowed);
        let extra: Vec<_> = seen.difference(&allowed).collect();
        assert!(
            extra.is_empty(),
            "{what} requested {extra:?}, which docs/RBAC.md does not list (saw {seen:?})"
        );
        eprintln!("{what}: {seen:?}");
        seen
    };
    let pw = Some(&b"pw\n"[..]);
    let create = [
        "create-secret",
        "c1",
        "-n",
        "web",
        "--docker-username=u",
        "--password-stdin",
    ];
    check("create-secret", &create, pw, &[("create", "secrets")]);
    let mut overwrite = create.to_vec();
    overwrite.push("--overwrite");
    check(
        "create-secret --overwrite",
        &overwrite,
        pw,
        &[
            ("create", "secrets"),
            ("get", "secrets"),
            ("update", "secrets"),
        ],
    );
    let mut attach = overwrite.clone();
    attach.push("--attach-to=deploy/front");
    check(
        "create-secret --attach-to",
        &attach,
        pw,
        &[
            ("create", "secrets"),
            ("get", "secrets"),
            ("update", "secrets"),
            ("get", "deployments"),
            ("patch", "deployments"),
        ],
    );
    let optional = [
        ("get", "secrets"),
        ("list", "pods"),
        ("get", "replicasets"),
        ("get", "jobs"),
    ];
    let mut allowed = vec![("get", "serviceaccounts"), ("patch", "serviceaccounts")];
    allowed.extend(optional);
    check(
        "patch sa",
        &["patch", "sa/default", "-n", "web", "--secret=regcred"],
        None,
        &allowed,
    );
    let mut allowed = vec![
        ("get", "deployments"),
        ("patch", "deployments"),
        ("list", "deployments"),
    ];
    allowed.extend(optional);
    check(
        "patch deploy -l",
        &["patch", "deploy", "--all", "-n", "web", "--secret=other"],
        None,
        &allowed,
    );
    // A live Pod cannot take new imagePullSecrets: patch reads it (and its owner) and refuses.
    let from = c.server.requests().len();
    let out = c.run(&["patch", "pod/front-1", "-n", "web", "--secret=regcred"]);
    out.code(1);
    let mut allowed = vec![("get", "pods"), ("patch", "pods")];
    allowed.extend(optional);
    let seen = verbs(&c, from);
    assert!(seen.is_subset(&pairs(&allowed)), "patch pod: {seen:?}");
    let audit: &[(&str, &str)] = &[
        ("list", "pods"),
        ("list", "serviceaccounts"),
        ("list", "replicationcontrollers"),
        ("list", "events"),
        ("list", "deployments"),
        ("list", "replicasets"),
        ("list", "statefulsets"),
        ("list", "daemonsets"),
        ("list", "jobs"),
        ("list", "cronjobs"),
        ("list", "secrets"),
    ];
    let without_events: Vec<_> = audit
        .iter()
        .filter(|(_, r)| *r != "events")
        .copied()
        .collect();
    let seen = check("audit -A", &["audit", "-A", "-o", "json"], None, audit);
    assert_eq!(
        seen,
        pairs(&without_events),
        "events only when a pod is failing"
    );
    // A pod stuck pulling (events are read to say why) with a pull secret that does not exist
    // in its namespace (a namespaced audit looks for it in other namespaces, cluster-wide).
    c.server.insert(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "stuck", "namespace": "web"},
        "spec": {"imagePullSecrets": [{"name": "elsewhere"}],
                 "containers": [{"name": "app", "image": "reg.example.com/team/x:1"}]},
        "status": {"containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "image": "reg.example.com/team/x:1", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}));
    c.server.insert(pull_secret("elsewhere", "shop"));
    let seen = check(
        "audit -A (failing pod)",
        &["audit", "-A", "-o", "json"],
        None,
        audit,
    );
    assert_eq!(seen, pairs(audit), "audit lists every documented resource");
    let from = c.server.requests().len();
    check(
        "audit -n",
        &["audit", "-n", "web", "-o", "json"],
        None,
        audit,
    );
    let scopes: BTreeSet<(String, String, String)> = c.server.requests()[from..]
        .iter()
        .map(|r| (r.verb.clone(), r.resource.clone(), r.namespace.clone()))
        .collect();
    assert!(
        scopes.contains(&("list".into(), "secrets".into(), "".into())),
        "the documented optional cluster-wide secret lookup: {scopes:?}"
    );
    // Denied, that lookup is skipped: carol (secrets in web only) still gets a complete report.
    let out = run_as(&c, SECRETS_WEB, &["audit", "-n", "web", "-o", "json"], None);
    assert!([0, 3].contains(&out.code), "{}", out.stderr);
    assert_eq!(report(&out)["complete"], true, "{}", out.stdout);
    // The shipped roles grant what audit requests.
    for (verb, resource) in audit {
        assert!(
            ROLES.contains(resource) && doc.contains(resource),
            "{verb} {resource} granted and documented"
        );
    }
    // The doc's table names these verbs per command.
    for needle in [
        "`create` secrets",
        "`get`, `update` secrets",
        "`get`, `patch` on the target kind",
        "also `list`",
        "`list` pods, serviceaccounts, replicationcontrollers, events",
        "`list` secrets as well",
        "events (only when a pod is failing to pull",
        "at cluster scope, by name",
        "`get` secrets in the namespace",
    ] {
        assert!(doc.contains(needle), "docs/RBAC.md: {needle}");
    }
    // Offline commands make no request at all.
    let manifests = c.file(
        "m/pod.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: nginx}]\n",
    );
    let m = manifests.display().to_string();
    let from = c.server.requests().len();
    let out = c.run(&["audit", "-f", &m]);
    assert!([0, 3].contains(&out.code), "{}", out.stderr);
    let out = c.run(&["patch", "-f", &m, "--secret=x"]);
    out.ok();
    assert_eq!(c.server.requests().len(), from, "-f works offline");
}

/// `inspect --pull-secret` needs only `get` secrets in the namespace.
#[test]
fn inspect_pull_secret_needs_only_get_secrets() {
    let c = cluster();
    let from = c.server.requests().len();
    let out = c.run(&[
        "inspect",
        "127.0.0.1:9/team/app:1",
        "-n",
        "web",
        "--pull-secret=regcred",
        "--insecure-registry=127.0.0.1:9",
    ]);
    out.code(1);
    assert_eq!(verbs(&c, from), pairs(&[("get", "secrets")]));
    // A user who cannot read it is told so.
    let out = run_as(
        &c,
        READ_ONLY,
        &[
            "inspect",
            "127.0.0.1:9/team/app:1",
            "-n",
            "web",
            "--pull-secret=regcred",
        ],
        None,
    );
    out.code(1);
    assert!(
        out.stderr.contains(r#"cannot get resource "secrets""#),
        "{}",
        out.stderr
    );
}

/// The in-cluster example audits cleanly: it is what we tell users to deploy.
#[test]
fn deploy_manifests_audit_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let out = run_with(&["audit", "-f", dir, "-o", "json"], None, home.path(), &[]);
    out.code(0);
    let r = report(&out);
    assert_eq!(r["complete"], true, "{}", r["errors"]);
    assert_eq!(r["summary"]["workloads"], 1, "{}", out.stdout);
    for f in r["findings"].as_array().unwrap() {
        let sev = f["severity"].as_str().unwrap();
        assert!(
            !["critical", "high"].contains(&sev),
            "our own example has a {sev} finding: {f}"
        );
    }
    // And the roles are loadable by a real-semantics server (every document is a known kind).
    let c = TestCluster::new();
    assert_eq!(c.server.load_yaml(ROLES).len(), 2);
    assert_eq!(
        c.server
            .load_yaml(&std::fs::read_to_string(format!("{dir}/cronjob-audit.yaml")).unwrap())
            .len(),
        4
    );
}
