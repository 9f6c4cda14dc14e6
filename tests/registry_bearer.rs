//! Bearer-token auth and error statuses against a small in-process fake registry (Debian's
//! docker-registry only does htpasswd Basic auth without a separate token server).
use base64::Engine as _;
use kubectl_image_sec::registry::{
    Credentials, RegistryClient, RegistryError, RegistryOptions, Secret,
};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Seen {
    /// "METHOD path-and-query" of each request.
    requests: Vec<String>,
    /// Bodies of token POSTs.
    bodies: Vec<String>,
}

async fn serve(listener: tokio::net::TcpListener, seen: Arc<Mutex<Seen>>) {
    let port = listener.local_addr().unwrap().port();
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            // Read the head (and a small body, for token POSTs).
            let head_end = loop {
                let Ok(n) = sock.read(&mut tmp).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&tmp[..n]);
                // Not HTTP (a TLS ClientHello from the HTTPS probe): hang up at once.
                if !buf[0].is_ascii_uppercase() {
                    return;
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if buf.len() > 65536 {
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.lines();
            let first = lines.next().unwrap_or_default().to_string();
            let mut parts = first.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty() {
                return; // e.g. a TLS ClientHello: drop the connection
            }
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                    .unwrap_or_default()
            };
            let len: usize = header("content-length").parse().unwrap_or(0);
            while buf.len() < head_end + len {
                let Ok(n) = sock.read(&mut tmp).await else {
                    return;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
            {
                let mut s = seen.lock().unwrap();
                s.requests.push(format!("{method} {target}"));
                if method == "POST" {
                    s.bodies.push(body.clone());
                }
            }
            let auth = header("authorization");
            let good_basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
            );
            let realm = format!("http://127.0.0.1:{port}/token");
            let challenge = |scope: Option<&str>| {
                match scope {
                Some(s) => format!(
                    "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake-registry\",scope=\"{s}\"\r\n"
                ),
                None => format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake-registry\"\r\n"),
            }
            };
            let path = target.split('?').next().unwrap_or("");
            let (status, extra, body): (&str, String, String) = if path == "/token" {
                if method == "POST" && body.contains("refresh_token=rt-123") {
                    (
                        "200 OK",
                        String::new(),
                        r#"{"access_token":"good-token"}"#.into(),
                    )
                } else if method == "GET" && auth == good_basic {
                    (
                        "200 OK",
                        String::new(),
                        r#"{"token":"good-token","expires_in":300}"#.into(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        String::new(),
                        r#"{"details":"incorrect username or password"}"#.into(),
                    )
                }
            } else if path.starts_with("/v2/limited/") {
                (
                    "429 Too Many Requests",
                    "Retry-After: 30\r\n".into(),
                    String::new(),
                )
            } else if auth != "Bearer good-token" {
                let scope = path
                    .strip_prefix("/v2/")
                    .and_then(|p| p.split("/manifests/").next())
                    .filter(|p| !p.is_empty())
                    .map(|repo| format!("repository:{repo}:pull"));
                (
                    "401 Unauthorized",
                    challenge(scope.as_deref()),
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                        .into(),
                )
            } else if path == "/v2/" {
                ("200 OK", String::new(), "{}".into())
            } else {
                (
                    "404 Not Found",
                    String::new(),
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                        .into(),
                )
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

async fn start() -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    tokio::spawn(serve(listener, seen.clone()));
    (addr, seen)
}

fn client(addr: &str) -> RegistryClient {
    RegistryClient::new(&RegistryOptions {
        insecure_registries: vec![addr.to_string()],
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn bearer_token_with_basic_credentials_and_scope() {
    let (addr, seen) = start().await;
    let c = client(&addr);
    c.verify_credentials(&addr, &Credentials::basic("alice", "s3cret"))
        .await
        .expect("verify through the token endpoint");
    let err = c
        .verify_credentials(&addr, &Credentials::basic("alice", "wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr) && !err.to_string().contains("wrong"));

    // A manifest request: the token is asked for with the challenge's scope and service, then
    // the registry's 404 comes through as not-found.
    let repo = c.repository(&addr, "team/app", Credentials::basic("alice", "s3cret"));
    let err = repo.get_manifest("latest").await.unwrap_err();
    assert_eq!(err.cause(), "not-found", "{err}");
    let reqs = seen.lock().unwrap().requests.clone();
    assert!(
        reqs.iter().any(|r| r.starts_with("GET /token?")
            && r.contains("service=fake-registry")
            && r.contains("scope=repository%3Ateam%2Fapp%3Apull")),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn identity_and_registry_tokens() {
    let (addr, seen) = start().await;
    let c = client(&addr);
    c.verify_credentials(&addr, &Credentials::IdentityToken(Secret("rt-123".into())))
        .await
        .expect("refresh token exchanged with a POST");
    let bodies = seen.lock().unwrap().bodies.clone();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("grant_type=refresh_token")),
        "{bodies:?}"
    );
    c.verify_credentials(
        &addr,
        &Credentials::RegistryToken(Secret("good-token".into())),
    )
    .await
    .expect("registry token used as the bearer");
    let err = c
        .verify_credentials(&addr, &Credentials::IdentityToken(Secret("expired".into())))
        .await
        .unwrap_err();
    assert_eq!(err.cause(), "unauthorized");
}

#[tokio::test]
async fn rate_limit_is_reported() {
    let (addr, _) = start().await;
    let c = client(&addr);
    let repo = c.repository(&addr, "limited/app", Credentials::Anonymous);
    let err = repo.get_manifest("latest").await.unwrap_err();
    assert_eq!(err.cause(), "rate-limited", "{err}");
    assert!(err.to_string().contains("retry after 30"), "{err}");
}
