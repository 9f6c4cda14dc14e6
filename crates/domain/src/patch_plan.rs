//! What `patch` changes in an object's `imagePullSecrets`, and the JSON patch that does it.
//!
//! Pure: no I/O. The rules that keep data safe live here:
//! - add only the names that are missing, after the existing entries, in the order given;
//! - keep every existing entry (including ones with extra fields or odd shapes) and their order;
//! - remove only entries whose `name` is listed;
//! - the JSON patch first `test`s `metadata.resourceVersion` and the current list, so a
//!   concurrent change makes the write fail instead of being overwritten.
use serde_json::{json, Value};

/// Where a kind keeps its pod spec, as path segments from the object's root (empty for a
/// ServiceAccount, whose `imagePullSecrets` is top level). `None` for kinds without one.
pub fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "ServiceAccount" => Some(&[]),
        "Pod" => Some(&["spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "PodTemplate" => Some(&["spec", "template", "spec"]),
        _ => None,
    }
}

/// The JSON pointer of the `imagePullSecrets` list for a kind.
pub fn list_pointer(kind: &str) -> Option<String> {
    pod_spec_path(kind).map(|segs| {
        let mut p: String = segs.iter().map(|s| format!("/{s}")).collect();
        p.push_str("/imagePullSecrets");
        p
    })
}

/// The list as it is in `obj` (empty when absent or null).
pub fn current_entries(obj: &Value, kind: &str) -> Vec<Value> {
    list_pointer(kind)
        .and_then(|p| obj.pointer(&p).cloned())
        .and_then(|v| match v {
            Value::Array(a) => Some(a),
            _ => None,
        })
        .unwrap_or_default()
}

/// An entry's `name`, when it has one.
pub fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("name").and_then(Value::as_str)
}

/// Names for messages: `[a, b]`, with `?` for entries without a name.
pub fn display(entries: &[Value]) -> String {
    let names: Vec<&str> = entries
        .iter()
        .map(|e| entry_name(e).unwrap_or("?"))
        .collect();
    format!("[{}]", names.join(", "))
}

/// What to do with one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: String,
    pub before: Vec<Value>,
    pub after: Vec<Value>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }

    /// The RFC 6902 patch: `test` the resourceVersion (when known) and the current list, then
    /// append or remove entries. Empty when nothing changes.
    pub fn json_patch(&self, obj: &Value) -> Vec<Value> {
        if !self.changed() {
            return Vec::new();
        }
        let ptr = list_pointer(&self.kind).expect("plan exists only for patchable kinds");
        let mut ops = Vec::new();
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
        }
        let present = matches!(obj.pointer(&ptr), Some(Value::Array(_)));
        if present {
            ops.push(json!({"op": "test", "path": ptr, "value": self.before}));
        }
        if self.after.is_empty() {
            // Everything listed was removed: drop the key rather than leave an empty list.
            ops.push(json!({"op": "remove", "path": ptr}));
        } else if !present {
            ops.push(json!({"op": "add", "path": ptr, "value": self.after}));
        } else if self.after.len() > self.before.len() {
            for e in &self.after[self.before.len()..] {
                ops.push(json!({"op": "add", "path": format!("{ptr}/-"), "value": e}));
            }
        } else {
            // Removal: indices of dropped entries, highest first so earlier indices stay valid.
            let mut kept = self.after.iter().peekable();
            let mut dropped = Vec::new();
            for (i, e) in self.before.iter().enumerate() {
                if kept.peek() == Some(&e) {
                    kept.next();
                } else {
                    dropped.push(i);
                }
            }
            for i in dropped.into_iter().rev() {
                ops.push(json!({"op": "remove", "path": format!("{ptr}/{i}")}));
            }
        }
        ops
    }

    /// `obj` with the planned list (for client-side dry runs and offline checks).
    pub fn apply(&self, obj: &Value) -> Value {
        let mut out = obj.clone();
        let segs = pod_spec_path(&self.kind).expect("patchable kind");
        let mut cur = &mut out;
        for s in segs {
            cur = &mut cur[*s];
        }
        if let Value::Object(m) = cur {
            if self.after.is_empty() {
                m.shift_remove("imagePullSecrets");
            } else {
                m.insert("imagePullSecrets".into(), Value::Array(self.after.clone()));
            }
        }
        out
    }
}

/// Plans adding (or with `remove`, removing) `secrets` on `obj` of `kind`.
pub fn plan(obj: &Value, kind: &str, secrets: &[String], remove: bool) -> Result<Plan, String> {
    let segs =
        pod_spec_path(kind).ok_or_else(|| format!("{kind} has no imagePullSecrets to patch"))?;
    let mut spec = obj;
    for s in segs {
        spec = spec.get(*s).ok_or_else(|| {
            format!(
                "the {kind} has no {} to patch (is the object complete?)",
                segs.join(".")
            )
        })?;
    }
    if !spec.is_object() {
        return Err(format!("the {kind}'s {} is not an object", segs.join(".")));
    }
    match spec.get("imagePullSecrets") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => return Err(format!("the {kind}'s imagePullSecrets is not a list")),
    }
    let before = current_entries(obj, kind);
    let after = if remove {
        before
            .iter()
            .filter(|e| !entry_name(e).is_some_and(|n| secrets.iter().any(|s| s == n)))
            .cloned()
            .collect()
    } else {
        let mut after = before.clone();
        for s in secrets {
            if !after.iter().any(|e| entry_name(e) == Some(s.as_str())) {
                after.push(json!({ "name": s }));
            }
        }
        after
    };
    Ok(Plan {
        kind: kind.to_string(),
        before,
        after,
    })
}

/// The owner command printed for a live Pod or Job: `kubectl image-sec patch KIND/NAME --secret=a ...`.
pub fn owner_command(
    kind_name: &str,
    name: &str,
    namespace: &str,
    secrets: &[String],
    remove: bool,
) -> String {
    let mut cmd = format!("kubectl image-sec patch {kind_name}/{name}");
    for s in secrets {
        cmd.push_str(&format!(" --secret={s}"));
    }
    if remove {
        cmd.push_str(" --remove");
    }
    cmd.push_str(&format!(" -n {namespace}"));
    cmd
}

/// Pod owners that are themselves owned by a higher controller: ReplicaSet → Deployment,
/// Job → CronJob.
pub fn owner_parent_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "ReplicaSet" => Some("Deployment"),
        "Job" => Some("CronJob"),
        _ => None,
    }
}

/// The controller owner reference (`controller: true`, else the first) of an object:
/// `(kind, name)`.
pub fn controller_of(obj: &Value) -> Option<(String, String)> {
    let refs = obj.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    Some((
        r.get("kind")?.as_str()?.to_string(),
        r.get("name")?.as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(list: Option<Value>) -> Value {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        if let Some(l) = list {
            spec["imagePullSecrets"] = l;
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "resourceVersion": "7"},
               "spec": {"template": {"spec": spec}}})
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pointers_per_kind() {
        assert_eq!(list_pointer("ServiceAccount").unwrap(), "/imagePullSecrets");
        assert_eq!(list_pointer("Pod").unwrap(), "/spec/imagePullSecrets");
        assert_eq!(
            list_pointer("CronJob").unwrap(),
            "/spec/jobTemplate/spec/template/spec/imagePullSecrets"
        );
        for k in [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
        ] {
            assert_eq!(
                list_pointer(k).unwrap(),
                "/spec/template/spec/imagePullSecrets",
                "{k}"
            );
        }
        assert!(list_pointer("Service").is_none());
    }

    #[test]
    fn adds_only_missing_keeping_order_and_extras() {
        let obj = deploy(Some(json!([{"name": "b"}, {"name": "a", "x": 1}, {}])));
        let p = plan(&obj, "Deployment", &s(&["a", "c", "c", "d"]), false).unwrap();
        assert_eq!(
            p.after,
            json!([{"name": "b"}, {"name": "a", "x": 1}, {}, {"name": "c"}, {"name": "d"}])
                .as_array()
                .unwrap()
                .clone()
        );
        let ops = p.json_patch(&obj);
        assert_eq!(
            ops[0],
            json!({"op":"test","path":"/metadata/resourceVersion","value":"7"})
        );
        assert_eq!(ops[1]["op"], "test");
        assert_eq!(
            ops[1]["value"],
            json!([{"name": "b"}, {"name": "a", "x": 1}, {}])
        );
        assert_eq!(
            ops[2],
            json!({"op":"add","path":"/spec/template/spec/imagePullSecrets/-","value":{"name":"c"}})
        );
        assert_eq!(ops.len(), 4);
        assert_eq!(display(&p.after), "[b, a, ?, c, d]");
    }

    #[test]
    fn idempotent_and_removing_absent_is_a_no_op() {
        let obj = deploy(Some(json!([{"name": "a"}])));
        let p = plan(&obj, "Deployment", &s(&["a"]), false).unwrap();
        assert!(!p.changed());
        assert!(p.json_patch(&obj).is_empty());
        let p = plan(&obj, "Deployment", &s(&["zz"]), true).unwrap();
        assert!(!p.changed());
        let p = plan(&deploy(None), "Deployment", &s(&["zz"]), true).unwrap();
        assert!(!p.changed());
    }

    #[test]
    fn absent_list_is_added_whole() {
        let obj = deploy(None);
        let p = plan(&obj, "Deployment", &s(&["a", "b"]), false).unwrap();
        let ops = p.json_patch(&obj);
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[1],
            json!({"op":"add","path":"/spec/template/spec/imagePullSecrets","value":[{"name":"a"},{"name":"b"}]})
        );
        assert_eq!(
            p.apply(&obj)["spec"]["template"]["spec"]["imagePullSecrets"],
            json!([{"name":"a"},{"name":"b"}])
        );
    }

    #[test]
    fn removal_by_index_descending_and_empty_drops_key() {
        let obj = deploy(Some(
            json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "a"}]),
        ));
        let p = plan(&obj, "Deployment", &s(&["a", "c"]), true).unwrap();
        assert_eq!(p.after, vec![json!({"name": "b"})]);
        let ops = p.json_patch(&obj);
        let removes: Vec<&str> = ops[2..]
            .iter()
            .map(|o| o["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            removes,
            [
                "/spec/template/spec/imagePullSecrets/3",
                "/spec/template/spec/imagePullSecrets/2",
                "/spec/template/spec/imagePullSecrets/0"
            ]
        );
        let p = plan(&obj, "Deployment", &s(&["a", "b", "c"]), true).unwrap();
        let ops = p.json_patch(&obj);
        assert_eq!(
            ops.last().unwrap(),
            &json!({"op":"remove","path":"/spec/template/spec/imagePullSecrets"})
        );
        assert!(p.apply(&obj)["spec"]["template"]["spec"]
            .get("imagePullSecrets")
            .is_none());
    }

    #[test]
    fn service_account_and_cronjob() {
        let sa = json!({"kind":"ServiceAccount","metadata":{"name":"default"},"imagePullSecrets":[{"name":"a"}]});
        let p = plan(&sa, "ServiceAccount", &s(&["b"]), false).unwrap();
        assert_eq!(
            p.json_patch(&sa).last().unwrap()["path"],
            "/imagePullSecrets/-"
        );
        let cj = json!({"kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"spec":{}}}}}});
        let p = plan(&cj, "CronJob", &s(&["b"]), false).unwrap();
        assert_eq!(
            p.apply(&cj)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["imagePullSecrets"],
            json!([{"name":"b"}])
        );
        assert!(plan(
            &json!({"kind":"Deployment","spec":{}}),
            "Deployment",
            &s(&["b"]),
            false
        )
        .is_err());
    }

    #[test]
    fn owners() {
        let pod = json!({"metadata":{"ownerReferences":[{"kind":"Node","name":"n"},{"kind":"ReplicaSet","name":"web-1","controller":true}]}});
        assert_eq!(
            controller_of(&pod),
            Some(("ReplicaSet".into(), "web-1".into()))
        );
        assert_eq!(owner_parent_kind("ReplicaSet"), Some("Deployment"));
        assert_eq!(
            owner_command("deployment", "web", "shop", &s(&["regcred"]), false),
            "kubectl image-sec patch deployment/web --secret=regcred -n shop"
        );
    }
}
