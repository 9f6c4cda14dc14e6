//! `create-secret` end to end: kubectl as the oracle for the Secret, the fake API server for
//! create / AlreadyExists / --overwrite / dry runs, and no password leaking anywhere.
mod common;

use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "S3cr3t-P@ss:wörd<&>";

fn kubectl_secret(kubectl: &std::path::Path, args: &[&str], fmt: &str) -> String {
    let out = std::process::Command::new(kubectl)
        .args(["create", "secret", "docker-registry"])
        .args(args)
        .args(["--dry-run=client", "-o", fmt])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn same_secret_as_kubectl_for_the_same_flags() {
    let Some(kubectl) = kubectl() else { return };
    let home = tempfile::tempdir().unwrap();
    let cases: Vec<Vec<String>> = vec![
        // default server, empty email
        vec![
            "s1".into(),
            "--docker-username=u".into(),
            format!("--docker-password={PASSWORD}"),
        ],
        vec![
            "s2".into(),
            "--docker-server=registry.example.com:5000".into(),
            "--docker-username=ci-bot".into(),
            "--docker-password=a:b:c".into(),
            "--docker-email=ci@example.com".into(),
        ],
        vec![
            "s3".into(),
            "--docker-server=https://ghcr.io/".into(),
            "--docker-username=Ünïcødé".into(),
            "--docker-password=пароль 密码 🔑".into(),
        ],
        vec![
            "s4".into(),
            "-n".into(),
            "team-a".into(),
            "--docker-username=u".into(),
            "--docker-password=\"quoted\\back\"".into(),
        ],
    ];
    for case in cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        for fmt in ["json", "yaml"] {
            let expected = kubectl_secret(&kubectl, &args, fmt);
            let mut ours: Vec<&str> = vec!["create-secret"];
            ours.extend(&args);
            let fmt_flag = format!("-o={fmt}");
            ours.extend(["--dry-run=client", fmt_flag.as_str()]);
            let got = run_with(&ours, None, home.path(), &[]);
            assert_eq!(
                got.ok().trim_end(),
                expected.trim_end(),
                "case {args:?} -o {fmt}"
            );
        }
    }
}

#[test]
fn password_from_stdin_or_file_matches_the_flag() {
    let home = tempfile::tempdir().unwrap();
    let by_flag = run_with(
        &[
            "create-secret",
            "s",
            "--docker-username=u",
            &format!("--docker-password={PASSWORD}"),
            "--dry-run=client",
            "-o",
            "json",
        ],
        None,
        home.path(),
        &[],
    );
    let stdin = format!("{PASSWORD}\n");
    let by_stdin = run_with(
        &[
            "create-secret",
            "s",
            "--docker-username=u",
            "--password-stdin",
            "--dry-run=client",
            "-o",
            "json",
        ],
        Some(stdin.as_bytes()),
        home.path(),
        &[],
    );
    let file = home.path().join("pw");
    std::fs::write(&file, format!("{PASSWORD}\r\n")).unwrap();
    let by_file = run_with(
        &[
            "create-secret",
            "s",
            "--docker-username=u",
            &format!("--password-file={}", file.display()),
            "--dry-run=client",
            "-o",
            "json",
        ],
        None,
        home.path(),
        &[],
    );
    assert_eq!(by_flag.ok(), by_stdin.ok());
    assert_eq!(by_flag.ok(), by_file.ok());
}

#[test]
fn creates_the_secret_in_the_contexts_namespace() {
    let c = TestCluster::new();
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}));
    let out = c.run_stdin(
        &[
            "create-secret",
            "regcred",
            "--docker-server=reg.example.com",
            "--docker-username=ci",
            "--password-stdin",
        ],
        Some(PASSWORD.as_bytes()),
    );
    assert_eq!(out.ok(), "secret/regcred created\n");
    let secret = c
        .server
        .get("secret", "default", "regcred")
        .expect("secret stored");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let cfg: Value = serde_json::from_slice(&secret_data(&secret, ".dockerconfigjson")).unwrap();
    assert_eq!(cfg["auths"]["reg.example.com"]["username"], "ci");
    assert_eq!(cfg["auths"]["reg.example.com"]["password"], PASSWORD);
    assert!(!out.all().contains(PASSWORD));
}

fn existing_secret(c: &TestCluster) {
    use base64::Engine;
    let cfg = r#"{"auths":{"other.io":{"username":"o","password":"op","auth":"bzpvcA=="},"reg.example.com":{"username":"old","password":"oldpw","auth":"b2xkOm9sZHB3"}}}"#;
    c.server.insert(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "web", "labels": {"team": "a"}},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {
            ".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg),
            "extra": base64::engine::general_purpose::STANDARD.encode("keep me"),
        }
    }));
}

#[test]
fn already_exists_without_overwrite_changes_nothing() {
    let c = TestCluster::new();
    existing_secret(&c);
    let before = c.server.get("secret", "web", "regcred").unwrap();
    let out = c.run_stdin(
        &[
            "create-secret",
            "regcred",
            "-n",
            "web",
            "--docker-server=reg.example.com",
            "--docker-username=ci",
            "--password-stdin",
        ],
        Some(PASSWORD.as_bytes()),
    );
    out.code(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"secrets "regcred" already exists"#),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--overwrite"), "{}", out.stderr);
    assert_eq!(c.server.get("secret", "web", "regcred").unwrap(), before);
    assert!(!out.all().contains(PASSWORD));
}

#[test]
fn overwrite_merges_and_keeps_other_registries_and_keys() {
    let c = TestCluster::new();
    existing_secret(&c);
    let out = c.run_stdin(
        &[
            "create-secret",
            "regcred",
            "-n",
            "web",
            "--docker-server=reg.example.com",
            "--docker-username=ci",
            "--password-stdin",
            "--overwrite",
        ],
        Some(PASSWORD.as_bytes()),
    );
    let stdout = out.ok();
    assert!(stdout.contains("secret/regcred configured"), "{stdout}");
    assert!(stdout.contains("replaced [reg.example.com]"), "{stdout}");
    assert!(stdout.contains("kept 1 other entry"), "{stdout}");
    let secret = c.server.get("secret", "web", "regcred").unwrap();
    let cfg: Value = serde_json::from_slice(&secret_data(&secret, ".dockerconfigjson")).unwrap();
    assert_eq!(cfg["auths"]["other.io"]["username"], "o");
    assert_eq!(cfg["auths"]["reg.example.com"]["username"], "ci");
    assert_eq!(secret_data(&secret, "extra"), b"keep me");
    assert_eq!(secret["metadata"]["labels"]["team"], "a");
    // The update was conditional on the resourceVersion it read.
    let put = c
        .server
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a PUT");
    assert!(put.body_json()["metadata"]["resourceVersion"].is_string());
    assert!(!out.all().contains(PASSWORD));
}

#[test]
fn overwrite_survives_a_concurrent_writer() {
    use base64::Engine;
    let c = TestCluster::new();
    existing_secret(&c);
    // Another client adds a registry between our read and our write: our PUT gets a conflict,
    // we re-read and merge again, and their entry survives.
    let theirs = r#"{"auths":{"other.io":{"auth":"bzpvcA=="},"theirs.io":{"auth":"dDpw"}}}"#;
    c.server.before_next_write(
        "secrets",
        "web",
        "regcred",
        json!({"data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(theirs)}}),
    );
    let out = c.run_stdin(
        &[
            "create-secret",
            "regcred",
            "-n",
            "web",
            "--docker-server=new.io",
            "--docker-username=ci",
            "--password-stdin",
            "--overwrite",
        ],
        Some(PASSWORD.as_bytes()),
    );
    out.ok();
    let secret = c.server.get("secret", "web", "regcred").unwrap();
    let cfg: Value = serde_json::from_slice(&secret_data(&secret, ".dockerconfigjson")).unwrap();
    let keys: Vec<&String> = cfg["auths"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["new.io", "other.io", "theirs.io"]);
}

#[test]
fn server_dry_run_writes_nothing() {
    let c = TestCluster::new();
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"web"}}));
    let out = c.run_stdin(
        &[
            "create-secret",
            "regcred",
            "-n",
            "web",
            "--docker-username=ci",
            "--password-stdin",
            "--dry-run=server",
            "-o",
            "yaml",
        ],
        Some(PASSWORD.as_bytes()),
    );
    assert!(out.ok().contains("kind: Secret"));
    assert!(c.server.get("secret", "web", "regcred").is_none());
    let post = c
        .server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a POST");
    assert!(
        post.dry_run && post.query.contains("dryRun=All"),
        "{post:?}"
    );
}

#[test]
fn client_dry_run_and_invalid_input_never_call_the_api() {
    let c = TestCluster::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "create-secret",
                "Bad_Name",
                "--docker-username=u",
                "--docker-password=p",
            ],
            "invalid secret name",
        ),
        (
            &[
                "create-secret",
                "",
                "--docker-username=u",
                "--docker-password=p",
            ],
            "a secret name is required",
        ),
        (
            &[
                "create-secret",
                "x",
                "--docker-username=a:b",
                "--docker-password=p",
            ],
            "must not contain ':'",
        ),
        (
            &[
                "create-secret",
                "x",
                "--docker-username=u",
                "--docker-password=p",
                "--docker-server=https://",
            ],
            "invalid --docker-server",
        ),
        (
            &[
                "create-secret",
                "x",
                "--docker-username=u",
                "--docker-password=p",
                "--docker-server=not a host",
            ],
            "invalid --docker-server",
        ),
        (
            &["create-secret", "x", "--docker-username=u"],
            "is required",
        ),
        (
            &["create-secret", "x", "--from-file=/nonexistent/config.json"],
            "no such file",
        ),
        (
            &["create-secret", "x", "--from-docker-config=/nonexistent"],
            "no such file",
        ),
    ];
    for (args, needle) in cases {
        let out = c.run(args);
        out.code(1);
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains(needle),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
    let bad_cfg = c.file("bad.json", b"{\"auths\": {\"x\": ");
    let out = c.run(&[
        "create-secret",
        "x",
        &format!("--from-file=.dockerconfigjson={}", bad_cfg.display()),
    ]);
    out.code(1);
    assert!(
        out.stderr
            .contains("not a valid docker config: malformed JSON at line 1"),
        "{}",
        out.stderr
    );
    c.run(&[
        "create-secret",
        "x",
        "--docker-username=u",
        "--docker-password=p",
        "--dry-run=client",
    ])
    .ok();
    assert!(c.server.requests().is_empty(), "{:?}", c.server.requests());
}

#[test]
fn from_docker_config_takes_only_the_named_registries() {
    let c = TestCluster::new();
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}));
    let cfg = c.file(
        "config.json",
        br#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},"ghcr.io":{"username":"g","password":"gp"},"quay.io":{"auth":"cTpxcA=="}},"credsStore":"desktop"}"#,
    );
    let out = c.run(&[
        "create-secret",
        "multi",
        &format!("--from-docker-config={}", cfg.display()),
        "--registry=index.docker.io",
        "--registry=ghcr.io",
        "--dry-run=client",
        "-o",
        "json",
    ]);
    let secret: Value = serde_json::from_str(out.ok()).unwrap();
    let data: Value = serde_json::from_slice(&secret_data(&secret, ".dockerconfigjson")).unwrap();
    let keys: Vec<&String> = data["auths"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ghcr.io", "https://index.docker.io/v1/"]);
    assert_eq!(
        data["auths"]["https://index.docker.io/v1/"]["username"],
        "hub"
    );
    let out = c.run(&[
        "create-secret",
        "x",
        &format!("--from-docker-config={}", cfg.display()),
        "--registry=nope.io",
    ]);
    out.code(1);
    assert!(
        out.stderr.contains("no entry for registry \"nope.io\""),
        "{}",
        out.stderr
    );
}

#[test]
fn password_never_appears_in_any_output_mode() {
    let c = TestCluster::new();
    existing_secret(&c);
    let stdin = PASSWORD.as_bytes();
    let base = [
        "create-secret",
        "regcred",
        "-n",
        "web",
        "--docker-server=reg.example.com",
        "--docker-username=ci",
        "--password-stdin",
    ];
    let variants: &[&[&str]] = &[
        &[],
        &["--overwrite"],
        &["--overwrite", "-o", "name"],
        &["--dry-run=server", "--overwrite"],
        &["-v=9"],
        &["-v=9", "--overwrite"],
    ];
    for extra in variants {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(*extra);
        let out = c.run_stdin(&args, Some(stdin));
        assert!(
            !out.all().contains(PASSWORD),
            "{args:?} leaked the password:\n{}",
            out.all()
        );
        assert!(
            !out.all().contains("Y2k6"),
            "{args:?} leaked the auth field"
        );
    }
    // --verify against a registry that is not there (loopback only): the error path leaks nothing.
    let out = c.run_stdin(
        &[
            "create-secret",
            "v",
            "-n",
            "web",
            "--docker-server=127.0.0.1:9",
            "--docker-username=ci",
            "--password-stdin",
            "--verify",
            "-v=9",
        ],
        Some(stdin),
    );
    out.code(1);
    assert!(!out.all().contains(PASSWORD), "{}", out.all());
    // A server that rejects our token: the error names the problem, not the token.
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--password-stdin",
            "-v=9",
            "--token=tok-SUPERSECRET",
            "--server",
            c.server.url(),
        ],
        Some(stdin),
        c.home(),
        &[],
    );
    out.code(1);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    assert!(
        !out.all().contains("tok-SUPERSECRET") && !out.all().contains(PASSWORD),
        "{}",
        out.all()
    );
}

#[test]
fn kubeconfig_selection_follows_kubectl() {
    let c = TestCluster::new();
    let out = c.run(&[
        "create-secret",
        "x",
        "--docker-username=u",
        "--docker-password=p",
        "--user=nobody",
    ]);
    out.code(1);
    assert!(
        out.stderr.contains(r#"auth info "nobody" does not exist"#),
        "{}",
        out.stderr
    );
    let out = c.run(&[
        "create-secret",
        "x",
        "--docker-username=u",
        "--docker-password=p",
        "--context=nope",
    ]);
    out.code(1);
    assert!(
        out.stderr
            .contains("context was not found for specified context: nope"),
        "{}",
        out.stderr
    );
    // KUBECONFIG with several files: the second one holds the context we select.
    let other = c.file(
        "second",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: two\n  cluster:\n    server: {}\ncontexts:\n- name: two\n  context:\n    cluster: two\n    user: two\n    namespace: team-two\nusers:\n- name: two\n  user:\n    token: {}\n",
            c.server.url(),
            c.server.token()
        )
        .as_bytes(),
    );
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-two"}}));
    let kc = format!("{}:{}", c.kubeconfig.display(), other.display());
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--docker-password=p",
            "--context=two",
        ],
        None,
        c.home(),
        &[("KUBECONFIG", &kc)],
    );
    out.ok();
    assert!(
        c.server.get("secret", "team-two", "x").is_some(),
        "namespace from the context"
    );
}

#[test]
fn https_with_the_clusters_ca_and_an_unreachable_server() {
    let c = TestCluster::with(Options::default().tls(true));
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}));
    c.run(&[
        "create-secret",
        "x",
        "--docker-username=u",
        "--docker-password=p",
    ])
    .ok();
    assert!(c.server.get("secret", "default", "x").is_some());
    // Nothing listens on port 9 of loopback: a clear error, quickly.
    let out = run_with(
        &[
            "create-secret",
            "y",
            "--docker-username=u",
            "--docker-password=p",
            "--server=http://127.0.0.1:9",
            "--token=t",
            "--request-timeout=2s",
        ],
        None,
        c.home(),
        &[],
    );
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("cannot reach the API server"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = run_with(
        &["create-secret", "x", "--no-such-flag"],
        None,
        home.path(),
        &[],
    );
    out.code(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-password=p",
            "--password-stdin",
        ],
        None,
        home.path(),
        &[],
    );
    out.code(2);
}

#[test]
fn attach_to_adds_the_secret_without_dropping_entries() {
    let c = TestCluster::new();
    c.server.load_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder, namespace: web}\nimagePullSecrets: [{name: old}]\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: front, namespace: web}\nspec:\n  selector: {matchLabels: {app: f}}\n  template:\n    metadata: {labels: {app: f}}\n    spec:\n      imagePullSecrets: [{name: a}]\n      containers: [{name: app, image: reg.example.com/team/app:1}]\n",
    );
    let args = [
        "create-secret",
        "regcred",
        "-n",
        "web",
        "--docker-server=reg.example.com",
        "--docker-username=ci",
        "--password-stdin",
        "--attach-to=sa/builder",
        "--attach-to=deployment/front",
    ];
    // A client dry run reads the targets but writes nothing.
    let mut dry: Vec<&str> = args.to_vec();
    dry.push("--dry-run=client");
    let out = c.run_stdin(&dry, Some(PASSWORD.as_bytes()));
    assert!(
        out.ok().contains(
            "serviceaccount/builder patched (dry run): imagePullSecrets [old] -> [old, regcred]"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(c.write_count(), 0);
    let out = c.run_stdin(&args, Some(PASSWORD.as_bytes()));
    let stdout = out.ok();
    assert!(stdout.contains("secret/regcred created"), "{stdout}");
    assert!(
        stdout.contains("deployment.apps/front patched: imagePullSecrets [a] -> [a, regcred]"),
        "{stdout}"
    );
    let sa = c.server.get("sa", "web", "builder").unwrap();
    assert_eq!(
        sa["imagePullSecrets"],
        json!([{"name": "old"}, {"name": "regcred"}])
    );
    let dep = c.server.get("deployment", "web", "front").unwrap();
    assert_eq!(
        dep["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "a"}, {"name": "regcred"}])
    );
    let out = c.run_stdin(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--password-stdin",
            "--attach-to=widget/x",
        ],
        Some(b"p"),
    );
    out.code(1);
    assert!(out.stderr.contains("--attach-to"), "{}", out.stderr);
}
