//! Credentials and the registry auth handshake: `WWW-Authenticate` parsing (RFC 7235
//! challenges), Basic, and Bearer tokens from the token endpoint (docker token spec, with
//! `token` or `access_token` in the answer; OAuth2 refresh tokens for identity tokens).
use super::error::Secret;
use std::collections::BTreeMap;
use std::fmt;

/// Credentials the caller chose for one registry (by the kubelet's matching rules, a
/// `--pull-secret`, or a docker config file).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// Docker config `identitytoken`: an OAuth2 refresh token exchanged at the token endpoint.
    IdentityToken(Secret),
    /// Docker config `registrytoken`: a bearer token sent as is.
    RegistryToken(Secret),
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: Secret(password.into()),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme: `basic`, `bearer`, ...
    pub scheme: String,
    /// Parameters with lower-cased names.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` value into its challenges:
/// `Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"`.
/// Quoted strings may contain commas and `\"` escapes; several challenges may share one header.
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let is_tchar = |c: u8| !matches!(c, b' ' | b'\t' | b',' | b'=' | b'"');
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        // A token: either a new scheme or a parameter name.
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        let token = &value[start..i];
        if token.is_empty() {
            // Stray character (e.g. a lone quote): skip it.
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        // `name=` is a parameter unless it is token68 padding (`abc==`) of a scheme.
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let val = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut s = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 chars.
                    let ch_len = utf8_len(b[i]);
                    s.push_str(&value[i..(i + ch_len).min(b.len())]);
                    i += ch_len;
                }
                i += 1; // closing quote
                s
            } else {
                let s0 = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                value[s0..i].to_string()
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(token.to_ascii_lowercase(), val);
            }
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The token endpoint's answer (docker token spec; OAuth2 servers use `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

impl TokenResponse {
    pub fn bearer(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/nginx:pull"));
    }

    #[test]
    fn parses_basic_and_multiple_and_escapes() {
        let c = parse_www_authenticate(
            r#"Basic realm="Registry Realm", Bearer realm="https://x/t",scope="repository:a:pull,push", error="invalid_token", error_description="a \"q\"""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].param("scope"), Some("repository:a:pull,push"));
        assert_eq!(c[1].param("error_description"), Some(r#"a "q""#));
    }

    #[test]
    fn parses_unquoted_and_case() {
        let c = parse_www_authenticate("BEARER Realm=http://127.0.0.1:5000/token, Service=reg");
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("http://127.0.0.1:5000/token"));
        assert_eq!(c[0].param("service"), Some("reg"));
        assert!(parse_www_authenticate("").is_empty());
    }

    #[test]
    fn debug_is_redacted() {
        let c = Credentials::basic("alice", "hunter2");
        let d = format!("{c:?}");
        assert!(d.contains("alice") && !d.contains("hunter2"));
        let t = Credentials::IdentityToken(Secret("tok123".into()));
        assert!(!format!("{t:?}").contains("tok123"));
    }

    #[test]
    fn token_response_fields() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.bearer().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"","access_token":"b"}"#).unwrap();
        assert_eq!(t.bearer().as_deref(), Some("b"));
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.bearer(), None);
    }
}
