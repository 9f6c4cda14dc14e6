//! JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes strategic merge patch.

use serde_json::{Map, Value};

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonPatchError {
    /// The patch document is malformed (400 BadRequest on the real server).
    Malformed(String),
    /// An operation failed (`test` mismatch, missing path...) (422 Invalid on the real server).
    Failed(String),
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, JsonPatchError> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| JsonPatchError::Malformed(format!("invalid path: {path}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    toks: &[String],
    path: &str,
) -> Result<&'a mut Value, JsonPatchError> {
    let mut cur = doc;
    for t in &toks[..toks.len() - 1] {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| {
            JsonPatchError::Failed(format!("doc is missing path: \"{path}\": missing value"))
        })?;
    }
    Ok(cur)
}

fn get_at<'a>(doc: &'a Value, path: &str) -> Result<Option<&'a Value>, JsonPatchError> {
    let toks = split_pointer(path)?;
    let mut cur = doc;
    for t in &toks {
        let next = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    let toks = split_pointer(path)?;
    if toks.is_empty() {
        *doc = value;
        return Ok(());
    }
    let last = toks.last().unwrap().clone();
    let parent = parent_mut(doc, &toks, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| {
                JsonPatchError::Failed(format!("add operation: invalid array index: {last}"))
            })?;
            if i > a.len() {
                return Err(JsonPatchError::Failed(format!(
                    "add operation does not apply: doc is missing path: \"{path}\": missing value"
                )));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(JsonPatchError::Failed(format!(
            "add operation does not apply: doc is missing path: \"{path}\": missing value"
        ))),
    }
}

fn remove(doc: &mut Value, path: &str, op: &str) -> Result<Value, JsonPatchError> {
    let toks = split_pointer(path)?;
    let missing = || {
        JsonPatchError::Failed(format!(
            "{op} operation does not apply: doc is missing path: \"{path}\": missing value"
        ))
    };
    if toks.is_empty() {
        return Ok(std::mem::take(doc));
    }
    let last = toks.last().unwrap().clone();
    let parent = parent_mut(doc, &toks, path).map_err(|_| missing())?;
    match parent {
        Value::Object(m) => m.shift_remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// Apply an RFC 6902 JSON patch.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        JsonPatchError::Malformed(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
        )
    })?;
    let mut doc = doc.clone();
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| JsonPatchError::Malformed("unexpected kind: unknown".into()))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| JsonPatchError::Failed(format!("{name} operation: missing path")))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| JsonPatchError::Failed(format!("{name} operation: missing value")))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| JsonPatchError::Failed(format!("{name} operation: missing from")))
        };
        match name {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path, "remove")?;
            }
            "replace" => {
                let v = value()?;
                remove(&mut doc, path, "replace")?;
                add(&mut doc, path, v)?;
            }
            "move" => {
                let v = remove(&mut doc, from()?, "move")?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = get_at(&doc, from()?)?.cloned().ok_or_else(|| {
                    JsonPatchError::Failed(format!(
                        "copy operation does not apply: doc is missing from path: {}",
                        op["from"]
                    ))
                })?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                let expected = op.get("value").cloned().unwrap_or(Value::Null);
                let actual = get_at(&doc, path)?.cloned().unwrap_or(Value::Null);
                if actual != expected {
                    return Err(JsonPatchError::Failed(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(JsonPatchError::Malformed(format!(
                    "unexpected kind: {other}"
                )))
            }
        }
    }
    Ok(doc)
}

/// Apply an RFC 7386 JSON merge patch.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match doc {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.shift_remove(k);
                } else {
                    let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// How a list field is merged by a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListStrategy {
    Replace,
    MergeByKey(&'static str),
    MergePrimitive,
}

/// Where the pod spec sits in each kind.
fn pod_spec_paths(kind: &str) -> &'static [&'static [&'static str]] {
    match kind {
        "Pod" => &[&["spec"]],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicationController"
        | "Job" => &[&["spec", "template", "spec"]],
        "CronJob" => &[&["spec", "jobTemplate", "spec", "template", "spec"]],
        _ => &[],
    }
}

fn list_strategy(kind: &str, path: &[String]) -> ListStrategy {
    use ListStrategy::*;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let Some((&field, parent)) = p.split_last() else {
        return Replace;
    };
    // metadata lists, for every kind
    if parent == ["metadata"] {
        return match field {
            "ownerReferences" => MergeByKey("uid"),
            "finalizers" => MergePrimitive,
            _ => Replace,
        };
    }
    if kind == "ServiceAccount" && p == ["secrets"] {
        return MergeByKey("name");
    }
    if parent.last() == Some(&"status") && field == "conditions" {
        return MergeByKey("type");
    }
    for spec in pod_spec_paths(kind) {
        if parent == *spec {
            return match field {
                "containers"
                | "initContainers"
                | "ephemeralContainers"
                | "imagePullSecrets"
                | "volumes" => MergeByKey("name"),
                "hostAliases" => MergeByKey("ip"),
                _ => Replace,
            };
        }
        // fields of a container
        if parent.len() == spec.len() + 1
            && parent[..spec.len()] == **spec
            && matches!(
                parent[spec.len()],
                "containers" | "initContainers" | "ephemeralContainers"
            )
        {
            return match field {
                "env" => MergeByKey("name"),
                "ports" => MergeByKey("containerPort"),
                "volumeMounts" => MergeByKey("mountPath"),
                "volumeDevices" => MergeByKey("devicePath"),
                _ => Replace,
            };
        }
    }
    Replace
}

/// Apply a strategic merge patch to an object of the given kind.
///
/// Lists merged by key: `PodSpec.containers`, `initContainers`, `ephemeralContainers`,
/// `imagePullSecrets`, `volumes` (by `name`), container `env` (`name`), `ports`
/// (`containerPort`), `volumeMounts` (`mountPath`), `metadata.ownerReferences` (`uid`),
/// `status.conditions` (`type`), `ServiceAccount.secrets` (`name`); `metadata.finalizers` merges
/// as a set. Everything else, including `ServiceAccount.imagePullSecrets`, is replaced.
/// Directives: `$patch: replace|delete|merge` in maps and list items,
/// `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` (accepted, ignored),
/// `$retainKeys` (honoured).
pub fn strategic_merge_patch(doc: &Value, patch: &Value, kind: &str) -> Result<Value, String> {
    let mut path = Vec::new();
    smp_value(doc, patch, kind, &mut path)
}

fn smp_value(
    doc: &Value,
    patch: &Value,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Value, String> {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => smp_map(d, p, kind, path)
            .map(|m| m.map(Value::Object).unwrap_or(Value::Object(Map::new()))),
        (_, Value::Object(p)) => {
            smp_map(&Map::new(), p, kind, path).map(|m| m.map(Value::Object).unwrap_or(Value::Null))
        }
        (_, other) => Ok(other.clone()),
    }
}

/// Returns `None` when the map itself is deleted (`$patch: delete`).
fn smp_map(
    doc: &Map<String, Value>,
    patch: &Map<String, Value>,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Option<Map<String, Value>>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut m = patch.clone();
            m.shift_remove("$patch");
            return Ok(Some(strip_directives(&m)));
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other} in map: {patch:?}")),
    }
    let mut out = doc.clone();
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in patch {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (out.get_mut(field), v) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            out.shift_remove(k);
            continue;
        }
        path.push(k.clone());
        let merged = match (out.get(k), v) {
            (Some(Value::Array(cur)), Value::Array(pl)) => {
                Some(smp_list(cur, pl, list_strategy(kind, path), kind, path)?)
            }
            (None, Value::Array(pl)) => {
                Some(smp_list(&[], pl, list_strategy(kind, path), kind, path)?)
            }
            (Some(Value::Object(cur)), Value::Object(pm)) => {
                smp_map(cur, pm, kind, path)?.map(Value::Object)
            }
            (_, Value::Object(pm)) => smp_map(&Map::new(), pm, kind, path)?.map(Value::Object),
            (_, other) => Some(other.clone()),
        };
        path.pop();
        match merged {
            Some(m) => {
                out.insert(k.clone(), m);
            }
            None => {
                out.shift_remove(k);
            }
        }
    }
    Ok(Some(out))
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| {
            let v = match v {
                Value::Object(o) => Value::Object(strip_directives(o)),
                Value::Array(a) => Value::Array(
                    a.iter()
                        .map(|x| match x {
                            Value::Object(o) => Value::Object(strip_directives(o)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn smp_list(
    cur: &[Value],
    patch: &[Value],
    strategy: ListStrategy,
    kind: &str,
    path: &mut Vec<String>,
) -> Result<Value, String> {
    match strategy {
        ListStrategy::Replace => Ok(Value::Array(
            patch
                .iter()
                .map(|v| match v {
                    Value::Object(o) => Value::Object(strip_directives(o)),
                    other => other.clone(),
                })
                .collect(),
        )),
        ListStrategy::MergePrimitive => {
            let mut out = cur.to_vec();
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListStrategy::MergeByKey(key) => {
            // `{"$patch": "replace"}` anywhere in the list replaces the whole list.
            let replace = patch.iter().any(|v| {
                v.get("$patch").and_then(Value::as_str) == Some("replace") && v.get(key).is_none()
            });
            let mut out: Vec<Value> = if replace { vec![] } else { cur.to_vec() };
            for item in patch {
                let Value::Object(pm) = item else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let directive = pm.get("$patch").and_then(Value::as_str);
                if directive == Some("replace") && pm.get(key).is_none() {
                    continue;
                }
                let Some(kv) = pm.get(key) else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let pos = out.iter().position(|o| o.get(key) == Some(kv));
                if directive == Some("delete") {
                    if let Some(i) = pos {
                        out.remove(i);
                    }
                    continue;
                }
                match pos {
                    Some(i) => {
                        let merged = match &out[i] {
                            Value::Object(om) => smp_map(om, pm, kind, path)?,
                            _ => Some(strip_directives(pm)),
                        };
                        match merged {
                            Some(m) => out[i] = Value::Object(m),
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    None => {
                        if let Some(m) = smp_map(&Map::new(), pm, kind, path)? {
                            out.push(Value::Object(m));
                        }
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_ops() {
        let doc = json!({"a": [1, 2], "b": {"c": "x"}});
        let p = json!([
            {"op": "test", "path": "/b/c", "value": "x"},
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": "y"},
            {"op": "copy", "from": "/b", "path": "/d"},
            {"op": "move", "from": "/d/c", "path": "/e"},
            {"op": "remove", "path": "/a/0"}
        ]);
        assert_eq!(
            json_patch(&doc, &p).unwrap(),
            json!({"a": [2, 3], "b": {"c": "y"}, "d": {}, "e": "y"})
        );
        let bad = json!([{"op": "test", "path": "/b/c", "value": "z"}]);
        assert!(matches!(
            json_patch(&doc, &bad),
            Err(JsonPatchError::Failed(_))
        ));
        let missing = json!([{"op": "remove", "path": "/zz"}]);
        assert!(matches!(
            json_patch(&doc, &missing),
            Err(JsonPatchError::Failed(_))
        ));
    }

    #[test]
    fn merge() {
        let doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]});
        let p = json!({"a": null, "b": {"c": 5}, "l": [2]});
        assert_eq!(
            merge_patch(&doc, &p),
            json!({"b": {"c": 5, "d": 3}, "l": [2]})
        );
    }

    #[test]
    fn smp_pod_vs_sa() {
        let pod = json!({"spec": {"imagePullSecrets": [{"name": "a"}], "containers": [{"name": "c", "image": "x"}]}});
        let p = json!({"spec": {"imagePullSecrets": [{"name": "b"}], "containers": [{"name": "c", "image": "y"}]}});
        let out = strategic_merge_patch(&pod, &p, "Pod").unwrap();
        assert_eq!(
            out,
            json!({"spec": {"imagePullSecrets": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c", "image": "y"}]}})
        );
        let sa = json!({"imagePullSecrets": [{"name": "a"}]});
        let out = strategic_merge_patch(
            &sa,
            &json!({"imagePullSecrets": [{"name": "b"}]}),
            "ServiceAccount",
        )
        .unwrap();
        assert_eq!(out, json!({"imagePullSecrets": [{"name": "b"}]}));
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "a"}]}}}}}});
        let p = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "a", "$patch": "delete"}, {"name": "c"}]}}}}}});
        let out = strategic_merge_patch(&cj, &p, "CronJob").unwrap();
        assert_eq!(
            out.pointer("/spec/jobTemplate/spec/template/spec/imagePullSecrets")
                .unwrap(),
            &json!([{"name": "c"}])
        );
        let d = json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "a"}]}}}});
        let p = json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"$patch": "replace"}, {"name": "z"}]}}}});
        let out = strategic_merge_patch(&d, &p, "Deployment").unwrap();
        assert_eq!(
            out.pointer("/spec/template/spec/imagePullSecrets").unwrap(),
            &json!([{"name": "z"}])
        );
    }
}
