//! `meta.k8s.io/v1` Table responses (what `kubectl get` asks for with `as=Table`).

use serde_json::{json, Value};

use crate::resources::ResourceDef;
use crate::store::Obj;

fn col(name: &str, ty: &str, format: &str, desc: &str, priority: i32) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": desc, "priority": priority})
}

fn pod_cells(o: &Value) -> Vec<Value> {
    let statuses = o
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_i64))
        .sum();
    let waiting = statuses
        .iter()
        .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str));
    let phase = o
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    vec![
        o["metadata"]["name"].clone(),
        format!("{ready}/{total}").into(),
        waiting.unwrap_or(phase).into(),
        restarts.into(),
        age(o).into(),
    ]
}

/// Human age like the server's printers: `45s`, `12m`, `5h`, `3d`.
fn age(o: &Value) -> String {
    let Some(created) = o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(crate::store::parse_rfc3339)
    else {
        return "<unknown>".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = (now - created).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Build a Table for the given objects.
pub fn table(def: &ResourceDef, items: &[&Obj], list_meta: Value) -> Value {
    let pods = def.kind == "Pod";
    let columns = if pods {
        vec![
            col("Name", "string", "name", "Name must be unique within a namespace.", 0),
            col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
            col("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
            col("Restarts", "string", "", "The number of times the containers in this pod have been restarted.", 0),
            col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
        ]
    } else {
        vec![
            col("Name", "string", "name", "Name must be unique within a namespace.", 0),
            col("Created At", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
        ]
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let v = &o.value();
            let cells = if pods {
                pod_cells(v)
            } else {
                vec![
                    v["metadata"]["name"].clone(),
                    v["metadata"]["creationTimestamp"].clone(),
                ]
            };
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": v["metadata"].clone(),
                }
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
