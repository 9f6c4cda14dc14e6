//! Building `kubernetes.io/dockerconfigjson` pull secrets, byte for byte as kubectl does, and
//! merging new registry entries into an existing secret without dropping anything.
//!
//! kubectl marshals `{"auths":{SERVER:{"username","password","email","auth"}}}` with Go's
//! `encoding/json`: compact, empty fields omitted, map keys sorted, and `<`, `>`, `&`, U+2028 and
//! U+2029 escaped. We reproduce that encoding so the Secret is identical.
use base64::Engine;
use serde_json::{Map, Value};

pub const SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const SECRET_KEY: &str = ".dockerconfigjson";
pub const DEFAULT_SERVER: &str = "https://index.docker.io/v1/";

/// One registry's credentials for the `auths` map. No `Debug`: it holds a password.
#[derive(Clone)]
pub struct RegistryCredential {
    /// The `auths` key, used verbatim (kubectl does not normalise it).
    pub server: String,
    pub username: String,
    pub password: String,
    pub email: String,
}

impl RegistryCredential {
    /// kubectl's `auth` field: base64(`username:password`).
    pub fn auth(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    /// The entry as kubectl marshals it: fields in struct order, empty ones omitted.
    pub fn to_entry(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("username", &self.username),
            ("password", &self.password),
            ("email", &self.email),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), Value::String(v.clone()));
            }
        }
        let auth = self.auth();
        m.insert("auth".into(), Value::String(auth));
        Value::Object(m)
    }
}

/// The `.dockerconfigjson` bytes for a new secret, as kubectl would write them.
pub fn build_docker_config_json(credentials: &[RegistryCredential]) -> Vec<u8> {
    let mut auths: Vec<(&str, Value)> = credentials
        .iter()
        .map(|c| (c.server.as_str(), c.to_entry()))
        .collect();
    // Go marshals map keys in sorted order.
    auths.sort_by(|a, b| a.0.cmp(b.0));
    let mut auth_map = Map::new();
    for (k, v) in auths {
        auth_map.insert(k.to_string(), v);
    }
    let mut root = Map::new();
    root.insert("auths".into(), Value::Object(auth_map));
    go_json(&Value::Object(root)).into_bytes()
}

/// What a merge did to each registry key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeSummary {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    /// Entries that were there and are kept untouched.
    pub kept: Vec<String>,
}

/// Why an existing secret cannot take the merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    WrongType(String),
    NotJson(String),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::WrongType(t) => write!(
                f,
                "the existing secret has type {t:?}, not {SECRET_TYPE}; refusing to overwrite it (delete it or choose another name)"
            ),
            MergeError::NotJson(why) => write!(
                f,
                "the existing secret's {SECRET_KEY} is not a valid docker config ({why}); refusing to overwrite it"
            ),
        }
    }
}

/// Merges `credentials` into an existing secret's `.dockerconfigjson` (the decoded bytes, if the
/// key exists): every other registry and every other top-level field is kept; entries with the
/// same key are replaced. Returns the new bytes and what changed.
pub fn merge_docker_config_json(
    secret_type: Option<&str>,
    existing: Option<&[u8]>,
    credentials: &[RegistryCredential],
) -> Result<(Vec<u8>, MergeSummary), MergeError> {
    match secret_type {
        Some(SECRET_TYPE) => {}
        other => return Err(MergeError::WrongType(other.unwrap_or("").to_string())),
    }
    let mut root = match existing {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            // serde_json's message names line and column, never content.
            Ok(_) => return Err(MergeError::NotJson("not a JSON object".into())),
            Err(e) => {
                return Err(MergeError::NotJson(format!(
                    "line {} column {}",
                    e.line(),
                    e.column()
                )))
            }
        },
    };
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        return Err(MergeError::NotJson("\"auths\" is not an object".into()));
    };
    let mut summary = MergeSummary::default();
    let new_keys: Vec<&str> = credentials.iter().map(|c| c.server.as_str()).collect();
    summary.kept = auths
        .keys()
        .filter(|k| !new_keys.contains(&k.as_str()))
        .cloned()
        .collect();
    for c in credentials {
        if auths.insert(c.server.clone(), c.to_entry()).is_some() {
            summary.replaced.push(c.server.clone());
        } else {
            summary.added.push(c.server.clone());
        }
    }
    sort_object_keys(auths);
    Ok((go_json(&Value::Object(root)).into_bytes(), summary))
}

fn sort_object_keys(m: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    m.extend(entries);
}

/// Compact JSON exactly as Go's `json.Marshal` writes it (HTML-safe escaping).
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// At most 253 characters of dot-separated labels of lower case alphanumerics and '-', each
/// starting and ending with an alphanumeric (names of most objects, label key prefixes).
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Validates a Secret name as a DNS-1123 subdomain (what the API server requires).
pub fn validate_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a secret name is required: kubectl image-sec create-secret NAME ...".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "invalid secret name {name:?}: must be no more than 253 characters"
        ));
    }
    if !is_dns1123_subdomain(name) {
        return Err(format!(
            "invalid secret name {name:?}: a DNS-1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'regcred' or 'registry.example-creds')"
        ));
    }
    Ok(())
}

/// Checks that `--docker-server` names a registry host: optional `http(s)://`, a host (name,
/// IPv4 or bracketed IPv6), optional port, optional path. Returns the host[:port].
pub fn validate_server(server: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("invalid --docker-server {server:?}: {why}; use a registry host such as registry.example.com or https://index.docker.io/v1/")
    };
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    if rest.contains("://") {
        return Err(bad("unsupported scheme"));
    }
    let hostport = rest.split('/').next().unwrap_or("");
    if hostport.is_empty() {
        return Err(bad("no host"));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed IPv6 bracket"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("invalid IPv6 address"));
        }
        (addr, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(bad("invalid port"));
        }
    }
    if !hostport.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad("not a host name"));
        }
    }
    Ok(hostport.to_string())
}

/// Validates a username for the `auth` field: the kubelet splits `user:pass` at the first colon.
pub fn validate_username(username: &str) -> Result<(), String> {
    if username.contains(':') {
        return Err("--docker-username must not contain ':' (the auth field is user:password and the kubelet splits it at the first colon)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(server: &str, user: &str, pass: &str, email: &str) -> RegistryCredential {
        RegistryCredential {
            server: server.into(),
            username: user.into(),
            password: pass.into(),
            email: email.into(),
        }
    }

    #[test]
    fn matches_kubectls_encoding() {
        // From `kubectl create secret docker-registry s --docker-username=u --docker-password=p
        // --docker-server=reg.io --docker-email=e@x.io --dry-run=client -o json`.
        let got = build_docker_config_json(&[cred("reg.io", "u", "p", "e@x.io")]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            r#"{"auths":{"reg.io":{"username":"u","password":"p","email":"e@x.io","auth":"dTpw"}}}"#
        );
    }

    #[test]
    fn empty_email_is_omitted_and_html_is_escaped() {
        let got = String::from_utf8(build_docker_config_json(&[cred(
            DEFAULT_SERVER,
            "u",
            "a<b>&c\u{2028}é:",
            "",
        )]))
        .unwrap();
        assert_eq!(
            got,
            "{\"auths\":{\"https://index.docker.io/v1/\":{\"username\":\"u\",\"password\":\"a\\u003cb\\u003e\\u0026c\\u2028é:\",\"auth\":\"dTphPGI+JmPigKjDqTo=\"}}}"
        );
    }

    #[test]
    fn control_characters_use_gos_escapes() {
        assert_eq!(
            go_json(&Value::String("\u{1}\u{8}\u{c}\n\"\\".into())),
            r#""\u0001\b\f\n\"\\""#
        );
    }

    #[test]
    fn several_registries_are_sorted_like_a_go_map() {
        let got =
            build_docker_config_json(&[cred("z.io", "a", "b", ""), cred("a.io", "c", "d", "")]);
        let s = String::from_utf8(got).unwrap();
        assert!(s.find("a.io").unwrap() < s.find("z.io").unwrap(), "{s}");
    }

    #[test]
    fn merge_keeps_other_registries_and_fields() {
        let existing = br#"{"auths":{"other.io":{"auth":"eDp5"},"reg.io":{"auth":"b2xkOm9sZA=="}},"HttpHeaders":{"X":"1"}}"#;
        let (bytes, summary) = merge_docker_config_json(
            Some(SECRET_TYPE),
            Some(existing),
            &[cred("reg.io", "u", "p", ""), cred("new.io", "n", "m", "")],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["auths"]["other.io"]["auth"], "eDp5");
        assert_eq!(v["auths"]["reg.io"]["auth"], "dTpw");
        assert_eq!(v["auths"]["new.io"]["username"], "n");
        assert_eq!(v["HttpHeaders"]["X"], "1");
        assert_eq!(summary.added, vec!["new.io"]);
        assert_eq!(summary.replaced, vec!["reg.io"]);
        assert_eq!(summary.kept, vec!["other.io"]);
    }

    #[test]
    fn merge_refuses_other_types_and_bad_json_without_echoing_content() {
        assert!(matches!(
            merge_docker_config_json(Some("Opaque"), None, &[]),
            Err(MergeError::WrongType(_))
        ));
        let err = merge_docker_config_json(Some(SECRET_TYPE), Some(b"{\"auths\": hunter2"), &[])
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(err, MergeError::NotJson(_)));
    }

    #[test]
    fn names_are_dns_subdomains() {
        for ok in ["regcred", "a.b-c", "x1"] {
            assert!(validate_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Reg", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert!(validate_secret_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_must_be_hosts() {
        for (s, host) in [
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("registry.example.com", "registry.example.com"),
            ("localhost:5000", "localhost:5000"),
            ("http://10.0.0.1:5000/v2/", "10.0.0.1:5000"),
            ("[::1]:5000", "[::1]:5000"),
        ] {
            assert_eq!(validate_server(s).unwrap(), host, "{s}");
        }
        for bad in [
            "",
            "https://",
            "ftp://x.io",
            "not a host",
            "x.io:",
            "x.io:99999",
            "-x.io",
            "[zz]:1",
        ] {
            assert!(validate_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_cannot_hold_colons() {
        assert!(validate_username("ci").is_ok());
        assert!(validate_username("a:b").is_err());
    }
}
