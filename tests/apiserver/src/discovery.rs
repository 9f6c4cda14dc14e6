//! Discovery documents (non-aggregated; kubectl falls back to them when the response is not
//! an `APIGroupDiscoveryList`).

use serde_json::{json, Value};

use crate::resources::{GROUP_VERSIONS, RESOURCES};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    })
}

fn group(name: &str) -> Value {
    let versions: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| *g == name)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions[0].clone(),
    })
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, _)| group(g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(name: &str) -> Option<Value> {
    if name.is_empty() || !GROUP_VERSIONS.iter().any(|(g, _)| *g == name) {
        return None;
    }
    let mut g = group(name);
    g["kind"] = "APIGroup".into();
    g["apiVersion"] = "v1".into();
    Some(g)
}

pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if !GROUP_VERSIONS.contains(&(group, version)) {
        return None;
    }
    let mut resources = Vec::new();
    for d in RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": VERBS,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if matches!(d.group, "apps" | "batch") || d.plural == "pods" {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        if matches!(
            d.kind,
            "Pod"
                | "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "Job"
                | "CronJob"
                | "ReplicationController"
                | "Namespace"
        ) {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}
