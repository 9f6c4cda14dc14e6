//! Rendering: Kubernetes objects as kubectl prints them (`-o json|yaml|name`), terminal
//! detection for colours and progress, and shared table helpers. Report renderers (audit table,
//! SARIF) build on these.
use std::io::{IsTerminal, Write};

use serde::Serialize;
use serde_json::Value;

use crate::cli::ObjectOutput;
use crate::error::{Error, Result};

/// JSON as kubectl prints it: 4-space indentation, trailing newline.
pub fn to_kubectl_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    value
        .serialize(&mut ser)
        .map_err(|e| Error::other(format!("cannot render JSON: {e}")))?;
    buf.push(b'\n');
    String::from_utf8(buf).map_err(|e| Error::other(e.to_string()))
}

/// YAML as kubectl prints it: map keys sorted (kubectl goes through JSON and a Go map).
pub fn to_kubectl_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let v = serde_json::to_value(value).map_err(|e| Error::other(e.to_string()))?;
    to_yaml(&sorted(v))
}

/// YAML keeping the document's own key order (for reports, whose field order is the contract's).
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String> {
    // Like kubectl (go-yaml): long strings stay on one line instead of being folded.
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
        .map_err(|e| Error::other(format!("cannot render YAML: {e}")))
}

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> =
                m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// kubectl's `-o name`: `secret/regcred`, `deployment.apps/web`.
pub fn object_name(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = kind.to_ascii_lowercase();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// Prints an object in the requested format to stdout.
pub fn print_object(obj: &Value, format: ObjectOutput) -> Result<()> {
    let text = match format {
        ObjectOutput::Json => to_kubectl_json(obj)?,
        ObjectOutput::Yaml => to_kubectl_yaml(obj)?,
        ObjectOutput::Name => format!("{}\n", object_name(obj)),
    };
    write_stdout(&text)
}

/// Several objects: a `List` for JSON/YAML (as kubectl prints several), one name per line for `name`.
pub fn print_objects(objs: &[Value], format: ObjectOutput) -> Result<()> {
    if objs.len() == 1 {
        return print_object(&objs[0], format);
    }
    match format {
        ObjectOutput::Name => {
            let text: String = objs
                .iter()
                .map(|o| format!("{}\n", object_name(o)))
                .collect();
            write_stdout(&text)
        }
        _ => {
            let list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "items": objs,
                "metadata": { "resourceVersion": "" },
            });
            print_object(&list, format)
        }
    }
}

/// Writes to stdout, treating a closed pipe (`| head`) as success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::other(format!("cannot write to stdout: {e}"))),
    }
}

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn use_colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Progress lines go to stderr, and only when stderr is a terminal.
pub fn show_progress() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress line on stderr when it is a terminal ("reading the cluster: 1500 objects",
/// "inspecting images: 3/40"), rewritten in place and wiped by [`Progress::finish`].
pub struct Progress {
    on: bool,
    what: &'static str,
    /// Counted up to this (`n/total`), else a count of `unit`.
    total: Option<usize>,
    unit: &'static str,
    count: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// Counts `unit`s, with no known total.
    pub fn counting(what: &'static str, unit: &'static str) -> Self {
        Self::new(what, None, unit)
    }

    /// Counts up to `total` (no line at all when there is nothing to count).
    pub fn of(what: &'static str, total: usize) -> Self {
        let p = Self::new(what, Some(total), "");
        p.add(0);
        p
    }

    fn new(what: &'static str, total: Option<usize>, unit: &'static str) -> Self {
        Progress {
            on: total != Some(0) && show_progress(),
            what,
            total,
            unit,
            count: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn add(&self, n: usize) {
        let count = self
            .count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
            + n;
        if self.on {
            match self.total {
                Some(total) => eprint!("\r{}: {count}/{total}", self.what),
                None => eprint!("\r{}: {count} {}", self.what, self.unit),
            }
        }
    }

    pub fn finish(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// A warning on stderr, kubectl style.
pub fn warn(msg: &str) {
    eprintln!("Warning: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_kubectl() {
        assert_eq!(
            object_name(&json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"r"}})),
            "secret/r"
        );
        assert_eq!(
            object_name(
                &json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"w"}})
            ),
            "deployment.apps/w"
        );
    }

    #[test]
    fn json_uses_four_spaces_and_yaml_sorts_keys() {
        let v = json!({"kind":"Secret","apiVersion":"v1"});
        assert_eq!(
            to_kubectl_json(&v).unwrap(),
            "{\n    \"kind\": \"Secret\",\n    \"apiVersion\": \"v1\"\n}\n"
        );
        let y = to_kubectl_yaml(&v).unwrap();
        assert!(
            y.find("apiVersion").unwrap() < y.find("kind").unwrap(),
            "{y}"
        );
    }
}
