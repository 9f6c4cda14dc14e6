//! Client certificates and impersonation, end to end: the kubeconfig's `client-certificate`,
//! `client-key` (and `-data`) and `as`/`as-groups`, the `--client-certificate`, `--client-key`,
//! `--as` and `--as-group` flags, against the fake API server's x509 authenticator and
//! impersonation filter with RBAC on; and `kubectl` against the same server as the oracle.
mod common;

use std::process::Command;

use base64::Engine;
use common::*;
use serde_json::Value;

const ROLES: &str = include_str!("../deploy/rbac-audit.yaml");

/// Who may do what. Users: `carol` (client certificate, group `image-auditors`: the audit role
/// with secrets; may impersonate like alice), `mallory` (client certificate, no binding),
/// `alice` (token `tok-alice`, no audit role, may impersonate user `jane` and group
/// `auditors`), `jane` (the audit role without secrets, and no credential: reachable only by
/// impersonation). Group `auditors` may read secrets.
const BINDINGS: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: image-auditors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: image-sec-audit-secrets}
subjects: [{kind: Group, name: image-auditors, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: jane}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: image-sec-audit}
subjects: [{kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auditors-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: image-sec-audit-secrets}
subjects: [{kind: Group, name: auditors, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-jane}
rules:
- {apiGroups: [""], resources: [users], verbs: [impersonate], resourceNames: [jane]}
- {apiGroups: [""], resources: [groups], verbs: [impersonate], resourceNames: [auditors]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: impersonators}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-jane}
subjects:
- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}
- {kind: User, name: carol, apiGroup: rbac.authorization.k8s.io}
"#;

const ALICE: &str = "tok-alice";

struct Setup {
    c: TestCluster,
    ca: CertificateAuthority,
}

fn setup() -> Setup {
    let ca = CertificateAuthority::new("clients");
    let c = TestCluster::with(
        Options::default()
            .rbac(true)
            .client_ca(&ca)
            .user(ALICE, "alice", &[])
            .synthesize_pods(6),
    );
    c.server.load_yaml(ROLES);
    c.server.load_yaml(BINDINGS);
    Setup { c, ca }
}

/// Kubeconfig user fields naming `cert`'s files, written as NAME.crt and NAME.key.
fn cert_file_fields(
    c: &TestCluster,
    name: &str,
    cert: &ClientCertificate,
) -> Vec<(&'static str, String)> {
    let crt = c.file(&format!("{name}.crt"), cert.cert_pem.as_bytes());
    let key = c.file(&format!("{name}.key"), cert.key_pem.as_bytes());
    vec![
        ("client-certificate", crt.display().to_string()),
        ("client-key", key.display().to_string()),
    ]
}

/// Kubeconfig user fields holding `cert` inline (base64).
fn cert_data_fields(cert: &ClientCertificate) -> Vec<(&'static str, String)> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        ("client-certificate-data", b64(&cert.cert_pem)),
        ("client-key-data", b64(&cert.key_pem)),
    ]
}

/// `audit -A -o json` plus `flags`, as the kubeconfig user with `user`'s fields.
fn audit(c: &TestCluster, user: &[(&str, impl AsRef<str>)], flags: &[&str]) -> Out {
    let mut args = vec!["audit", "-A", "-o", "json"];
    args.extend(flags);
    c.run_as_user(user, &args, None)
}

fn report(out: &Out) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr))
}

/// stderr and the messages in the report's `errors` (unescaped).
fn messages(out: &Out) -> String {
    let mut text = out.stderr.clone();
    if let Ok(r) = serde_json::from_str::<Value>(&out.stdout) {
        for e in r["errors"].as_array().into_iter().flatten() {
            text.push_str(e["message"].as_str().unwrap_or_default());
            text.push('\n');
        }
    }
    text
}

#[track_caller]
fn assert_mentions(out: &Out, text: &str) {
    assert!(
        messages(out).contains(text),
        "expected {text:?} in:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// Who a request ran as: user, groups, impersonator.
type Identity = (String, Vec<String>, Option<String>);

fn identity(user: &str, groups: &[&str], impersonator: Option<&str>) -> Identity {
    (
        user.to_string(),
        groups.iter().map(|g| g.to_string()).collect(),
        impersonator.map(str::to_string),
    )
}

/// The distinct identities the server saw on resource requests (not discovery), then forgets
/// the log.
fn identities(c: &TestCluster) -> Vec<Identity> {
    let mut ids: Vec<Identity> = c
        .server
        .requests()
        .iter()
        .filter(|r| !r.resource.is_empty())
        .map(|r| (r.user.clone(), r.groups.clone(), r.impersonator.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    c.server.clear_requests();
    ids
}

/// The audit read everything, every request as `who`.
#[track_caller]
fn assert_complete_audit_as(c: &TestCluster, out: &Out, who: Identity) {
    assert!([0, 3].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    let r = report(out);
    assert_eq!(r["complete"], true, "{}", r["errors"]);
    assert_eq!(identities(c), [who]);
}

/// One `error: ` line (besides `-v` request logs), and neither the key's path nor any line of
/// its PEM anywhere.
#[track_caller]
fn assert_one_line_error_without_key(out: &Out, key_path: &str) {
    assert_ne!(out.code, 0, "{}", out.stdout);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("I0000 "))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(key_path), "{}", out.all());
    assert_key_absent(out, &std::fs::read_to_string(key_path).unwrap());
}

/// No line of the key's PEM body, nor the key in base64, anywhere in the output.
#[track_caller]
fn assert_key_absent(out: &Out, key_pem: &str) {
    let all = out.all();
    let b64 = base64::engine::general_purpose::STANDARD.encode(key_pem);
    assert!(!all.contains(&b64), "base64 key in output:\n{all}");
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!all.contains(line), "key material in output:\n{all}");
    }
}

fn carol() -> Identity {
    identity("carol", &["image-auditors", "system:authenticated"], None)
}

#[test]
fn client_certificate_files_in_the_kubeconfig_authenticate() {
    let Setup { c, ca } = setup();
    let user = cert_file_fields(&c, "carol", &ca.issue_client("carol", &["image-auditors"]));
    let out = audit(&c, &user, &[]);
    assert_complete_audit_as(&c, &out, carol());
}

#[test]
fn client_certificate_data_in_the_kubeconfig_authenticates() {
    let Setup { c, ca } = setup();
    let carol_cert = ca.issue_client("carol", &["image-auditors"]);
    let user = cert_data_fields(&carol_cert);
    let out = audit(&c, &user, &[]);
    assert_complete_audit_as(&c, &out, carol());
    // -v=9 logs the requests, never the key.
    let out = c.run_as_user(&user, &["audit", "-A", "-v=9"], None);
    assert!(out.stderr.contains("round_trippers"), "{}", out.stderr);
    assert_key_absent(&out, &carol_cert.key_pem);
}

#[test]
fn client_certificate_flags_override_the_kubeconfig() {
    let Setup { c, ca } = setup();
    let mallory = cert_data_fields(&ca.issue_client("mallory", &[]));
    // Without flags the kubeconfig's certificate is used: mallory may not audit.
    let out = audit(&c, &mallory, &[]);
    assert_mentions(&out, r#"User "mallory" cannot list resource"#);
    c.server.clear_requests();
    let carol_files = cert_file_fields(&c, "carol", &ca.issue_client("carol", &["image-auditors"]));
    let crt_flag = format!("--client-certificate={}", carol_files[0].1);
    let key_flag = format!("--client-key={}", carol_files[1].1);
    let out = audit(&c, &mallory, &[&crt_flag, &key_flag]);
    assert_complete_audit_as(&c, &out, carol());
}

#[test]
fn a_certificate_from_another_ca_is_refused_clearly_without_the_key() {
    let Setup { c, ca: _ } = setup();
    let other = CertificateAuthority::new("not-the-cluster-ca");
    let stranger = cert_file_fields(&c, "stranger", &other.issue_client("carol", &[]));
    let (crt, key) = (&stranger[0].1, &stranger[1].1);
    // From the kubeconfig, and from flags with no kubeconfig at all: the server answers 401
    // (kube-apiserver only requests a client certificate; it judges it per request).
    let from_kubeconfig = c.run_as_user(&stranger, &["audit", "-A"], None);
    let server_ca = c.file("server-ca.crt", c.server.ca_pem().unwrap().as_bytes());
    let from_flags = run_with(
        &[
            "audit",
            "-A",
            "-v=9",
            "--server",
            c.server.url(),
            "--certificate-authority",
            &server_ca.display().to_string(),
            "--client-certificate",
            crt,
            "--client-key",
            key,
        ],
        None,
        c.home(),
        &[],
    );
    for out in [&from_kubeconfig, &from_flags] {
        out.code(1);
        assert_one_line_error_without_key(out, key);
        assert!(
            out.stderr.contains("Error from server (Unauthorized)")
                && out.stderr.contains("client certificate"),
            "{}",
            out.stderr
        );
    }
    assert!(c.server.requests().iter().all(|r| r.status == 401));
}

#[test]
fn unusable_client_keys_are_named_without_their_contents() {
    let Setup { c, ca } = setup();
    let carol = cert_file_fields(&c, "carol", &ca.issue_client("carol", &[]));
    let other = cert_file_fields(&c, "other", &ca.issue_client("other", &[]));
    let garbage = c.file("garbage.key", b"not a key at all\n");
    let garbage = garbage.display().to_string();
    let (crt, key) = (&carol[0].1, &carol[1].1);
    let cases = [
        (
            crt,
            &other[1].1,
            "does not belong to the client certificate",
        ),
        (crt, &garbage, "holds no PEM private key"),
        (key, key, "holds no PEM certificate"),
    ];
    for (cert_path, key_path, expected) in cases {
        let user = [("client-certificate", cert_path), ("client-key", key_path)];
        let out = c.run_as_user(&user, &["audit", "-A"], None);
        out.code(1);
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
        assert_one_line_error_without_key(&out, key_path);
    }
    // Nothing reached the server.
    assert!(c.server.requests().is_empty());
}

#[test]
fn as_flags_run_the_audit_as_the_impersonated_user() {
    let Setup { c, .. } = setup();
    let alice = [("token", ALICE)];
    // alice herself may not audit: the server's Forbidden names her, the verb and the resource.
    let out = audit(&c, &alice, &[]);
    assert!([1, 4].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    assert_mentions(&out, r#"User "alice" cannot list resource"#);
    c.server.clear_requests();
    // As jane, whose binding alice does not have, the audit runs; only secrets are missing
    // (jane's role does not read them, and the report says so).
    let out = audit(&c, &alice, &["--as=jane"]);
    out.code(4);
    let errors = report(&out)["errors"].clone();
    let errors = errors.as_array().unwrap();
    assert!(
        errors.iter().all(|e| e["resource"] == "secrets"),
        "{errors:?}"
    );
    assert_eq!(
        identities(&c),
        [identity("jane", &["system:authenticated"], Some("alice"))]
    );
    // With --as-group auditors jane also reads secrets: the audit is complete.
    let out = audit(&c, &alice, &["--as=jane", "--as-group=auditors"]);
    let jane_auditor = identity("jane", &["auditors", "system:authenticated"], Some("alice"));
    assert_complete_audit_as(&c, &out, jane_auditor);
}

#[test]
fn kubeconfig_as_and_as_groups_impersonate_and_flags_override_them() {
    let Setup { c, ca } = setup();
    // A client-certificate user impersonates too (carol may impersonate jane).
    let mut user = cert_data_fields(&ca.issue_client("carol", &[]));
    user.extend([("as", "jane".into()), ("as-groups", "[auditors]".into())]);
    let out = audit(&c, &user, &[]);
    let jane_auditor = identity("jane", &["auditors", "system:authenticated"], Some("carol"));
    assert_complete_audit_as(&c, &out, jane_auditor);
    // --as replaces the kubeconfig's `as`, and carol may not impersonate root.
    let out = audit(&c, &user, &["--as=root"]);
    assert_mentions(
        &out,
        r#"users "root" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope"#,
    );
}

#[test]
fn denied_impersonation_is_named() {
    let Setup { c, .. } = setup();
    let alice = [("token", ALICE)];
    // Not allowed to impersonate the user: a command that needs one request fails with one line.
    let create = [
        "create-secret",
        "regcred",
        "-n",
        "web",
        "--docker-username=u",
        "--docker-password=p",
        "--as=root",
    ];
    let out = c.run_as_user(&alice, &create, None);
    out.code(1);
    assert_eq!(
        out.stderr.trim_end(),
        r#"error: Error from server (Forbidden): users "root" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope; ask a cluster admin for that permission (see docs/RBAC.md for what each command needs)"#
    );
    // Allowed to impersonate jane, not the group.
    let out = audit(&c, &alice, &["--as=jane", "--as-group=admins"]);
    assert!([1, 4].contains(&out.code), "{}\n{}", out.stdout, out.stderr);
    assert_mentions(
        &out,
        r#"groups "admins" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope"#,
    );
    // Every request was refused before it ran.
    assert!(c
        .server
        .requests()
        .iter()
        .all(|r| r.status == 403 && r.user.is_empty()));
}

#[test]
fn as_group_without_as_is_refused_before_any_request() {
    let Setup { c, .. } = setup();
    let out = audit(&c, &[("token", ALICE)], &["--as-group=auditors"]);
    out.code(2);
    assert!(
        out.stderr
            .starts_with("error: impersonating groups needs a user to impersonate"),
        "{}",
        out.stderr
    );
    let out = audit(&c, &[("token", ALICE), ("as-groups", "[auditors]")], &[]);
    out.code(1);
    assert_mentions(&out, "needs a user to impersonate");
    assert!(c.server.requests().is_empty());
}

/// `kubectl` as the oracle: against the same fake server with the same credentials and flags,
/// it authenticates and impersonates as the same identity, so the fake behaves like
/// kube-apiserver where the two can be compared.
#[test]
fn kubectl_and_the_plugin_are_the_same_identity() {
    let Some(kubectl) = kubectl() else { return };
    let Setup { c, ca } = setup();
    let user = cert_file_fields(&c, "carol", &ca.issue_client("carol", &["image-auditors"]));
    let kc = c.file(
        "kubeconfig-kubectl",
        c.server.kubeconfig_yaml_with_user(&user).as_bytes(),
    );
    let run_kubectl = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .args(args)
            .env_clear()
            .env("HOME", c.home())
            .env("KUBECONFIG", &kc)
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let cases: [&[&str]; 3] = [&[], &["--as=jane"], &["--as=jane", "--as-group=auditors"]];
    for flags in cases {
        let mut args = vec!["get", "pods", "-A"];
        args.extend(flags);
        run_kubectl(&args).ok();
        let by_kubectl = identities(&c);
        let out = audit(&c, &user, flags);
        assert!(
            [0, 3, 4].contains(&out.code),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(identities(&c), by_kubectl, "{flags:?}");
    }
    // Denied impersonation and a certificate from another CA fail on both, with the same
    // status.
    let out = run_kubectl(&["get", "pods", "-A", "--as=root"]);
    assert_ne!(out.code, 0);
    assert_mentions(
        &out,
        r#"users "root" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope"#,
    );
    let stranger = CertificateAuthority::new("other").issue_client("carol", &[]);
    let stranger = cert_file_fields(&c, "stranger", &stranger);
    let out = run_kubectl(&[
        "get",
        "pods",
        "-A",
        &format!("--client-certificate={}", stranger[0].1),
        &format!("--client-key={}", stranger[1].1),
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    assert!(c.server.requests().iter().any(|r| r.status == 401));
}
