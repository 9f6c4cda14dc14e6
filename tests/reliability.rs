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
        (
            write("proxied", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://10.0.0.1:6443', proxy-url: 'http://bob:hunter2@127.0.0.1:9/'}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: t}\n"),
            "proxy-url (proxy 127.0.0.1:9) is not supported: remove proxy-url, or run `kubectl proxy`",
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
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
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

#[test]
fn racing_writers_on_one_service_account_lose_no_entry() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let c = TestCluster::new();
    c.server.load_yaml("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder, namespace: web}\nimagePullSecrets: [{name: base}]\n");
    const ROUNDS: usize = 25;
    let done = AtomicBool::new(false);
    let theirs = AtomicUsize::new(0);
    std::thread::scope(|s| {
        // Another client keeps appending its own secrets with atomic server-side JSON patches
        // for as long as this tool is adding ours, one command at a time.
        s.spawn(|| {
            // Bounded, so a slow machine cannot grow the list without limit.
            while !done.load(Ordering::SeqCst) && theirs.load(Ordering::SeqCst) < 150 {
                let i = theirs.fetch_add(1, Ordering::SeqCst);
                let add = json!([{"op": "add", "path": "/imagePullSecrets/-", "value": {"name": format!("theirs-{i}")}}]);
                c.server.patch("sa", "web", "builder", add).unwrap();
                std::thread::sleep(Duration::from_millis(4));
            }
        });
        // Stops the other writer even if an assertion below fails, so a failure cannot hang.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _stop = StopOnDrop(&done);
        for i in 0..ROUNDS {
            let secret = format!("--secret=ours-{i}");
            // Under a relentless writer a command may give up (exit 1, nothing written); run
            // again as a user would. It must never report success while losing an entry.
            let ok = (0..5).any(|_| {
                let out = c.run(&["patch", "sa/builder", "-n", "web", &secret]);
                assert!(
                    out.code == 0 || out.stderr.contains("kept changing"),
                    "round {i}: {}",
                    out.stderr
                );
                out.code == 0
            });
            assert!(ok, "round {i} never succeeded");
        }
    });
    let theirs = theirs.load(Ordering::SeqCst);
    assert!(
        theirs > ROUNDS,
        "the other writer ran throughout ({theirs} writes)"
    );
    let sa = c.server.get("sa", "web", "builder").unwrap();
    let names: Vec<&str> = sa["imagePullSecrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1 + ROUNDS + theirs, "{names:?}");
    assert_eq!(names[0], "base");
    for i in 0..ROUNDS {
        assert!(
            names.contains(&format!("ours-{i}").as_str()),
            "ours-{i} lost: {names:?}"
        );
    }
    for i in 0..theirs {
        assert!(
            names.contains(&format!("theirs-{i}").as_str()),
            "theirs-{i} lost: {names:?}"
        );
    }
    // The race was real: some of our writes hit a changed object and were retried.
    let conflicts = c
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status >= 400)
        .count();
    eprintln!("{conflicts} of our patches met a concurrent change and were retried");
}

#[test]
fn exec_credential_plugins_supply_the_token() {
    let c = TestCluster::with(Options::default().tls(true));
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}}));
    let plugin = c.file(
        "cred-plugin.sh",
        format!(
            "#!/bin/sh\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            c.server.token()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The cluster part of the generated kubeconfig, with an exec user instead of a token.
    let base = c.server.kubeconfig_yaml();
    let cluster_part = base.split("users:").next().unwrap();
    let kc = c.file(
        "exec-kubeconfig",
        format!(
            "{cluster_part}users:\n- name: fake\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
            plugin.display()
        )
        .as_bytes(),
    );
    let kc = kc.display().to_string();
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
    assert_eq!(out.ok(), "secret/x created\n");
    assert!(!out.all().contains(c.server.token()));
}
