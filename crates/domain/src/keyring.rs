//! The kubelet's credential matching: which pull-secret entries serve an image, in which order.
//!
//! A port of `BasicDockerKeyring` (`pkg/credentialprovider/keyring.go`) with the Go library
//! behaviour it relies on: `net/url.Parse` for keys, `net.SplitHostPort`, and `path/filepath.Match`
//! for the glob in each host label.
//!
//! - `Add` turns every `auths` key into an index key: a scheme is optional, the host keeps its port,
//!   a `/v1/` or `/v2/` path prefix is dropped (so `https://index.docker.io/v1/` is
//!   `index.docker.io`), any other path is kept.
//! - `Lookup` is called with the image's normalised name (`docker.io/library/nginx`, no tag). An
//!   index key matches when the ports are equal, the hosts have the same number of labels, every
//!   label matches as a glob, and the key's path is a *string* prefix of the image's path (so
//!   `r.io/team` also serves `r.io/teamevil/x`, exactly like the kubelet). Matches come in
//!   reverse-sorted key order, all entries of a key in the order they were added.
//! - Only when nothing matched, an image that "looks like Docker Hub" (`isDefaultRegistryMatch`:
//!   `docker.io/...`, `index.docker.io/...`, or a first component without `.` or `:`, which includes
//!   `localhost/...`) gets the entries of the key `index.docker.io`.
//!
//! So `https://index.docker.io/v1/`, `index.docker.io` and `docker.io` all serve `nginx`, while
//! `registry-1.docker.io` does not (three labels against `docker.io`'s two).
//!
//! The kubelet puts all of a pod's `imagePullSecrets` (the service account's are already merged
//! into the pod spec) into one keyring, in list order: call [`Keyring::add`] in that order. Go
//! iterates each secret's `auths` map in random order; this port uses document order.

use std::collections::HashMap;

use super::docker_config::{AuthEntry, DockerConfig};
use super::reference::ImageReference;

/// `defaultRegistryHost` in keyring.go: the only key the Docker Hub fallback reads.
const DEFAULT_REGISTRY_KEY: &str = "index.docker.io";

/// Credentials from one or more docker configs, indexed like the kubelet's keyring.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    entries: Vec<StoredEntry>,
    /// Positions in `entries` per index key, in insertion order.
    by_key: HashMap<String, Vec<usize>>,
    /// Unique index keys, reverse-sorted so that longer, more specific keys come first.
    index: Vec<String>,
}

#[derive(Debug, Clone)]
struct StoredEntry {
    source: String,
    index_key: String,
    entry: AuthEntry,
}

/// One entry that serves an image.
#[derive(Debug, Clone, Copy)]
pub struct KeyringMatch<'a> {
    /// What `add` was given as the source, e.g. the secret's name.
    pub source: &'a str,
    /// The `auths` key as written, e.g. `https://index.docker.io/v1/`.
    pub key: &'a str,
    pub entry: &'a AuthEntry,
    /// The key as the kubelet indexes it, e.g. `index.docker.io`.
    pub index_key: &'a str,
    /// `true` when the entry was found only through the Docker Hub fallback.
    pub docker_hub_fallback: bool,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every entry of `config`, as the kubelet's `BasicDockerKeyring.Add` does. Entries whose
    /// key is not a parseable URL are skipped (the kubelet logs and ignores them).
    pub fn add(&mut self, source: &str, config: &DockerConfig) {
        for entry in &config.entries {
            let Some(index_key) = index_key(&entry.key) else {
                continue;
            };
            self.by_key
                .entry(index_key.clone())
                .or_default()
                .push(self.entries.len());
            self.entries.push(StoredEntry {
                source: source.to_string(),
                index_key,
                entry: entry.clone(),
            });
        }
        let mut index: Vec<String> = self.by_key.keys().cloned().collect();
        index.sort_unstable_by(|a, b| b.cmp(a));
        self.index = index;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries the kubelet would try for `image`, in the kubelet's order.
    pub fn lookup(&self, image: &ImageReference) -> Vec<KeyringMatch<'_>> {
        self.lookup_name(&image.name())
    }

    /// Like [`Keyring::lookup`], for a name as the kubelet passes it (`registry/path`, no tag).
    pub fn lookup_name(&self, name: &str) -> Vec<KeyringMatch<'_>> {
        let direct: Vec<KeyringMatch<'_>> = self
            .index
            .iter()
            .filter(|key| urls_match(key, name))
            .flat_map(|key| self.matches_for(key, false))
            .collect();
        if !direct.is_empty() || !is_default_registry_match(name) {
            return direct;
        }
        self.matches_for(DEFAULT_REGISTRY_KEY, true).collect()
    }

    fn matches_for<'a>(
        &'a self,
        index_key: &str,
        docker_hub_fallback: bool,
    ) -> impl Iterator<Item = KeyringMatch<'a>> + 'a {
        self.by_key
            .get(index_key)
            .into_iter()
            .flatten()
            .map(move |&position| {
                let stored = &self.entries[position];
                KeyringMatch {
                    source: &stored.source,
                    key: &stored.entry.key,
                    entry: &stored.entry,
                    index_key: &stored.index_key,
                    docker_hub_fallback,
                }
            })
    }
}

/// The key the kubelet indexes an `auths` key under, or `None` when it ignores the key.
pub fn index_key(auths_key: &str) -> Option<String> {
    let with_scheme = if auths_key.starts_with("https://") || auths_key.starts_with("http://") {
        auths_key.to_string()
    } else {
        format!("https://{auths_key}")
    };
    let url = GoUrl::parse(&with_scheme)?;
    // docker treats `/v1/` and `/v2/` as the bare host (ResolveAuthConfig).
    let path = if url.path.starts_with("/v2/") || url.path.starts_with("/v1/") {
        &url.path[3..]
    } else {
        url.path.as_str()
    };
    if path.is_empty() || path == "/" {
        Some(url.host)
    } else {
        Some(format!("{}{path}", url.host))
    }
}

/// `URLsMatchStr(glob, target)`: both are scheme-less `host[:port][/path]`; a parse error or a
/// malformed glob is "no match", as in `Lookup`.
pub fn urls_match(glob: &str, target: &str) -> bool {
    let (Some(glob), Some(target)) = (
        GoUrl::parse(&format!("https://{glob}")),
        GoUrl::parse(&format!("https://{target}")),
    ) else {
        return false;
    };
    let (glob_labels, glob_port) = split_url(&glob.host);
    let (target_labels, target_port) = split_url(&target.host);
    glob_port == target_port
        && glob_labels.len() == target_labels.len()
        && target.path.starts_with(&glob.path)
        && glob_labels
            .iter()
            .zip(&target_labels)
            .all(|(pattern, label)| glob_match(pattern, label) == Ok(true))
}

/// `isDefaultRegistryMatch`: whether the kubelet would fall back to Docker Hub credentials.
pub fn is_default_registry_match(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    if first.is_empty() {
        return false;
    }
    if !name.contains('/') || first == "docker.io" || first == DEFAULT_REGISTRY_KEY {
        return true;
    }
    !first.contains(['.', ':'])
}

/// `SplitURL`: host labels and port, via `net.SplitHostPort` (no port when it fails).
fn split_url(host: &str) -> (Vec<&str>, &str) {
    let (host, port) = split_host_port(host).unwrap_or((host, ""));
    (host.split('.').collect(), port)
}

/// `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let last_colon = hostport.rfind(':')?;
    let (host, inner_start, after_bracket) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != last_colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[inner_start..].contains('[') || hostport[after_bracket..].contains(']') {
        return None;
    }
    Some((host, &hostport[last_colon + 1..]))
}

/// The parts of Go's `url.Parse` result that the keyring reads.
struct GoUrl {
    host: String,
    path: String,
}

impl GoUrl {
    /// `url.Parse` for `scheme://authority[/path][?query][#fragment]`; `None` where Go errors.
    fn parse(raw: &str) -> Option<GoUrl> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None;
        }
        let (before_fragment, fragment) = match raw.split_once('#') {
            Some((before, fragment)) => (before, fragment),
            None => (raw, ""),
        };
        percent_decode(fragment, false)?;
        let (_, after_scheme) = before_fragment.split_once("://")?;
        let without_query = after_scheme
            .split_once('?')
            .map_or(after_scheme, |(before, _)| before);
        let (authority, path) = match without_query.find('/') {
            Some(slash) => without_query.split_at(slash),
            None => (without_query, ""),
        };
        Some(GoUrl {
            host: parse_authority(authority)?,
            path: percent_decode(path, false)?,
        })
    }
}

fn parse_authority(authority: &str) -> Option<String> {
    let host = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            if !userinfo.chars().all(is_userinfo_char) {
                return None;
            }
            percent_decode(userinfo, false)?;
            &authority[at + 1..]
        }
        None => authority,
    };
    parse_host(host)
}

fn is_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)
}

/// `parseHost`: a valid optional `:port` after the host (or after `]`), then host unescaping.
fn parse_host(host: &str) -> Option<String> {
    let colon_port = if host.starts_with('[') {
        &host[host.rfind(']')? + 1..]
    } else {
        host.rfind(':').map_or("", |colon| &host[colon..])
    };
    let port_ok = colon_port.is_empty()
        || colon_port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return None;
    }
    percent_decode(host, true)
}

/// Go's `unescape`: `%XX` must be valid; in a host only non-ASCII bytes (and `%25`) may be escaped
/// and only RFC 3986 host characters may appear raw.
fn percent_decode(s: &str, is_host: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
            let value = (hi * 16 + lo) as u8;
            if is_host && value < 0x80 && &bytes[i..i + 3] != b"%25" {
                return None;
            }
            out.push(value);
            i += 3;
            continue;
        }
        if is_host && b < 0x80 && !is_raw_host_byte(b) {
            return None;
        }
        out.push(b);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn is_raw_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&b)
}

/// `path/filepath.Match` on Unix: a malformed pattern is an error, whatever the name.
#[derive(Debug, PartialEq, Eq)]
struct BadPattern;

fn glob_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest unless it holds a separator.
            return Ok(!name.contains(&b'/'));
        }
        let attempt = match_chunk(chunk, name)?;
        if let Some(after) = attempt {
            if after.is_empty() || !pattern.is_empty() {
                name = after;
                continue;
            }
        }
        if star {
            // Let the star eat 1..n bytes (never a separator) and retry the chunk.
            let mut skip = 0;
            while skip < name.len() && name[skip] != b'/' {
                if let Some(after) = match_chunk(chunk, &name[skip + 1..])? {
                    // As the last chunk, it must also use up the name.
                    if !pattern.is_empty() || after.is_empty() {
                        name = after;
                        continue 'chunks;
                    }
                }
                skip += 1;
            }
        }
        // No match; still report a malformed remainder of the pattern, as Go does.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next star outside a class.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches one star-free chunk at the start of `s`: `Ok(Some(rest))` on a match, `Ok(None)` on a
/// mismatch (after checking the whole chunk is well-formed).
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> Result<Option<&'s [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut rune = 0;
                if !failed {
                    let (decoded, width) = decode_rune(s);
                    rune = decoded;
                    s = &s[width..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_escaped(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (upper, rest) = get_escaped(&chunk[1..])?;
                        hi = upper;
                        chunk = rest;
                    }
                    if lo <= rune && rune <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// `getEsc`: one possibly escaped character of a class; it must be followed by more pattern.
fn get_escaped(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => &chunk[1..],
        Some(_) => chunk,
    };
    if chunk.is_empty() {
        return Err(BadPattern);
    }
    let (rune, width) = decode_rune(chunk);
    if rune == REPLACEMENT && width == 1 {
        return Err(BadPattern);
    }
    chunk = &chunk[width..];
    if chunk.is_empty() {
        return Err(BadPattern);
    }
    Ok((rune, chunk))
}

const REPLACEMENT: u32 = 0xFFFD;

/// `utf8.DecodeRune`: an invalid or truncated sequence is U+FFFD of width 1.
fn decode_rune(bytes: &[u8]) -> (u32, usize) {
    let Some(&lead) = bytes.first() else {
        return (REPLACEMENT, 0);
    };
    let width = match lead {
        0x00..=0x7f => return (u32::from(lead), 1),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (REPLACEMENT, 1),
    };
    bytes
        .get(..width)
        .and_then(|sequence| std::str::from_utf8(sequence).ok())
        .and_then(|text| text.chars().next())
        .map_or((REPLACEMENT, 1), |c| (u32::from(c), width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_config::parse_dockercfg;

    fn config(keys: &[(&str, &str)]) -> DockerConfig {
        DockerConfig {
            entries: keys
                .iter()
                .map(|(key, user)| AuthEntry {
                    key: key.to_string(),
                    username: user.to_string(),
                    password: "pw".to_string(),
                    email: None,
                    identity_token: None,
                    registry_token: None,
                })
                .collect(),
            ..DockerConfig::default()
        }
    }

    fn users(matches: &[KeyringMatch<'_>]) -> Vec<String> {
        matches.iter().map(|m| m.entry.username.clone()).collect()
    }

    fn image(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap()
    }

    /// keyring_test.go TestUrlsMatch, plus port, path and glob edge cases.
    #[test]
    fn urls_match_table() {
        let cases = [
            ("*.kubernetes.io", "prefix.kubernetes.io", true),
            ("prefix.*.io", "prefix.kubernetes.io", true),
            ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
            ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
            ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true),
            ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true),
            (
                "*.kubernetes.io:1111/blah",
                "prefix.kubernetes.io:1111/blah",
                true,
            ),
            (
                "prefix.*.io:1111/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                true,
            ),
            ("*.kubernetes.io", "kubernetes.io", false),
            ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
            ("*.*.kubernetes.io", "kubernetes.io", false),
            ("kubernetes.io", "kubernetes.com", false),
            ("k*.io", "quay.io", false),
            (
                "*.kubernetes.io:1234/blah",
                "prefix.kubernetes.io:1111/blah",
                false,
            ),
            (
                "prefix.*.io/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                false,
            ),
            // Ports must be equal, including "no port".
            ("registry.io", "registry.io:5000/app", false),
            ("registry.io:5000", "registry.io/app", false),
            ("localhost:5000", "localhost:5000/app", true),
            ("[::1]:5000", "[::1]:5000/app", true),
            // Paths are string prefixes, exactly like the kubelet.
            ("registry.io/team", "registry.io/teamevil/app", true),
            ("registry.io/team/", "registry.io/teamevil/app", false),
            // Labels are not prefixes.
            ("myregistry.io", "myregistry.io.evil.com/app", false),
            ("docker.io", "docker.io.evil.com/app", false),
            // Other glob characters, within one label.
            // `?` starts the URL query before it can be a glob.
            ("registr?.io", "registry.io/app", false),
            ("reg[a-z]stry.io", "registry.io/app", true),
            ("reg[^a-z]stry.io", "registry.io/app", false),
            // A backslash is not a legal host character for Go's URL parser.
            ("reg\\istry.io", "registry.io/app", false),
            ("*.io", "a.b.io/app", false),
            // Malformed globs never match.
            ("reg[istry.io", "registry.io/app", false),
            ("registry[.io", "registry[.io/app", false),
            ("registry\\", "registry\\/app", false),
            // Keys the URL parser rejects never match.
            ("registry.io:abc", "registry.io:abc/app", false),
            ("bad host.io", "bad host.io/app", false),
        ];
        for (glob, target, expected) in cases {
            assert_eq!(urls_match(glob, target), expected, "{glob} vs {target}");
        }
    }

    #[test]
    fn go_glob_semantics() {
        let cases = [
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                glob_match(pattern, name),
                expected,
                "{pattern:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn index_keys_like_kubelet_add() {
        let cases = [
            ("https://index.docker.io/v1/", Some("index.docker.io")),
            ("index.docker.io", Some("index.docker.io")),
            ("https://index.docker.io/v2/", Some("index.docker.io")),
            ("http://registry.io:5000/v2/", Some("registry.io:5000")),
            ("registry.io/v1/team", Some("registry.io/team")),
            ("registry.io/team", Some("registry.io/team")),
            ("registry.io/", Some("registry.io")),
            ("user:pass@registry.io", Some("registry.io")),
            ("registry.io?x=1", Some("registry.io")),
            ("registry.io/a%20b", Some("registry.io/a b")),
            ("registry.io:abc", None),
            ("registry.io/%zz", None),
            ("bad host", None),
            // Only lowercase schemes are recognised: Go reads host "HTTPS:" and path "//registry.io".
            ("HTTPS://registry.io", Some("HTTPS://registry.io")),
        ];
        for (key, expected) in cases {
            assert_eq!(index_key(key).as_deref(), expected, "{key}");
        }
    }

    /// keyring_test.go TestDockerKeyringForGlob and TestKeyringMiss, through a parsed .dockercfg.
    #[test]
    fn keyring_glob_hits_and_misses() {
        let hits = [
            ("https://hello.kubernetes.io", "hello.kubernetes.io"),
            ("https://*.docker.io", "prefix.docker.io"),
            ("https://prefix.*.io", "prefix.docker.io"),
            ("https://prefix.docker.*", "prefix.docker.io"),
            ("https://*.docker.io/path", "prefix.docker.io/path"),
            ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
            ("https://prefix.docker.*/path", "prefix.docker.io/path"),
            ("https://*.docker.io:8888", "prefix.docker.io:8888"),
            ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
            ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
            (
                "https://*.docker.io/path:1111",
                "prefix.docker.io/path:1111",
            ),
            ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
            ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
            (
                "https://prefix.docker.*/path:1111",
                "prefix.docker.io/path:1111",
            ),
            ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
            ("*.docker.io:1111", "prefix.docker.io:1111/path"),
        ];
        let misses = [
            ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
            ("https://*.docker.com", "prefix.docker.io"),
            ("https://suffix.*.io", "prefix.docker.io"),
            ("https://prefix.docker.c*", "prefix.docker.io"),
            (
                "https://prefix.*.io/path:1111",
                "prefix.docker.io/path/subpath:1111",
            ),
            ("suffix.*.io", "prefix.docker.io"),
        ];
        let auth = "Zm9vOmJhcg=="; // foo:bar
        for (key, target, expected) in hits
            .iter()
            .map(|(k, t)| (k, t, true))
            .chain(misses.iter().map(|(k, t)| (k, t, false)))
        {
            let doc = format!(r#"{{"{key}": {{"email": "foo@bar.baz", "auth": "{auth}"}}}}"#);
            let mut keyring = Keyring::new();
            keyring.add("secret", &parse_dockercfg(doc.as_bytes()).unwrap());
            let found = keyring.lookup_name(&format!("{target}/foo/bar"));
            assert_eq!(!found.is_empty(), expected, "{key} for {target}");
            if expected {
                assert_eq!(found[0].entry.username, "foo");
                assert_eq!(found[0].entry.password, "bar");
                assert_eq!(found[0].entry.email.as_deref(), Some("foo@bar.baz"));
            }
        }
    }

    #[test]
    fn docker_hub_keys() {
        for (key, serves_docker_hub) in [
            ("https://index.docker.io/v1/", true),
            ("index.docker.io", true),
            ("https://index.docker.io/v2/", true),
            ("docker.io", true),
            ("https://docker.io", true),
            ("docker.io/library", true),
            ("registry-1.docker.io", false),
            ("https://registry-1.docker.io/v2/", false),
            ("index.docker.io/library", false), // only the bare host is the fallback key
            ("*.docker.io", false),
        ] {
            let mut keyring = Keyring::new();
            keyring.add("s", &config(&[(key, "u")]));
            for name in [
                "nginx",
                "docker.io/library/nginx",
                "index.docker.io/nginx",
                "library/nginx",
            ] {
                let found = keyring.lookup(&image(name));
                assert_eq!(!found.is_empty(), serves_docker_hub, "{key} for {name}");
            }
            // Never for another registry.
            assert!(
                keyring.lookup(&image("quay.io/library/nginx")).is_empty(),
                "{key}"
            );
        }
    }

    /// TestKeyringHitWithUnqualifiedDockerHub & co, and TestIsDefaultRegistryMatch.
    #[test]
    fn docker_hub_fallback_like_the_kubelet() {
        let mut keyring = Keyring::new();
        keyring.add("s", &config(&[("https://index.docker.io/v1/", "foo")]));
        for name in [
            "google/docker-registry",
            "jenkins",
            "index.docker.io/v1//google/docker-registry",
        ] {
            let found = keyring.lookup_name(name);
            assert_eq!(users(&found), ["foo"], "{name}");
        }
        assert!(keyring.lookup_name("world.mesos.org/foo/bar").is_empty());
        // localhost has no `.` or `:`, so the kubelet offers Docker Hub credentials to it.
        let found = keyring.lookup(&image("localhost/app"));
        assert!(found[0].docker_hub_fallback);
        assert!(keyring.lookup(&image("localhost:5000/app")).is_empty());

        for (name, expected) in [
            ("foo/bar", true),
            ("docker.io/foo/bar", true),
            ("index.docker.io/foo/bar", true),
            ("foo", true),
            ("", false),
            ("registry.tld/foo/bar", false),
            ("registry:5000/foo/bar", false),
            ("myhostdocker.io/foo/bar", false),
        ] {
            assert_eq!(is_default_registry_match(name), expected, "{name:?}");
        }
    }

    /// TestDockerKeyringLookup and TestIssue3797.
    #[test]
    fn more_specific_keys_first() {
        let mut keyring = Keyring::new();
        keyring.add(
            "s",
            &config(&[
                ("bar.example.com/pong", "grace"),
                ("bar.example.com", "ada"),
            ]),
        );
        let cases: [(&str, &[&str]); 7] = [
            ("bar.example.com", &["ada"]),
            ("bar.example.com/pong", &["grace", "ada"]),
            ("bar.example.com/ping", &["ada"]),
            ("bar.example.com/pongz", &["grace", "ada"]),
            ("bar.example.com/pong/pang", &["grace", "ada"]),
            ("example.com", &[]),
            ("foo.example.com", &[]),
        ];
        for (name, expected) in cases {
            assert_eq!(users(&keyring.lookup_name(name)), expected, "{name}");
        }

        let mut keyring = Keyring::new();
        keyring.add("s", &config(&[("https://quay.io/v1/", "rex")]));
        for name in ["quay.io", "quay.io/foo", "quay.io/foo/bar"] {
            assert_eq!(users(&keyring.lookup_name(name)), ["rex"], "{name}");
        }
    }

    #[test]
    fn several_secrets_share_one_index() {
        let mut keyring = Keyring::new();
        keyring.add(
            "first",
            &config(&[("registry.io", "a"), ("*.registry.io", "wild")]),
        );
        keyring.add(
            "second",
            &config(&[("https://registry.io/v2/", "b"), ("registry.io/team", "t")]),
        );
        keyring.add("third", &config(&[("registry.io:5000", "port")]));
        let found = keyring.lookup(&image("registry.io/team/app:1"));
        // Reverse-sorted keys: "registry.io/team" > "registry.io"; same key in add order.
        assert_eq!(users(&found), ["t", "a", "b"]);
        let sources: Vec<_> = found.iter().map(|m| m.source).collect();
        assert_eq!(sources, ["second", "first", "second"]);
        assert_eq!(found[2].key, "https://registry.io/v2/");
        assert_eq!(found[2].index_key, "registry.io");
        assert!(found.iter().all(|m| !m.docker_hub_fallback));

        assert_eq!(users(&keyring.lookup(&image("eu.registry.io/x"))), ["wild"]);
        assert_eq!(
            users(&keyring.lookup(&image("registry.io:5000/x"))),
            ["port"]
        );
        assert!(keyring.lookup(&image("registry.io.evil.com/x")).is_empty());
        assert!(keyring.lookup(&image("nginx")).is_empty());
    }

    #[test]
    fn wildcard_keys_sort_after_letters() {
        // '*' sorts before letters, so reverse order puts exact hosts before globs.
        let mut keyring = Keyring::new();
        keyring.add("s", &config(&[("*.io", "glob"), ("quay.io", "exact")]));
        assert_eq!(
            users(&keyring.lookup(&image("quay.io/a/b"))),
            ["exact", "glob"]
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn matching_never_panics(glob in "\\PC{0,24}", target in "\\PC{0,24}") {
                let _ = urls_match(&glob, &target);
                let _ = index_key(&glob);
                let _ = is_default_registry_match(&target);
            }

            #[test]
            fn glob_like_input_never_panics(pattern in "[a-c*?\\[\\]\\\\^-]{0,12}", name in "[a-c/☺-]{0,8}") {
                let _ = glob_match(&pattern, &name);
            }
        }
    }
}
