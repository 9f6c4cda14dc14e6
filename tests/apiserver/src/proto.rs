//! Just enough Kubernetes protobuf decoding for the request bodies kubectl's typed clients send
//! (`kubectl create secret|serviceaccount|namespace|role|rolebinding|clusterrole|
//! clusterrolebinding`). Bodies are `k8s\0` + `runtime.Unknown{typeMeta, raw}`.

use base64::Engine;
use serde_json::{Map, Value};

#[derive(Clone, Copy)]
enum F {
    Str(&'static str),
    Int(&'static str),
    Bool(&'static str),
    /// repeated string
    Strs(&'static str),
    /// map<string,bytes> rendered base64
    BytesMap(&'static str),
    /// map<string,string>
    StrMap(&'static str),
    Msg(&'static str, Desc),
    Msgs(&'static str, Desc),
}

type Desc = &'static [(u32, F)];

const OBJECT_META: Desc = &[
    (1, F::Str("name")),
    (2, F::Str("generateName")),
    (3, F::Str("namespace")),
    (5, F::Str("uid")),
    (6, F::Str("resourceVersion")),
    (7, F::Int("generation")),
    (11, F::StrMap("labels")),
    (12, F::StrMap("annotations")),
    (14, F::Strs("finalizers")),
];
const OBJECT_REF: Desc = &[
    (1, F::Str("kind")),
    (2, F::Str("namespace")),
    (3, F::Str("name")),
    (4, F::Str("uid")),
    (5, F::Str("apiVersion")),
];
const LOCAL_REF: Desc = &[(1, F::Str("name"))];
const POLICY_RULE: Desc = &[
    (1, F::Strs("verbs")),
    (2, F::Strs("apiGroups")),
    (3, F::Strs("resources")),
    (4, F::Strs("resourceNames")),
    (5, F::Strs("nonResourceURLs")),
];
const SUBJECT: Desc = &[
    (1, F::Str("kind")),
    (2, F::Str("apiGroup")),
    (3, F::Str("name")),
    (4, F::Str("namespace")),
];
const ROLE_REF: Desc = &[
    (1, F::Str("apiGroup")),
    (2, F::Str("kind")),
    (3, F::Str("name")),
];
const NS_SPEC: Desc = &[(1, F::Strs("finalizers"))];

fn desc_for(kind: &str) -> Option<Desc> {
    Some(match kind {
        "Secret" => &[
            (1, F::Msg("metadata", OBJECT_META)),
            (2, F::BytesMap("data")),
            (3, F::Str("type")),
            (4, F::StrMap("stringData")),
            (5, F::Bool("immutable")),
        ],
        "ServiceAccount" => &[
            (1, F::Msg("metadata", OBJECT_META)),
            (2, F::Msgs("secrets", OBJECT_REF)),
            (3, F::Msgs("imagePullSecrets", LOCAL_REF)),
            (4, F::Bool("automountServiceAccountToken")),
        ],
        "Namespace" => &[
            (1, F::Msg("metadata", OBJECT_META)),
            (2, F::Msg("spec", NS_SPEC)),
        ],
        "Role" | "ClusterRole" => &[
            (1, F::Msg("metadata", OBJECT_META)),
            (2, F::Msgs("rules", POLICY_RULE)),
        ],
        "RoleBinding" | "ClusterRoleBinding" => &[
            (1, F::Msg("metadata", OBJECT_META)),
            (2, F::Msgs("subjects", SUBJECT)),
            (3, F::Msg("roleRef", ROLE_REF)),
        ],
        _ => return None,
    })
}

/// One field read off the wire: its number, and its varint value or its bytes.
type Field<'a> = (u32, Result<u64, &'a [u8]>);

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i)?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()? as usize;
        let s = self.b.get(self.i..self.i + n)?;
        self.i += n;
        Some(s)
    }
    /// (field, wire type, varint value or bytes)
    fn field(&mut self) -> Option<Option<Field<'a>>> {
        if self.i >= self.b.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let (num, wt) = ((key >> 3) as u32, key & 7);
        let val = match wt {
            0 => Ok(self.varint()?),
            2 => Err(self.bytes()?),
            1 => {
                self.i += 8;
                Ok(0)
            }
            5 => {
                self.i += 4;
                Ok(0)
            }
            _ => return None,
        };
        Some(Some((num, val)))
    }
}

fn map_entry(b: &[u8]) -> Option<(String, &[u8])> {
    let mut r = Reader { b, i: 0 };
    let (mut k, mut v) = (String::new(), &b[0..0]);
    while let Some((num, val)) = r.field()? {
        match (num, val) {
            (1, Err(s)) => k = String::from_utf8_lossy(s).into_owned(),
            (2, Err(s)) => v = s,
            _ => {}
        }
    }
    Some((k, v))
}

fn decode_msg(b: &[u8], desc: Desc) -> Option<Value> {
    let mut out = Map::new();
    let mut r = Reader { b, i: 0 };
    while let Some((num, val)) = r.field()? {
        let Some((_, f)) = desc.iter().find(|(n, _)| *n == num) else {
            continue;
        };
        match (*f, val) {
            (F::Str(_), Err([])) | (F::Int(_), Ok(0)) => {}
            (F::Str(n), Err(s)) => {
                out.insert(n.into(), String::from_utf8_lossy(s).into_owned().into());
            }
            (F::Int(n), Ok(v)) => {
                out.insert(n.into(), (v as i64).into());
            }
            (F::Bool(n), Ok(v)) => {
                out.insert(n.into(), (v != 0).into());
            }
            (F::Strs(n), Err(s)) => {
                let e = out.entry(n).or_insert_with(|| Value::Array(vec![]));
                e.as_array_mut()
                    .unwrap()
                    .push(String::from_utf8_lossy(s).into_owned().into());
            }
            (F::BytesMap(n), Err(s)) => {
                let (k, v) = map_entry(s)?;
                let e = out.entry(n).or_insert_with(|| Value::Object(Map::new()));
                e.as_object_mut().unwrap().insert(
                    k,
                    base64::engine::general_purpose::STANDARD.encode(v).into(),
                );
            }
            (F::StrMap(n), Err(s)) => {
                let (k, v) = map_entry(s)?;
                let e = out.entry(n).or_insert_with(|| Value::Object(Map::new()));
                e.as_object_mut()
                    .unwrap()
                    .insert(k, String::from_utf8_lossy(v).into_owned().into());
            }
            (F::Msg(n, d), Err(s)) => {
                out.insert(n.into(), decode_msg(s, d)?);
            }
            (F::Msgs(n, d), Err(s)) => {
                let item = decode_msg(s, d)?;
                let e = out.entry(n).or_insert_with(|| Value::Array(vec![]));
                e.as_array_mut().unwrap().push(item);
            }
            _ => {}
        }
    }
    Some(Value::Object(out))
}

/// Decode a protobuf request body of the given kind into JSON. `None` when the kind is not
/// supported or the body is malformed.
pub fn decode(body: &[u8], kind: &str, api_version: &str) -> Option<Value> {
    let rest = body.strip_prefix(b"k8s\0")?;
    let mut r = Reader { b: rest, i: 0 };
    let mut raw = None;
    while let Some((num, val)) = r.field()? {
        if let (2, Err(s)) = (num, val) {
            raw = Some(s);
        }
    }
    let mut v = decode_msg(raw?, desc_for(kind)?)?;
    let m = v.as_object_mut()?;
    let mut out = Map::new();
    out.insert("kind".into(), kind.into());
    out.insert("apiVersion".into(), api_version.into());
    for (k, val) in std::mem::take(m) {
        out.insert(k, val);
    }
    Some(Value::Object(out))
}
