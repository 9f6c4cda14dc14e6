//! Secrets never leak: every command, every output format, with and without `-v=9`, on the
//! success paths and on the error paths (401, 403, 500, conflicts, malformed secret data, an
//! unreachable registry, a panic), with a recognisable password and bearer token. Neither the
//! password, the token, nor the base64 `auth` of user:password may appear in stdout or stderr.
//!
//! One deliberate exception, checked separately: `patch -f` prints the user's own manifests
//! back (patched), so a Secret that was in its input is in its output, as with `kubectl patch
//! --local`. Its stderr (errors, `-v`) must still be clean.
mod common;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const PW: &str = "PW-7f3a9c-LEAK";
const TOK: &str = "TOK-91be44-LEAK";
const USER: &str = "ci-bot";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// base64(`ci-bot:PW-7f3a9c-LEAK`), the `auth` field.
fn auth() -> String {
    b64(&format!("{USER}:{PW}"))
}

fn needles() -> Vec<String> {
    vec![PW.to_string(), TOK.to_string(), auth(), b64(PW), b64(TOK)]
}

/// Asserts that nothing secret is in `text`.
#[track_caller]
fn assert_clean_text(what: &str, text: &str) {
    for n in needles() {
        assert!(
            !text.contains(&n),
            "{what}: leaked {n:?}\n----\n{text}\n----"
        );
    }
    assert!(
        !text.contains("Bearer "),
        "{what}: an Authorization value reached the output\n{text}"
    );
}

/// Asserts both streams are clean; at `-v=9` the log names requests but no header value.
#[track_caller]
fn assert_clean(what: &str, out: &Out, verbose: bool) {
    assert_clean_text(what, &out.all());
    assert!(
        !out.stderr.contains("panicked"),
        "{what}: panicked\n{}",
        out.stderr
    );
    if verbose && out.stderr.contains("round_trippers") {
        for line in out.stderr.lines().filter(|l| l.contains("Authorization")) {
            assert!(
                line.contains("Authorization: <masked>"),
                "{what}: header value logged: {line}"
            );
        }
    }
}

fn dockerconfig(registry: &str) -> Value {
    json!({"auths": {registry: {"username": USER, "password": PW, "auth": auth()}}})
}

fn secret(name: &str, ns: &str, ty: &str, key: &str, payload: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "type": ty, "data": {key: b64(payload)}})
}

fn pod(name: &str, image: &str, secrets: &[&str]) -> Value {
    let ips: Vec<Value> = secrets.iter().map(|s| json!({"name": s})).collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "web"},
        "spec": {"imagePullSecrets": ips,
                 "containers": [{"name": "app", "image": image, "imagePullPolicy": "Always"}]}})
}

/// A cluster whose admin token is `TOK` (so it is in the kubeconfig), with a good pull secret,
/// malformed ones, and pods referencing them.
fn cluster() -> TestCluster {
    let c = TestCluster::with(Options::default().token(TOK));
    let good = dockerconfig("reg.example.com").to_string();
    c.server.insert(secret(
        "regcred",
        "web",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        &good,
    ));
    // Malformed: not JSON (the password is in the broken text), an auth that is not base64,
    // an auth that decodes to no `user:pass`, wrong key, wrong type.
    for (name, ty, key, payload) in [
        (
            "bad-json",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            format!("{{\"auths\": {{\"reg.example.com\": {{\"password\": \"{PW}\""),
        ),
        (
            "bad-auth",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            json!({"auths": {"reg.example.com": {"auth": format!("{PW}!!not-base64")}}})
                .to_string(),
        ),
        (
            "no-colon",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            json!({"auths": {"reg.example.com": {"auth": b64(PW)}}}).to_string(),
        ),
        (
            "wrong-key",
            "kubernetes.io/dockerconfigjson",
            "config.json",
            good.clone(),
        ),
        ("opaque", "Opaque", ".dockerconfigjson", good.clone()),
        (
            "dockercfg",
            "kubernetes.io/dockercfg",
            ".dockercfg",
            format!(
                "{{\"reg.example.com\": {{\"auth\": \"{}\", \"password\": \"{PW}\"",
                auth()
            ),
        ),
    ] {
        c.server.insert(secret(name, "web", ty, key, &payload));
    }
    c.server
        .insert(pod("good", "reg.example.com/team/app:1", &["regcred"]));
    for (i, s) in [
        "bad-json",
        "bad-auth",
        "no-colon",
        "wrong-key",
        "opaque",
        "dockercfg",
    ]
    .iter()
    .enumerate()
    {
        c.server
            .insert(pod(&format!("bad-{i}"), "reg.example.com/team/app:1", &[s]));
    }
    c.server
        .insert(pod("missing", "reg.example.com/team/app:1", &["nope"]));
    c
}

/// Runs `args` twice, without and with `-v=9`, with the password on stdin, and checks both.
fn matrix(c: &TestCluster, what: &str, args: &[&str], stdin: bool, codes: &[i32]) {
    for verbose in [false, true] {
        let mut a: Vec<&str> = args.to_vec();
        if verbose {
            a.push("-v=9");
        }
        let input = format!("{PW}\n");
        let before = c.server.requests().len();
        let out = c.run_stdin(&a, stdin.then_some(input.as_bytes()));
        let api_calls = c.server.requests().len() > before;
        assert!(
            codes.contains(&out.code),
            "{what} {a:?}: exit {} not in {codes:?}\nstdout:\n{}\nstderr:\n{}",
            out.code,
            out.stdout,
            out.stderr
        );
        assert_clean(&format!("{what} {a:?}"), &out, verbose);
        if verbose && api_calls {
            assert!(
                out.stderr.contains("round_trippers"),
                "{what}: -v=9 logs the requests\n{}",
                out.stderr
            );
        }
    }
}

const CREATE: [&str; 6] = [
    "create-secret",
    "regcred",
    "-n",
    "web",
    "--docker-server=reg.example.com",
    "--password-stdin",
];

fn create(extra: &[&str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = CREATE.to_vec();
    v.push("--docker-username=ci-bot");
    for e in extra {
        v.push(Box::leak(e.to_string().into_boxed_str()));
    }
    v
}

#[test]
fn create_secret_success_and_dry_runs() {
    let c = cluster();
    matrix(&c, "new", &create(&["--overwrite"]), true, &[0]);
    for o in ["json", "yaml", "name"] {
        let o = format!("-o={o}");
        matrix(&c, "overwrite", &create(&["--overwrite", &o]), true, &[0]);
        matrix(&c, "client", &create(&["--dry-run=client", &o]), true, &[0]);
        matrix(
            &c,
            "server",
            &create(&["--overwrite", "--dry-run=server", &o]),
            true,
            &[0],
        );
    }
    // Already exists, without --overwrite.
    matrix(&c, "exists", &create(&[]), true, &[1]);
    // --attach-to
    matrix(
        &c,
        "attach",
        &create(&["--overwrite", "--attach-to=sa/default"]),
        true,
        &[0],
    );
    // --from-docker-config
    let cfg = c.file(
        "config.json",
        dockerconfig("reg.example.com").to_string().as_bytes(),
    );
    let from = format!("--from-docker-config={}", cfg.display());
    for extra in [
        vec!["--dry-run=client", "-o", "yaml"],
        vec!["--overwrite"],
        vec!["--registry=other.io", "--dry-run=client"],
    ] {
        let mut a = vec!["create-secret", "fromcfg", "-n", "web", from.as_str()];
        a.extend(extra);
        matrix(&c, "from-docker-config", &a, false, &[0, 1]);
    }
    // A malformed docker config (the password on the broken line).
    let bad = c.file(
        "bad.json",
        format!("{{\"auths\": {{\"reg.example.com\": {{\"password\": \"{PW}\", \"auth\": 12")
            .as_bytes(),
    );
    let from = format!("--from-docker-config={}", bad.display());
    matrix(
        &c,
        "bad docker config",
        &["create-secret", "x", "-n", "web", &from, "--dry-run=client"],
        false,
        &[1],
    );
    // The password as a flag (warned about, still never echoed).
    let flag = format!("--docker-password={PW}");
    matrix(
        &c,
        "password flag",
        &[
            "create-secret",
            "flag",
            "-n",
            "web",
            "--docker-username=ci-bot",
            &flag,
            "-o=name",
        ],
        false,
        &[0, 1],
    );
}

#[test]
fn create_secret_error_paths() {
    // 401: the server does not know our token.
    let c = TestCluster::with(Options::default().token("someone-else"));
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=ci-bot",
            "--password-stdin",
            "-v=9",
            &format!("--token={TOK}"),
            "--server",
            c.server.url(),
        ],
        Some(format!("{PW}\n").as_bytes()),
        c.home(),
        &[],
    );
    out.code(1);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    assert_clean("401 --token", &out, true);
    let kc = c.file("kc-bad", c.server.kubeconfig_yaml_for(TOK).as_bytes());
    let out = run_with(
        &[
            "create-secret",
            "x",
            "--docker-username=ci-bot",
            "--password-stdin",
            "-v=9",
        ],
        Some(format!("{PW}\n").as_bytes()),
        c.home(),
        &[("KUBECONFIG", &kc.display().to_string())],
    );
    out.code(1);
    assert_clean("401 kubeconfig", &out, true);

    for status in [401, 403, 500, 409] {
        let c = cluster();
        c.server
            .fail_always(status, Match::any().resource("secrets"));
        matrix(&c, &format!("{status} new"), &create(&[]), true, &[1]);
        matrix(
            &c,
            &format!("{status} overwrite"),
            &create(&["--overwrite"]),
            true,
            &[1],
        );
        matrix(
            &c,
            &format!("{status} server dry run"),
            &create(&["--overwrite", "--dry-run=server", "-o=json"]),
            true,
            &[1],
        );
    }
    // Conflicts that resolve, and a write that keeps conflicting.
    let c = cluster();
    c.server
        .fail_next(2, 409, Match::writes().resource("secrets"));
    matrix(&c, "conflict", &create(&["--overwrite"]), true, &[0]);
    c.server
        .fail_always(409, Match::writes().resource("secrets"));
    matrix(
        &c,
        "conflict forever",
        &create(&["--overwrite"]),
        true,
        &[1],
    );
    // --attach-to a target the server refuses.
    let c = cluster();
    c.server
        .fail_always(403, Match::writes().resource("serviceaccounts"));
    matrix(
        &c,
        "attach 403",
        &create(&["--overwrite", "--attach-to=sa/default"]),
        true,
        &[1],
    );
    // --overwrite of an existing secret with malformed data.
    let c = cluster();
    // Unparsable JSON and the wrong type are refused; entries that are merely invalid, and other
    // keys, are kept untouched (no data loss).
    for (name, code) in [
        ("bad-json", 1),
        ("bad-auth", 0),
        ("no-colon", 0),
        ("wrong-key", 0),
        ("opaque", 1),
        ("dockercfg", 1),
    ] {
        let a = [
            "create-secret",
            name,
            "-n",
            "web",
            "--docker-server=reg.example.com",
            "--docker-username=ci-bot",
            "--password-stdin",
            "--overwrite",
        ];
        matrix(&c, &format!("malformed {name}"), &a, true, &[code]);
    }
    // --verify against an unreachable registry (loopback port 9: nothing listens).
    let c = cluster();
    matrix(
        &c,
        "verify unreachable",
        &[
            "create-secret",
            "v",
            "-n",
            "web",
            "--docker-server=127.0.0.1:9",
            "--docker-username=ci-bot",
            "--password-stdin",
            "--verify",
            "--insecure-registry=127.0.0.1:9",
        ],
        true,
        &[1],
    );
}

#[test]
fn patch_live_and_offline() {
    let c = cluster();
    for o in [None, Some("-o=json"), Some("-o=yaml"), Some("-o=name")] {
        let mut a = vec!["patch", "sa/default", "-n", "web", "--secret=regcred"];
        a.extend(o);
        matrix(&c, "patch sa", &a, false, &[0]);
        let mut a = vec!["patch", "pod", "--all", "-n", "web", "--secret=bad-json"];
        a.extend(o);
        a.push("--dry-run=server");
        matrix(&c, "patch pods dry", &a, false, &[0, 1]);
    }
    matrix(
        &c,
        "patch remove",
        &[
            "patch",
            "sa/default",
            "-n",
            "web",
            "--secret=regcred",
            "--remove",
        ],
        false,
        &[0],
    );
    for status in [401, 403, 500, 409] {
        let c = cluster();
        c.server
            .fail_always(status, Match::any().resource("serviceaccounts"));
        matrix(
            &c,
            &format!("patch {status}"),
            &["patch", "sa/default", "-n", "web", "--secret=regcred"],
            false,
            &[1],
        );
    }
    // A secret read that fails is only a warning; still clean.
    let c = cluster();
    c.server.fail_always(500, Match::any().resource("secrets"));
    matrix(
        &c,
        "patch secret-get 500",
        &["patch", "sa/default", "-n", "web", "--secret=bad-json"],
        false,
        &[0, 1],
    );
}

/// Manifests with Secrets carrying the password in `auth` and `password`, plus malformed ones.
fn manifests(c: &TestCluster) -> String {
    let good = dockerconfig("reg.example.com").to_string();
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "web"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(&good)}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain", "namespace": "web"},
            "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": good}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad-json", "namespace": "web"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": format!("{{\"auths\": {{\"x\": {{\"password\": \"{PW}\"")}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad-auth", "namespace": "web"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": b64(&json!({"auths": {"reg.example.com": {"auth": format!("{PW}%%")}}}).to_string())}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "not-b64", "namespace": "web"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": format!("{PW}***")}}),
    ];
    for (i, s) in [
        "regcred", "plain", "bad-json", "bad-auth", "not-b64", "absent",
    ]
    .iter()
    .enumerate()
    {
        docs.push(pod(&format!("p{i}"), "reg.example.com/team/app:1", &[s]));
    }
    let text = docs
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    c.file("manifests/all.yaml", text.as_bytes());
    // A broken YAML document with the password on the failing line.
    c.file(
        "manifests/broken.yaml",
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: broken}}\nstringData:\n  password: \"{PW}\n  auth: [{}\n", auth())
            .as_bytes(),
    );
    c.dir.path().join("manifests").display().to_string()
}

#[test]
fn audit_live_and_manifests_in_every_format() {
    let c = cluster();
    let dir = manifests(&c);
    let policy = c.file(
        "policy.yaml",
        b"publicRegistries: [docker.io]\nrequireDigest: true\n",
    );
    let policy = format!("--policy={}", policy.display());
    for o in ["table", "wide", "json", "yaml", "sarif"] {
        let o = format!("-o={o}");
        matrix(&c, "audit live", &["audit", "-n", "web", &o], false, &[3]);
        matrix(&c, "audit -A", &["audit", "-A", &o, &policy], false, &[3]);
        matrix(&c, "audit -f", &["audit", "-f", &dir, &o], false, &[3, 4]);
        let file = format!("{dir}/all.yaml");
        let text = std::fs::read(&file).unwrap();
        let out = c.run_stdin(&["audit", "-f", "-", &o, "-v=9"], Some(&text));
        assert!([3, 4].contains(&out.code), "{}", out.stderr);
        assert_clean("audit -f - stdin", &out, true);
    }
    // The pull-secret findings are there, without the data.
    let out = c.run(&["audit", "-n", "web", "-o=json"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let invalid = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "pull-secret-invalid")
        .count();
    assert!(invalid >= 4, "{}", out.stdout);
    // Error paths: 401, 403 on secrets (partial), 500 everywhere.
    for (status, m, codes) in [
        (401, Match::any(), &[1, 4][..]),
        (403, Match::any().resource("secrets"), &[4][..]),
        (500, Match::any(), &[1, 4][..]),
        (500, Match::any().resource("pods"), &[4][..]),
    ] {
        let c = cluster();
        c.server.fail_always(status, m);
        for o in ["table", "json", "sarif"] {
            let o = format!("-o={o}");
            matrix(
                &c,
                &format!("audit {status}"),
                &["audit", "-A", &o],
                false,
                codes,
            );
        }
    }
    // --token on the command line, accepted (no kubeconfig at all).
    let tok = format!("--token={TOK}");
    for o in ["-o=json", "-o=table"] {
        let out = run_with(
            &[
                "audit",
                "-n",
                "web",
                "-v=9",
                o,
                &tok,
                "--server",
                c.server.url(),
            ],
            None,
            c.home(),
            &[],
        );
        out.code(3);
        assert!(out.stderr.contains("round_trippers"), "{}", out.stderr);
        assert_clean("audit --token", &out, true);
    }
    // --token on the command line with a server that rejects it.
    let other = TestCluster::with(Options::default().token("someone-else"));
    let out = run_with(
        &["audit", "-A", "-v=9", &tok, "--server", other.server.url()],
        None,
        other.home(),
        &[],
    );
    assert!([1, 4].contains(&out.code), "{}", out.stderr);
    assert_clean("audit --token 401", &out, true);
}

#[test]
fn patch_offline_echoes_input_but_stderr_is_clean() {
    let c = cluster();
    let dir = manifests(&c);
    for o in [None, Some("--remove")] {
        for file in [
            format!("{dir}/all.yaml"),
            format!("{dir}/broken.yaml"),
            dir.clone(),
        ] {
            let mut a = vec!["patch", "-f", file.as_str(), "--secret=regcred", "-v=9"];
            a.extend(o);
            let out = c.run(&a);
            assert!(
                [0, 1].contains(&out.code),
                "{a:?}: {}\n{}",
                out.code,
                out.stderr
            );
            assert_clean_text(&format!("{a:?} stderr"), &out.stderr);
        }
    }
}

#[test]
fn inspect_with_credentials_for_an_unreachable_registry() {
    let c = cluster();
    let cfg = c.file(
        "docker/config.json",
        dockerconfig("127.0.0.1:9").to_string().as_bytes(),
    );
    let cfg = format!("--docker-config={}", cfg.display());
    c.server.insert(secret(
        "loopcred",
        "web",
        "kubernetes.io/dockerconfigjson",
        ".dockerconfigjson",
        &dockerconfig("127.0.0.1:9").to_string(),
    ));
    for o in ["table", "json", "yaml"] {
        let o = format!("-o={o}");
        for insecure in [true, false] {
            let mut a = vec!["inspect", "127.0.0.1:9/team/app:1", &cfg, &o];
            if insecure {
                a.push("--insecure-registry=127.0.0.1:9");
            }
            matrix(&c, "inspect docker-config", &a, false, &[1]);
        }
        matrix(
            &c,
            "inspect pull-secret",
            &[
                "inspect",
                "127.0.0.1:9/team/app:1",
                "-n",
                "web",
                "--pull-secret=loopcred",
                "--insecure-registry=127.0.0.1:9",
                &o,
            ],
            false,
            &[1],
        );
        for bad in [
            "bad-json",
            "bad-auth",
            "no-colon",
            "wrong-key",
            "opaque",
            "nope",
        ] {
            let ps = format!("--pull-secret={bad}");
            matrix(
                &c,
                "inspect malformed pull-secret",
                &["inspect", "127.0.0.1:9/team/app:1", "-n", "web", &ps, &o],
                false,
                &[1],
            );
        }
    }
    // A malformed docker config file.
    let bad = c.file(
        "docker/bad.json",
        format!("{{\"auths\": {{\"127.0.0.1:9\": {{\"auth\": \"{PW}\"}}}}}}").as_bytes(),
    );
    let bad = format!("--docker-config={}", bad.display());
    matrix(
        &c,
        "inspect bad docker config",
        &["inspect", "127.0.0.1:9/team/app:1", &bad],
        false,
        &[1],
    );
}

#[test]
fn a_panic_prints_one_line_without_its_payload() {
    let home = tempfile::tempdir().unwrap();
    let payload = format!("{PW} {TOK} {}", auth());
    let out = run_with(
        &["audit", "-f", "-"],
        Some(b""),
        home.path(),
        &[("KUBECTL_IMAGE_SEC_TEST_PANIC", &payload)],
    );
    if cfg!(debug_assertions) {
        out.code(1);
        assert!(
            out.stderr
                .starts_with("error: internal error (please report): src/commands/mod.rs:"),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    assert_clean("panic", &out, false);
}

/// Exec credential plugins: the token they print, and their command line, never reach the
/// output, also when the plugin fails or prints something that is not an ExecCredential.
#[test]
fn exec_credential_plugins_never_leak_their_output() {
    let c = cluster();
    let good = format!(
        "printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{TOK}\"}}}}'"
    );
    let cases = [
        ("good", good.clone(), 3),
        ("not-json", format!("echo {TOK}"), 1),
        ("not-json-twice", format!("echo token: {TOK}\necho {PW}"), 1),
        (
            "truncated",
            format!("printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{TOK}\"'"),
            1,
        ),
        (
            "token-not-a-string",
            format!("printf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":[\"{TOK}\"]}}}}'"),
            1,
        ),
        ("fails-after-printing", format!("{good}\nexit 3"), 1),
    ];
    let base = c.server.kubeconfig_yaml();
    let cluster_part = base.split("users:").next().unwrap();
    for (name, script, code) in cases {
        let plugin = c.file(
            &format!("plugins/{name}.sh"),
            format!("#!/bin/sh\n{script}\n").as_bytes(),
        );
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // The plugin's arguments may hold a credential too (kubectl never prints them).
        let kc = c.file(
            &format!("plugins/{name}.kubeconfig"),
            format!(
                "{cluster_part}users:\n- name: fake\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      args: [\"--password={PW}\"]\n      interactiveMode: Never\n",
                plugin.display()
            )
            .as_bytes(),
        );
        for verbose in [false, true] {
            let mut args = vec!["audit", "-n", "web"];
            if verbose {
                args.push("-v=9");
            }
            let out = run_with(
                &args,
                None,
                c.home(),
                &[("KUBECONFIG", &kc.display().to_string())],
            );
            assert_eq!(out.code, code, "{name}: {}\n{}", out.stdout, out.stderr);
            assert_clean(&format!("exec plugin {name}"), &out, verbose);
            if code == 1 {
                assert!(
                    out.stderr.starts_with("error: ") && out.stderr.lines().count() == 1,
                    "{name}: {}",
                    out.stderr
                );
                assert!(
                    out.stderr.contains("exec credential plugin"),
                    "{}",
                    out.stderr
                );
            }
        }
    }
}

/// `audit --deep` reads images with the workloads' pull secrets: an unreachable registry, live
/// and from manifests, at -v=9, in every format, leaks none of them. Only loopback images, so
/// nothing leaves the machine.
#[test]
fn audit_deep_with_credentials_for_an_unreachable_registry() {
    let c = TestCluster::with(Options::default().token(TOK));
    let loop_cfg = dockerconfig("127.0.0.1:9").to_string();
    let mut docs = vec![
        secret(
            "loopcred",
            "deep",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            &loop_cfg,
        ),
        secret(
            "bad-json",
            "deep",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            &format!("{{\"auths\": {{\"127.0.0.1:9\": {{\"password\": \"{PW}\""),
        ),
    ];
    for (name, image, s) in [
        ("deep", "127.0.0.1:9/team/app:1", "loopcred"),
        ("deep-bad", "127.0.0.1:9/team/app:2", "bad-json"),
    ] {
        let mut p = pod(name, image, &[s]);
        p["metadata"]["namespace"] = "deep".into();
        docs.push(p);
    }
    let mut text = String::new();
    for d in &docs {
        c.server.insert(d.clone());
        text.push_str(&format!("---\n{d}\n"));
    }
    let file = c.file("deep.yaml", text.as_bytes()).display().to_string();
    let cfg = c.file("docker/config.json", loop_cfg.as_bytes());
    let cfg = format!("--docker-config={}", cfg.display());
    for o in ["table", "wide", "json", "yaml", "sarif"] {
        let o = format!("-o={o}");
        for insecure in [true, false] {
            let mut live = vec!["audit", "-n", "deep", "--deep", o.as_str()];
            let mut files = vec![
                "audit",
                "-f",
                file.as_str(),
                "--deep",
                o.as_str(),
                cfg.as_str(),
            ];
            if insecure {
                live.push("--insecure-registry=127.0.0.1:9");
                files.push("--insecure-registry=127.0.0.1:9");
            }
            matrix(&c, "audit --deep live", &live, false, &[1, 3, 4]);
            matrix(&c, "audit --deep -f", &files, false, &[1, 3, 4]);
        }
    }
}
