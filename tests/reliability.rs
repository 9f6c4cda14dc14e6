//! Faults and bad input: reads are retried with backoff (429 with Retry-After, 5xx, dropped
//! connections), writes are never retried blindly, timeouts are honoured, and every bad input
//! gets one clear `error: ` line with nothing written.
mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn with_secret() -> TestCluster {
    let c = TestCluster::new();
    c.server.insert(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "web"},
        "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}
    }));
    c
}

const OVERWRITE: [&str; 8] = [
    "create-secret",
    "regcred",
    "-n",
    "web",
    "--docker-server=reg.io",
    "--docker-username=u",
    "--docker-password=p",
    "--overwrite",
];

#[test]
fn reads_are_retried_on_5xx_429_and_dropped_connections() {
    for (status, drop) in [
        (503, false),
        (500, false),
        (502, false),
        (504, false),
        (429, false),
        (0, true),
    ] {
        let c = with_secret();
        let m = Match::any().verb("get").resource("secrets");
        if drop {
            c.server.drop_connections(m, Some(2));
        } else {
            c.server.fail_next(2, status, m);
        }
        let out = c.run(&OVERWRITE);
        assert_eq!(out.code, 0, "status {status} drop {drop}: {}", out.stderr);
        let gets = c
            .server
            .requests()
            .iter()
            .filter(|r| r.verb == "get" && r.resource == "secrets")
            .count();
        assert_eq!(gets, 3, "two failures then success for status {status}");
    }
}

#[test]
fn writes_are_not_retried_blindly() {
    let c = TestCluster::new();
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"web"}}));
    c.server
        .fail_next(1, 503, Match::writes().resource("secrets"));
    let out = c.run(&[
        "create-secret",
        "x",
        "-n",
        "web",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("ServiceUnavailable"),
        "{}",
        out.stderr
    );
    assert_eq!(
        c.server
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1
    );
    assert!(c.server.get("secret", "web", "x").is_none());
}

#[test]
fn reads_that_keep_failing_give_up_with_a_clear_error() {
    let c = with_secret();
    c.server
        .fail_always(503, Match::any().verb("get").resource("secrets"));
    let out = c.run(&OVERWRITE);
    out.code(1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert_eq!(
        c.server
            .requests()
            .iter()
            .filter(|r| r.verb == "get")
            .count(),
        5,
        "bounded attempts"
    );
    assert_eq!(
        c.server
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count(),
        0,
        "nothing half-written"
    );
}

#[test]
fn request_timeout_is_honoured() {
    let c = TestCluster::new();
    c.server.add_latency(Duration::from_secs(20), Match::any());
    let out = c.run(&[
        "create-secret",
        "x",
        "--docker-username=u",
        "--docker-password=p",
        "--request-timeout=1s",
    ]);
    out.code(1);
    assert!(
        out.stderr.contains("timed out") && out.stderr.contains("--request-timeout"),
        "{}",
        out.stderr
    );
}

#[test]
fn rejected_credentials_and_denied_verbs_are_named() {
    let c = TestCluster::new();
    let bad = c.file(
        "bad-token",
        c.server.kubeconfig_yaml_for("expired-token").as_bytes(),
    );
    let kc = bad.display().to_string();
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--docker-password=p",
        ],
        None,
        c.home(),
        &[("KUBECONFIG", &kc)],
    );
    out.code(1);
    assert!(
        out.stderr.contains("Unauthorized") && out.stderr.contains("refresh them"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("expired-token"));
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"web"}}));
    c.server
        .fail_always(403, Match::writes().resource("secrets"));
    let out = c.run(&[
        "create-secret",
        "x",
        "-n",
        "web",
        "--docker-username=u",
        "--docker-password=p",
    ]);
    out.code(1);
    assert!(
        out.stderr.contains("Forbidden") && out.stderr.contains("create resource \"secrets\""),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn broken_kubeconfigs_get_one_line_errors() {
    let home = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = home.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cases = [
        (write("garbage", "{{{ not yaml"), "invalid kubeconfig"),
        (write("nocontext", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"), "no context"),
        (
            write("badserver", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'not a url'}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: t}\n"),
            "invalid kubeconfig",
        ),
    ];
    for (path, needle) in cases {
        let out = run_with(
            &[
                "create-secret",
                "x",
                "--docker-username=u",
                "--docker-password=p",
                "--kubeconfig",
                &path,
            ],
            None,
            home.path(),
            &[],
        );
        out.code(1);
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains(needle),
            "{path}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--docker-password=p",
            "--kubeconfig",
            "/nonexistent/kc",
        ],
        None,
        home.path(),
        &[],
    );
    out.code(1);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--docker-password=p",
        ],
        None,
        home.path(),
        &[],
    );
    out.code(1);
    assert!(out.stderr.contains("no kubeconfig found"), "{}", out.stderr);
}

#[test]
fn binary_garbage_on_stdin_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = run_with(
        &["patch", "-f", "-", "--secret=x"],
        Some(&garbage),
        home.path(),
        &[],
    );
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("<stdin>"),
        "{}",
        out.stderr
    );
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=u",
            "--password-stdin",
            "--dry-run=client",
        ],
        Some(&garbage),
        home.path(),
        &[],
    );
    out.code(1);
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
}
