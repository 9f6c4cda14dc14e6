//! `create-secret --verify` against a real `docker-registry` with htpasswd auth on loopback:
//! good credentials pass and are saved; rejected ones are refused, naming the HTTP status, and
//! nothing is written.
mod common;
mod registry_fixture;

use common::*;
use serde_json::json;

#[test]
fn verify_accepts_good_credentials_and_refuses_bad_ones() {
    let reg = registry_fixture::registry();
    let c = TestCluster::new();
    c.server
        .insert(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"web"}}));
    let server = format!("--docker-server={}", reg.registry);
    let insecure = format!("--insecure-registry={}", reg.registry);
    let user = format!("--docker-username={}", registry_fixture::USER);

    let out = c.run_stdin(
        &[
            "create-secret",
            "bad",
            "-n",
            "web",
            &server,
            &user,
            "--password-stdin",
            "--verify",
            &insecure,
        ],
        Some(b"wrong-password"),
    );
    out.code(1);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("401"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&reg.registry),
        "names the registry: {}",
        out.stderr
    );
    assert!(!out.all().contains("wrong-password"));
    assert_eq!(
        c.write_count(),
        0,
        "nothing written for rejected credentials"
    );
    assert!(
        c.server.requests().is_empty(),
        "refused before any API call"
    );

    let out = c.run_stdin(
        &[
            "create-secret",
            "good",
            "-n",
            "web",
            &server,
            &user,
            "--password-stdin",
            "--verify",
            &insecure,
        ],
        Some(registry_fixture::PASSWORD.as_bytes()),
    );
    assert_eq!(out.ok(), "secret/good created\n");
    assert!(c.server.get("secret", "web", "good").is_some());
    assert!(!out.all().contains(registry_fixture::PASSWORD));
}
