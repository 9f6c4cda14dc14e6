//! In-memory object store: one `BTreeMap` per resource keyed by (namespace, name), each object
//! kept both as a `serde_json::Value` and pre-serialized (without kind/apiVersion, as list items
//! are served by the real apiserver).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::resources::{ResourceDef, RESOURCES};

/// A stored object: its JSON bytes plus a small extract used by selectors. The full
/// `Value` is parsed on demand (keeping 50k parsed pods would cost gigabytes).
#[derive(Debug, Clone)]
pub struct Obj {
    /// JSON of the object without `kind`/`apiVersion` (list item form).
    pub item_bytes: Bytes,
    /// `metadata.{name,namespace,labels}` and the selectable fields, for label/field selectors.
    pub sel: Value,
    def: &'static ResourceDef,
}

/// Fields that field selectors may use (besides metadata.name/namespace).
const SELECTABLE: &[&str] = &[
    "spec.nodeName",
    "spec.serviceAccountName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
    "status.replicas",
    "status.successful",
    "involvedObject",
    "reason",
    "type",
    "source",
    "reportingComponent",
    "reportingController",
];

fn selectable(v: &Value) -> Value {
    let mut out = serde_json::json!({"metadata": {}});
    for k in ["name", "namespace", "labels"] {
        if let Some(x) = v.get("metadata").and_then(|m| m.get(k)) {
            out["metadata"][k] = x.clone();
        }
    }
    for path in SELECTABLE {
        let mut cur = Some(v);
        for part in path.split('.') {
            cur = cur.and_then(|c| c.get(part));
        }
        if let Some(x) = cur {
            let mut parts = path.split('.').peekable();
            let mut dst = &mut out;
            while let Some(p) = parts.next() {
                if parts.peek().is_none() {
                    dst[p] = x.clone();
                } else {
                    if dst.get(p).is_none() {
                        dst[p] = serde_json::json!({});
                    }
                    dst = &mut dst[p];
                }
            }
        }
    }
    out
}

struct SkipTypeMeta<'a>(&'a Map<String, Value>);

impl Serialize for SkipTypeMeta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if k != "kind" && k != "apiVersion" {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

impl Obj {
    pub fn new(def: &'static ResourceDef, value: &Value) -> Obj {
        let item_bytes = match value {
            Value::Object(m) => serde_json::to_vec(&SkipTypeMeta(m)).unwrap(),
            other => serde_json::to_vec(other).unwrap(),
        };
        Obj {
            item_bytes: Bytes::from(item_bytes),
            sel: selectable(value),
            def,
        }
    }

    /// Build from pre-serialized item bytes (no kind/apiVersion) and a selector extract
    /// (same shape as [`Obj::new`] computes).
    pub fn from_parts(def: &'static ResourceDef, item_bytes: Bytes, sel: Value) -> Obj {
        Obj {
            item_bytes,
            sel,
            def,
        }
    }

    /// The full object (with `kind` and `apiVersion`), parsed from the stored bytes.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.full_bytes(self.def)).expect("stored JSON")
    }

    /// Full JSON (with kind/apiVersion first), built from the cached item bytes.
    pub fn full_bytes(&self, def: &ResourceDef) -> Vec<u8> {
        let head = format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\"",
            def.kind,
            def.api_version()
        );
        let mut out = Vec::with_capacity(self.item_bytes.len() + head.len() + 2);
        out.extend_from_slice(head.as_bytes());
        if self.item_bytes.len() > 2 {
            out.push(b',');
            out.extend_from_slice(&self.item_bytes[1..]);
        } else {
            out.push(b'}');
        }
        out
    }
}

pub type Key = (String, String);

/// The whole store. Guarded by a `RwLock` in the server.
pub struct Store {
    /// Last resourceVersion handed out.
    pub rv: u64,
    maps: Vec<BTreeMap<Key, Obj>>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            rv: 1000,
            maps: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
        }
    }
}

fn idx(def: &ResourceDef) -> usize {
    RESOURCES
        .iter()
        .position(|d| d == def)
        .expect("unknown resource")
}

impl Store {
    pub fn map(&self, def: &ResourceDef) -> &BTreeMap<Key, Obj> {
        &self.maps[idx(def)]
    }

    pub fn map_mut(&mut self, def: &ResourceDef) -> &mut BTreeMap<Key, Obj> {
        &mut self.maps[idx(def)]
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Option<&Obj> {
        self.map(def).get(&(ns.to_string(), name.to_string()))
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Store a finished object (metadata already filled in).
    pub fn put(&mut self, def: &'static ResourceDef, value: Value) {
        let ns = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.map_mut(def).insert((ns, name), Obj::new(def, &value));
    }

    pub fn put_obj(&mut self, def: &'static ResourceDef, ns: &str, name: &str, obj: Obj) {
        self.map_mut(def)
            .insert((ns.to_string(), name.to_string()), obj);
    }

    pub fn remove(&mut self, def: &ResourceDef, ns: &str, name: &str) -> Option<Obj> {
        self.map_mut(def)
            .remove(&(ns.to_string(), name.to_string()))
    }

    /// Remove every namespaced object of a namespace.
    pub fn purge_namespace(&mut self, ns: &str) {
        for (i, def) in RESOURCES.iter().enumerate() {
            if def.namespaced {
                self.maps[i].retain(|(n, _), _| n != ns);
            }
        }
    }
}

/// RFC 3339 UTC timestamp (seconds precision) like the apiserver writes.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_rfc3339(secs)
}

pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parse `YYYY-MM-DDTHH:MM:SS...Z` into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // days_from_civil (Howard Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// A random RFC 4122 v4 UUID string.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Kinds that carry `metadata.generation`.
pub fn has_generation(def: &ResourceDef) -> bool {
    matches!(
        def.kind,
        "Pod"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicationController"
            | "Job"
            | "CronJob"
    )
}

/// Put `kind` and `apiVersion` first, then the rest, in a fresh map.
pub fn with_type_meta(def: &ResourceDef, v: Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(def.kind.into()));
    out.insert("apiVersion".into(), Value::String(def.api_version()));
    if let Value::Object(m) = v {
        for (k, val) in m {
            if k != "kind" && k != "apiVersion" {
                out.insert(k, val);
            }
        }
    }
    Value::Object(out)
}

/// Fill in server-owned metadata of a new object: namespace, uid, resourceVersion,
/// creationTimestamp, generation. Keeps uid/creationTimestamp when already present.
pub fn prepare_new(def: &ResourceDef, v: Value, ns: &str, rv: u64) -> Value {
    let mut v = with_type_meta(def, v);
    let obj = v.as_object_mut().unwrap();
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let m = meta.as_object_mut().unwrap();
    // Reorder metadata like the real server: name, namespace, uid, resourceVersion,
    // generation, creationTimestamp, then the rest.
    let mut out = Map::new();
    if let Some(n) = m.get("name") {
        out.insert("name".into(), n.clone());
    }
    if let Some(g) = m.get("generateName") {
        out.insert("generateName".into(), g.clone());
    }
    if def.namespaced {
        out.insert("namespace".into(), Value::String(ns.to_string()));
    }
    out.insert(
        "uid".into(),
        m.get("uid")
            .filter(|u| u.as_str().is_some_and(|s| !s.is_empty()))
            .cloned()
            .unwrap_or_else(|| Value::String(new_uid())),
    );
    out.insert("resourceVersion".into(), Value::String(rv.to_string()));
    if has_generation(def) {
        out.insert(
            "generation".into(),
            m.get("generation").cloned().unwrap_or(Value::from(1)),
        );
    }
    out.insert(
        "creationTimestamp".into(),
        m.get("creationTimestamp")
            .filter(|t| !t.is_null())
            .cloned()
            .unwrap_or_else(|| Value::String(now_rfc3339())),
    );
    for (k, val) in m.iter() {
        if !out.contains_key(k) && k != "namespace" && k != "resourceVersion" {
            out.insert(k.clone(), val.clone());
        }
    }
    *m = out;
    if def.kind == "Namespace" {
        let status = obj.entry("status").or_insert_with(|| serde_json::json!({}));
        if let Some(s) = status.as_object_mut() {
            s.entry("phase").or_insert_with(|| "Active".into());
        }
        let spec = obj.entry("spec").or_insert_with(|| serde_json::json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.entry("finalizers")
                .or_insert_with(|| serde_json::json!(["kubernetes"]));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    }

    #[test]
    fn full_bytes() {
        let def = crate::resources::lookup("pods").unwrap();
        let v = serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}});
        let o = Obj::new(def, &v);
        assert_eq!(o.value(), v);
        assert_eq!(&o.item_bytes[..], br#"{"metadata":{"name":"a"}}"#);
        assert_eq!(
            o.full_bytes(def),
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"}}"#
        );
    }
}
