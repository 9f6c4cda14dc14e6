//! Docker config documents, read the way the kubelet reads pull secrets.
//!
//! Three shapes share one model:
//! - `kubernetes.io/dockerconfigjson` secrets (key `.dockerconfigjson`): `{"auths": {...}}`;
//! - `kubernetes.io/dockercfg` secrets (key `.dockercfg`): the bare `{...}` map of the old format;
//! - the docker CLI's `~/.docker/config.json`: `auths` plus `credsStore`/`credHelpers`, which are
//!   exposed here but never executed.
//!
//! Decoding mirrors Go's `encoding/json` into the kubelet's types (`pkg/credentialprovider/
//! config.go`): field names match case-insensitively, `null` is an empty value, unknown fields are
//! ignored, a value of the wrong JSON type is an error, and a non-empty `auth` (padded or unpadded
//! standard base64 of `user:pass`, split at the first `:`) replaces `username` and `password`.
//!
//! Nothing in this module ever prints secret content: errors describe the problem and the registry
//! key only, and `Debug` for the credential types is written by hand with `<redacted>`.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde_json::{Map, Value};

pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
pub const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";
pub const DOCKERCFG_KEY: &str = ".dockercfg";

/// A parsed docker config: credentials per registry key, in document order.
#[derive(Clone, Default)]
pub struct DockerConfig {
    pub entries: Vec<AuthEntry>,
    /// `credsStore` of a docker CLI config (a helper name, not executed).
    pub creds_store: Option<String>,
    /// `credHelpers` of a docker CLI config: registry → helper name (not executed).
    pub cred_helpers: BTreeMap<String, String>,
}

/// The credentials of one `auths` key.
#[derive(Clone)]
pub struct AuthEntry {
    /// The key as written, e.g. `https://index.docker.io/v1/` or `registry.example.com`.
    pub key: String,
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    /// `identitytoken` (docker CLI); the kubelet does not use it.
    pub identity_token: Option<String>,
    /// `registrytoken` (docker CLI); the kubelet does not use it.
    pub registry_token: Option<String>,
}

impl AuthEntry {
    fn empty(key: &str) -> Self {
        AuthEntry {
            key: key.to_string(),
            username: String::new(),
            password: String::new(),
            email: None,
            identity_token: None,
            registry_token: None,
        }
    }

    /// Whether the entry carries anything the kubelet would send: a username or a password.
    /// (An entry with neither still matches images, but pulls anonymously.)
    pub fn has_kubelet_credentials(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }
}

impl DockerConfig {
    /// The entry for `key` exactly as written, if any.
    pub fn entry(&self, key: &str) -> Option<&AuthEntry> {
        self.entries.iter().find(|entry| entry.key == key)
    }
}

/// Shows whether a secret field is set without showing it.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

fn redacted_option(value: &Option<String>) -> Option<Redacted<'_>> {
    value.as_deref().map(Redacted)
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthEntry")
            .field("key", &self.key)
            .field("username", &Redacted(&self.username))
            .field("password", &Redacted(&self.password))
            .field("email", &redacted_option(&self.email))
            .field("identity_token", &redacted_option(&self.identity_token))
            .field("registry_token", &redacted_option(&self.registry_token))
            .finish()
    }
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("entries", &self.entries)
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish()
    }
}

/// What is wrong with a pull secret or docker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerConfigErrorKind {
    /// The Secret's type is neither `kubernetes.io/dockerconfigjson` nor `kubernetes.io/dockercfg`.
    WrongSecretType,
    /// The key that goes with the Secret's type is absent.
    MissingKey,
    /// The key is present but empty.
    EmptyData,
    /// Not JSON at all.
    MalformedJson,
    /// Valid JSON, but a value has the wrong JSON type (e.g. `auths` is a list).
    WrongJsonType,
    /// `auth` is not standard base64.
    AuthNotBase64,
    /// `auth` decodes to something without the `:` of `user:pass`.
    AuthWithoutColon,
}

impl DockerConfigErrorKind {
    /// `true` when the kubelet silently skips such a secret (it is not a docker config secret to
    /// it); `false` when the kubelet fails the whole image pull because of it (its
    /// `MakeDockerKeyring` returns the JSON error, whatever the other secrets hold).
    pub fn kubelet_ignores_secret(self) -> bool {
        matches!(
            self,
            DockerConfigErrorKind::WrongSecretType
                | DockerConfigErrorKind::MissingKey
                | DockerConfigErrorKind::EmptyData
        )
    }
}

/// A docker config problem. `detail` never holds secret content (only registry keys, types and
/// positions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfigError {
    pub kind: DockerConfigErrorKind,
    pub detail: String,
}

impl DockerConfigError {
    fn new(kind: DockerConfigErrorKind, detail: impl Into<String>) -> Self {
        DockerConfigError {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for DockerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for DockerConfigError {}

/// Parses a `.dockerconfigjson` document or a docker CLI `config.json`.
pub fn parse_docker_config_json(bytes: &[u8]) -> Result<DockerConfig, DockerConfigError> {
    let document = parse_json(bytes)?;
    let fields = match &document {
        Value::Null => return Ok(DockerConfig::default()),
        Value::Object(fields) => fields,
        other => return Err(wrong_type("the document", "an object", other)),
    };
    let mut config = DockerConfig::default();
    for (name, value) in fields {
        match fold_field_name(name).as_str() {
            "auths" => config.entries = parse_auths(value, "`auths`")?,
            // Part of the kubelet's DockerConfigJSON type, so a wrong type fails there too.
            "httpheaders" => check_string_map(value, "`HttpHeaders`")?,
            // docker CLI fields the kubelet ignores: taken when well-formed, never an error.
            "credsstore" => config.creds_store = value.as_str().map(str::to_string),
            "credhelpers" => config.cred_helpers = string_map_or_empty(value),
            _ => {}
        }
    }
    Ok(config)
}

/// Parses a legacy `.dockercfg` document: the bare map of registry keys.
pub fn parse_dockercfg(bytes: &[u8]) -> Result<DockerConfig, DockerConfigError> {
    let document = parse_json(bytes)?;
    Ok(DockerConfig {
        entries: parse_auths(&document, "the document")?,
        ..DockerConfig::default()
    })
}

type ConfigParser = fn(&[u8]) -> Result<DockerConfig, DockerConfigError>;

/// Checks a Secret's `type` and `data` (already base64-decoded) the way the kubelet uses it for
/// `imagePullSecrets`: the type decides the key, the key must hold non-empty, valid JSON.
pub fn parse_pull_secret(
    secret_type: Option<&str>,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<DockerConfig, DockerConfigError> {
    use DockerConfigErrorKind as K;
    let (key, parse): (&str, ConfigParser) = match secret_type {
        Some(DOCKER_CONFIG_JSON_TYPE) => (DOCKER_CONFIG_JSON_KEY, parse_docker_config_json),
        Some(DOCKERCFG_TYPE) => (DOCKERCFG_KEY, parse_dockercfg),
        other => {
            let shown = other.unwrap_or("Opaque");
            return Err(DockerConfigError::new(
                K::WrongSecretType,
                format!(
                    "secret type is {shown:?}; the kubelet only reads pull credentials from \
                         {DOCKER_CONFIG_JSON_TYPE:?} or {DOCKERCFG_TYPE:?}"
                ),
            ));
        }
    };
    let Some(bytes) = data.get(key) else {
        let present: Vec<&str> = data.keys().map(String::as_str).collect();
        return Err(DockerConfigError::new(
            K::MissingKey,
            format!(
                "secret of type {:?} has no {key:?} key (keys: {present:?})",
                secret_type.unwrap_or_default()
            ),
        ));
    };
    if bytes.is_empty() {
        return Err(DockerConfigError::new(
            K::EmptyData,
            format!("secret key {key:?} is empty"),
        ));
    }
    parse(bytes).map_err(|err| DockerConfigError {
        detail: format!("secret key {key:?}: {}", err.detail),
        ..err
    })
}

/// Parses JSON like Go does for these documents: invalid UTF-8 becomes U+FFFD rather than an
/// error. serde_json's message is only used for syntax errors, which never quote the input.
fn parse_json(bytes: &[u8]) -> Result<Value, DockerConfigError> {
    let text = String::from_utf8_lossy(bytes);
    serde_json::from_str(&text).map_err(|err| {
        use serde_json::error::Category;
        let problem = match err.classify() {
            Category::Syntax | Category::Eof => syntax_problem(&err),
            Category::Data | Category::Io => "invalid JSON".to_string(),
        };
        DockerConfigError::new(
            DockerConfigErrorKind::MalformedJson,
            format!(
                "malformed JSON at line {} column {}: {problem}",
                err.line(),
                err.column()
            ),
        )
    })
}

/// serde_json renders syntax errors as "<fixed message> at line L column C".
fn syntax_problem(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(end) => full[..end].to_string(),
        None => full,
    }
}

/// Go's `encoding/json` matches field names with Unicode case folding; folding through upper then
/// lower case covers the non-ASCII equivalents of our ASCII names (`ſ` → `s`, `K` → `k`).
fn fold_field_name(name: &str) -> String {
    name.chars()
        .flat_map(char::to_uppercase)
        .flat_map(char::to_lowercase)
        .collect()
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(what: &str, expected: &str, found: &Value) -> DockerConfigError {
    DockerConfigError::new(
        DockerConfigErrorKind::WrongJsonType,
        format!("{what} must be {expected}, not {}", json_type_name(found)),
    )
}

/// The `auths` map (or the whole `.dockercfg` document): registry key → entry.
fn parse_auths(value: &Value, what: &str) -> Result<Vec<AuthEntry>, DockerConfigError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(entries) => entries
            .iter()
            .map(|(key, entry)| parse_entry(key, entry))
            .collect(),
        other => Err(wrong_type(what, "an object of registry keys", other)),
    }
}

fn parse_entry(key: &str, value: &Value) -> Result<AuthEntry, DockerConfigError> {
    let mut entry = AuthEntry::empty(key);
    let fields = match value {
        Value::Null => return Ok(entry),
        Value::Object(fields) => fields,
        other => return Err(wrong_type(&format!("entry {key:?}"), "an object", other)),
    };
    let mut auth = String::new();
    let mut email = String::new();
    for (name, field) in fields {
        let folded = fold_field_name(name);
        let target = match folded.as_str() {
            "username" => &mut entry.username,
            "password" => &mut entry.password,
            "email" => &mut email,
            "auth" => &mut auth,
            // docker CLI fields the kubelet ignores: taken when they are strings.
            "identitytoken" => {
                entry.identity_token = non_empty_string(field);
                continue;
            }
            "registrytoken" => {
                entry.registry_token = non_empty_string(field);
                continue;
            }
            _ => continue,
        };
        *target = string_field(key, &folded, field)?;
    }
    entry.email = (!email.is_empty()).then_some(email);
    if !auth.is_empty() {
        let (username, password) = decode_auth(key, &auth)?;
        entry.username = username;
        entry.password = password;
    }
    Ok(entry)
}

/// A Go `string` field: a JSON string, or `null` for "leave empty".
fn string_field(key: &str, field: &str, value: &Value) -> Result<String, DockerConfigError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type(
            &format!("field `{field}` of entry {key:?}"),
            "a string",
            other,
        )),
    }
}

fn non_empty_string(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A Go `map[string]string`: an object of strings (or nulls), or `null`.
fn check_string_map(value: &Value, what: &str) -> Result<(), DockerConfigError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(map) => match map
            .values()
            .find(|v| !matches!(v, Value::String(_) | Value::Null))
        {
            Some(bad) => Err(wrong_type(&format!("values of {what}"), "strings", bad)),
            None => Ok(()),
        },
        other => Err(wrong_type(what, "an object", other)),
    }
}

fn string_map_or_empty(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(Map::iter)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// Go's `base64.StdEncoding` / `RawStdEncoding`: non-strict, so trailing bits are allowed.
const GO_STD_PADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);
const GO_STD_UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// `decodeDockerConfigFieldAuth`: padded base64 when the trimmed field ends with `=`, unpadded
/// otherwise; then `user:pass` split at the first `:`.
pub fn decode_auth(key: &str, field: &str) -> Result<(String, String), DockerConfigError> {
    // Go's decoder skips '\r' and '\n' anywhere in the input.
    let cleaned: String = field
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let engine = if field.trim().ends_with('=') {
        &GO_STD_PADDED
    } else {
        &GO_STD_UNPADDED
    };
    let decoded = engine.decode(cleaned.as_bytes()).map_err(|_| {
        DockerConfigError::new(
            DockerConfigErrorKind::AuthNotBase64,
            format!("`auth` of entry {key:?} is not valid base64"),
        )
    })?;
    // Go keeps the raw bytes; a Rust String cannot, so invalid UTF-8 becomes U+FFFD.
    let decoded = String::from_utf8_lossy(&decoded);
    match decoded.split_once(':') {
        Some((username, password)) => Ok((username.to_string(), password.to_string())),
        None => Err(DockerConfigError::new(
            DockerConfigErrorKind::AuthWithoutColon,
            format!("`auth` of entry {key:?} must be base64 of username:password (no `:` found)"),
        )),
    }
}

/// `base64(username:password)` as `kubectl create secret docker-registry` writes it.
pub fn encode_auth(username: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use DockerConfigErrorKind as K;

    const SECRET_WORDS: [&str; 4] = ["hunter2", "aHVudGVy", "s3cr3t", "dG9rZW4"];

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn b64_unpadded(s: &str) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(s)
    }

    fn secret_data(key: &str, value: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_string(), value.as_bytes().to_vec())])
    }

    #[test]
    fn kubectl_style_dockerconfigjson() {
        let doc = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"username":"u","password":"p","email":"e@x","auth":"{}"}}}}}}"#,
            b64("u:p")
        );
        let config = parse_docker_config_json(doc.as_bytes()).unwrap();
        assert_eq!(config.entries.len(), 1);
        let entry = &config.entries[0];
        assert_eq!(entry.key, "https://index.docker.io/v1/");
        assert_eq!(
            (entry.username.as_str(), entry.password.as_str()),
            ("u", "p")
        );
        assert_eq!(entry.email.as_deref(), Some("e@x"));
    }

    #[test]
    fn auth_overrides_username_and_password_and_splits_at_first_colon() {
        let doc = format!(
            r#"{{"auths":{{"r.io":{{"username":"ignored","password":"ignored","auth":"{}"}}}}}}"#,
            b64("user:pa:ss")
        );
        let config = parse_docker_config_json(doc.as_bytes()).unwrap();
        assert_eq!(config.entries[0].username, "user");
        assert_eq!(config.entries[0].password, "pa:ss");
    }

    #[test]
    fn auth_accepts_padded_unpadded_and_newlines() {
        for auth in [
            b64("ab:c"),          // "YWI6Yw==" padded
            b64_unpadded("ab:c"), // "YWI6Yw"
            format!("{}\n", b64("ab:c")),
            "YWI6\r\nYw==".to_string(),
            b64_unpadded("ab:cd"), // no padding needed either way
        ] {
            let (user, pass) = decode_auth("k", &auth).unwrap_or_else(|e| panic!("{auth:?}: {e}"));
            assert_eq!(user, "ab");
            assert!(pass.starts_with('c'));
        }
        // Empty password and empty user are fine: the kubelet only needs the colon.
        assert_eq!(
            decode_auth("k", &b64("u:")).unwrap(),
            ("u".into(), "".into())
        );
        assert_eq!(
            decode_auth("k", &b64(":p")).unwrap(),
            ("".into(), "p".into())
        );
    }

    #[test]
    fn bad_auth_is_named_without_content() {
        let cases = [
            ("not base64!", K::AuthNotBase64),
            ("YWI6Yw=", K::AuthNotBase64),   // incomplete padding
            ("YWI6Y w==", K::AuthNotBase64), // space inside
            ("YWI6Yw== ", K::AuthNotBase64), // Go does not skip spaces
            ("YWI6Yw===", K::AuthNotBase64),
            ("aHVudGVyMg", K::AuthWithoutColon), // "hunter2"
            ("aHVudGVyMg==", K::AuthWithoutColon),
        ];
        for (auth, kind) in cases {
            let doc = format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}"}}}}}}"#);
            let err = parse_docker_config_json(doc.as_bytes()).unwrap_err();
            assert_eq!(err.kind, kind, "auth {auth:?}: {err}");
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("r.io"), "{shown}");
            for word in SECRET_WORDS.iter().chain([&auth]) {
                assert!(!shown.contains(word), "{shown} leaks {word}");
            }
            assert!(!shown.contains('\n'));
        }
    }

    #[test]
    fn empty_auth_keeps_username_and_password() {
        let doc = r#"{"auths":{"r.io":{"username":"u","password":"p","auth":""}}}"#;
        let entry = &parse_docker_config_json(doc.as_bytes()).unwrap().entries[0];
        assert_eq!(
            (entry.username.as_str(), entry.password.as_str()),
            ("u", "p")
        );
    }

    #[test]
    fn field_names_match_case_insensitively_like_go() {
        let doc = format!(
            r#"{{"AUTHS":{{"r.io":{{"Username":"x","PASSWORD":"y","EMAIL":"e","Auth":"{}"}}}}}}"#,
            b64("u:p")
        );
        let entry = &parse_docker_config_json(doc.as_bytes()).unwrap().entries[0];
        assert_eq!(
            (entry.username.as_str(), entry.password.as_str()),
            ("u", "p")
        );
        assert_eq!(entry.email.as_deref(), Some("e"));
        // Later duplicates win, as in Go.
        let doc = r#"{"auths":{"r.io":{"username":"a","USERNAME":"b"}}}"#;
        let entry = &parse_docker_config_json(doc.as_bytes()).unwrap().entries[0];
        assert_eq!(entry.username, "b");
    }

    #[test]
    fn entries_keep_document_order() {
        let doc = r#"{"auths":{"z.io":{},"a.io":null,"m.io":{"username":"u"}}}"#;
        let keys: Vec<_> = parse_docker_config_json(doc.as_bytes())
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["z.io", "a.io", "m.io"]);
    }

    #[test]
    fn docker_cli_config_fields_are_exposed() {
        let doc = r#"{
            "auths": {"ghcr.io": {"identitytoken": "tok", "registrytoken": "rt"}},
            "credsStore": "desktop",
            "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login", "bad": 5},
            "HttpHeaders": {"User-Agent": "x"},
            "experimental": "enabled"
        }"#;
        let config = parse_docker_config_json(doc.as_bytes()).unwrap();
        assert_eq!(config.creds_store.as_deref(), Some("desktop"));
        assert_eq!(
            config
                .cred_helpers
                .get("123.dkr.ecr.us-east-1.amazonaws.com")
                .map(String::as_str),
            Some("ecr-login")
        );
        assert!(!config.cred_helpers.contains_key("bad"));
        let entry = config.entry("ghcr.io").unwrap();
        assert_eq!(entry.identity_token.as_deref(), Some("tok"));
        assert_eq!(entry.registry_token.as_deref(), Some("rt"));
        assert!(!entry.has_kubelet_credentials());
    }

    #[test]
    fn nulls_are_empty_values_like_go() {
        assert!(parse_docker_config_json(b"null")
            .unwrap()
            .entries
            .is_empty());
        assert!(parse_docker_config_json(br#"{"auths":null}"#)
            .unwrap()
            .entries
            .is_empty());
        assert!(parse_docker_config_json(b"{}").unwrap().entries.is_empty());
        assert!(parse_dockercfg(b"null").unwrap().entries.is_empty());
        let entry = &parse_dockercfg(br#"{"r.io":{"username":null}}"#)
            .unwrap()
            .entries[0];
        assert_eq!(entry.username, "");
    }

    #[test]
    fn wrong_json_types_are_errors() {
        let json_cases: [&[u8]; 8] = [
            b"[]",
            b"\"x\"",
            br#"{"auths":[]}"#,
            br#"{"auths":"x"}"#,
            br#"{"auths":{"r.io":"hunter2"}}"#,
            br#"{"auths":{"r.io":{"password":5}}}"#,
            br#"{"auths":{"r.io":{"auth":true}}}"#,
            br#"{"HttpHeaders":{"a":1}}"#,
        ];
        for doc in json_cases {
            let err = parse_docker_config_json(doc).unwrap_err();
            assert_eq!(
                err.kind,
                K::WrongJsonType,
                "{}: {err}",
                String::from_utf8_lossy(doc)
            );
            assert!(!err.to_string().contains("hunter2"));
        }
        for doc in [
            &b"[]"[..],
            b"5",
            br#"{"r.io":[]}"#,
            br#"{"r.io":{"email":{}}}"#,
        ] {
            assert_eq!(parse_dockercfg(doc).unwrap_err().kind, K::WrongJsonType);
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column_without_content() {
        let doc = b"{\n  \"auths\": {\n    \"r.io\": {\"password\": \"hunter2\"\n  }\n";
        let err = parse_docker_config_json(doc).unwrap_err();
        assert_eq!(err.kind, K::MalformedJson);
        assert!(
            err.to_string().starts_with("malformed JSON at line"),
            "{err}"
        );
        assert!(!format!("{err} {err:?}").contains("hunter2"));

        let err = parse_docker_config_json(b"{\"auths\": {,}}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed JSON at line 1 column 12: key must be a string"
        );
        for doc in [&b""[..], b"{", b"{} x", b"\xef\xbb\xbf{}", b"{'a':1}"] {
            assert_eq!(
                parse_docker_config_json(doc).unwrap_err().kind,
                K::MalformedJson
            );
        }
    }

    #[test]
    fn pull_secret_checks_type_key_and_content() {
        let good = format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("u:p"));
        let good_cfg = format!(r#"{{"r.io":{{"auth":"{}"}}}}"#, b64("u:p"));
        let cases: Vec<(Option<&str>, BTreeMap<String, Vec<u8>>, Result<usize, K>)> = vec![
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(DOCKER_CONFIG_JSON_KEY, &good),
                Ok(1),
            ),
            (
                Some(DOCKERCFG_TYPE),
                secret_data(DOCKERCFG_KEY, &good_cfg),
                Ok(1),
            ),
            (
                Some("Opaque"),
                secret_data(DOCKER_CONFIG_JSON_KEY, &good),
                Err(K::WrongSecretType),
            ),
            (
                None,
                secret_data(DOCKER_CONFIG_JSON_KEY, &good),
                Err(K::WrongSecretType),
            ),
            (
                Some("kubernetes.io/basic-auth"),
                secret_data("username", "u"),
                Err(K::WrongSecretType),
            ),
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(DOCKERCFG_KEY, &good_cfg),
                Err(K::MissingKey),
            ),
            (
                Some(DOCKERCFG_TYPE),
                secret_data(DOCKER_CONFIG_JSON_KEY, &good),
                Err(K::MissingKey),
            ),
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                BTreeMap::new(),
                Err(K::MissingKey),
            ),
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(DOCKER_CONFIG_JSON_KEY, ""),
                Err(K::EmptyData),
            ),
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(DOCKER_CONFIG_JSON_KEY, "{"),
                Err(K::MalformedJson),
            ),
            // A .dockercfg body under the dockerconfigjson key: valid JSON, no `auths`, no entries.
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(DOCKER_CONFIG_JSON_KEY, &good_cfg),
                Ok(0),
            ),
            (
                Some(DOCKER_CONFIG_JSON_TYPE),
                secret_data(
                    DOCKER_CONFIG_JSON_KEY,
                    r#"{"auths":{"r.io":{"auth":"aHVudGVyMg=="}}}"#,
                ),
                Err(K::AuthWithoutColon),
            ),
        ];
        for (secret_type, data, expected) in cases {
            let result = parse_pull_secret(secret_type, &data);
            match (&result, &expected) {
                (Ok(config), Ok(n)) => assert_eq!(config.entries.len(), *n),
                (Err(err), Err(kind)) => {
                    assert_eq!(err.kind, *kind, "{err}");
                    assert!(!err.to_string().contains("hunter2"));
                }
                _ => panic!(
                    "{secret_type:?} {:?}: got {result:?}, expected {expected:?}",
                    data.keys()
                ),
            }
        }
        assert!(K::MissingKey.kubelet_ignores_secret());
        assert!(!K::AuthNotBase64.kubelet_ignores_secret());
    }

    #[test]
    fn debug_output_is_redacted() {
        let doc = format!(
            r#"{{"auths":{{"r.io":{{"auth":"{}","email":"me@x.io","identitytoken":"dG9rZW4"}}}}}}"#,
            b64("alice:hunter2")
        );
        let config = parse_docker_config_json(doc.as_bytes()).unwrap();
        let shown = format!("{config:?} {:#?}", config.entries[0]);
        assert!(
            shown.contains("r.io") && shown.contains("<redacted>"),
            "{shown}"
        );
        for word in [
            "alice",
            "hunter2",
            "me@x.io",
            "dG9rZW4",
            &b64("alice:hunter2"),
        ] {
            assert!(!shown.contains(word), "{shown} leaks {word}");
        }
    }

    #[test]
    fn encode_matches_kubectl() {
        assert_eq!(encode_auth("u", "p"), "dTpw");
        assert_eq!(
            decode_auth("k", &encode_auth("a:b", "c")).unwrap(),
            ("a".into(), "b:c".into())
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_docker_config_json(&bytes);
                let _ = parse_dockercfg(&bytes);
                let data = BTreeMap::from([(DOCKER_CONFIG_JSON_KEY.to_string(), bytes.clone())]);
                let _ = parse_pull_secret(Some(DOCKER_CONFIG_JSON_TYPE), &data);
            }

            #[test]
            fn json_shaped_input_never_panics(
                key in "[a-z.:/]{0,12}",
                field in "(auth|username|password|email|Auth|identitytoken)",
                value in "[A-Za-z0-9+/=:\\n]{0,24}",
            ) {
                let doc = serde_json::json!({ "auths": { key.clone(): { field.clone(): value.clone() } } });
                let _ = parse_docker_config_json(doc.to_string().as_bytes());
                let doc = serde_json::json!({ key: { field: value } });
                let _ = parse_dockercfg(doc.to_string().as_bytes());
            }

            #[test]
            fn auth_round_trips(user in "[^:]{0,12}", pass in "\\PC{0,12}") {
                let (u, p) = decode_auth("k", &encode_auth(&user, &pass)).unwrap();
                prop_assert_eq!((u, p), (user, pass));
            }
        }
    }
}
