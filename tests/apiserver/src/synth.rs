//! Synthesized realistic workloads for benchmarks: namespaces, Deployments, ReplicaSets, Pods
//! (~3-4 KB of JSON each), ServiceAccounts and pull Secrets.

use base64::Engine;
use serde_json::{json, Value};

use crate::resources::lookup;
use crate::store::{self, Store};

const PODS_PER_DEPLOYMENT: usize = 10;
const PODS_PER_NAMESPACE: usize = 100;

fn hash(seed: usize, len: usize) -> String {
    const C: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = (seed as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51afd7ed558ccd);
            x ^= x >> 29;
            C[(x % C.len() as u64) as usize] as char
        })
        .collect()
}

/// Store a new object; returns its uid.
fn put(store: &mut Store, kind: &str, ns: &str, v: Value) -> Value {
    let def = lookup(kind).unwrap();
    let rv = store.next_rv();
    let out = store::prepare_new(def, v, ns, rv);
    let uid = out["metadata"]["uid"].clone();
    store.put(def, out);
    uid
}

const IMAGES: &[&str] = &[
    "registry.example.com/team/api:1.4.2",
    "nginx:1.27",
    "docker.io/library/redis:7.2",
    "ghcr.io/acme/worker@sha256:4d5f1b3c2a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708",
    "quay.io/prometheus/node-exporter:latest",
    "busybox",
];

/// Pod JSON (list-item form) with `@@X@@` placeholders, serialized once.
fn pod_template(now: &str) -> String {
    let def = lookup("pods").unwrap();
    let v = pod(
        "@@NAME@@",
        "@@APP@@",
        "@@HASH@@",
        "@@RS@@",
        &Value::from("@@RSUID@@"),
        "@@IMAGE@@",
        "@@IP@@",
        "@@NODE@@",
        now,
    );
    let mut v = store::prepare_new(def, v, "@@NS@@", 0);
    v["metadata"]["uid"] = "@@UID@@".into();
    v["metadata"]["resourceVersion"] = "@@RV@@".into();
    String::from_utf8(store::Obj::new(def, &v).item_bytes.to_vec()).unwrap()
}

/// Add `n` pods (and their owners, namespaces, service accounts and secrets) to the store.
pub fn populate(store: &mut Store, n: usize) {
    let namespaces = n.div_ceil(PODS_PER_NAMESPACE).max(1);
    let mut made = 0usize;
    let now = store::now_rfc3339();
    let pod_tpl = pod_template(&now);
    let pod_def = lookup("pods").unwrap();
    for nsi in 0..namespaces {
        let ns = format!("ns-{nsi:04}");
        put(
            store,
            "namespaces",
            "",
            json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}),
        );
        put(
            store,
            "serviceaccounts",
            &ns,
            json!({"metadata": {"name": "default"}}),
        );
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cr3t");
        let cfg = json!({"auths": {"registry.example.com": {"username": "robot", "password": "s3cr3t", "auth": auth}}});
        put(
            store,
            "secrets",
            &ns,
            json!({
                "metadata": {"name": "regcred"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(cfg.to_string())}
            }),
        );
        put(
            store,
            "serviceaccounts",
            &ns,
            json!({
                "metadata": {"name": "app"},
                "imagePullSecrets": [{"name": "regcred"}]
            }),
        );
        let in_ns = PODS_PER_NAMESPACE.min(n - made);
        let deployments = in_ns.div_ceil(PODS_PER_DEPLOYMENT);
        for di in 0..deployments {
            let app = format!("app-{di:03}");
            let image = IMAGES[(nsi * 7 + di) % IMAGES.len()];
            let template = json!({
                "metadata": {"labels": {"app": app, "tier": "backend"}},
                "spec": {
                    "serviceAccountName": "app",
                    "imagePullSecrets": [{"name": "regcred"}],
                    "containers": [
                        {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                         "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                         "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}},
                        {"name": "sidecar", "image": "docker.io/envoyproxy/envoy:v1.31.0", "imagePullPolicy": "IfNotPresent"}
                    ]
                }
            });
            let dep = put(
                store,
                "deployments",
                &ns,
                json!({
                    "metadata": {"name": app, "labels": {"app": app}},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": {"app": app}}, "template": template},
                    "status": {"replicas": PODS_PER_DEPLOYMENT, "readyReplicas": PODS_PER_DEPLOYMENT, "availableReplicas": PODS_PER_DEPLOYMENT}
                }),
            );
            let phash = hash(nsi * 1000 + di, 10);
            let rs_name = format!("{app}-{phash}");
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"]["pod-template-hash"] = phash.clone().into();
            let rs = put(
                store,
                "replicasets",
                &ns,
                json!({
                    "metadata": {"name": rs_name, "labels": {"app": app, "pod-template-hash": phash},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                            "uid": dep, "controller": true, "blockOwnerDeletion": true}]},
                    "spec": {"replicas": PODS_PER_DEPLOYMENT, "selector": {"matchLabels": {"app": app, "pod-template-hash": phash}}, "template": rs_template},
                    "status": {"replicas": PODS_PER_DEPLOYMENT}
                }),
            );
            for pi in 0..PODS_PER_DEPLOYMENT.min(in_ns - di * PODS_PER_DEPLOYMENT) {
                let pod_name = format!("{rs_name}-{}", hash(made, 5));
                let ip = format!("10.{}.{}.{}", nsi % 250, di % 250, pi + 2);
                let node = format!("node-{}", made % 50);
                let rv = store.next_rv();
                let uid = store::new_uid();
                let json = pod_tpl
                    .replace("@@NAME@@", &pod_name)
                    .replace("@@NS@@", &ns)
                    .replace("@@APP@@", &app)
                    .replace("@@HASH@@", &phash)
                    .replace("@@RSUID@@", rs.as_str().unwrap_or(""))
                    .replace("@@RS@@", &rs_name)
                    .replace("@@IMAGE@@", image)
                    .replace("@@IP@@", &ip)
                    .replace("@@NODE@@", &node)
                    .replace("@@UID@@", &uid)
                    .replace("@@RV@@", &rv.to_string());
                let sel = json!({
                    "metadata": {"name": pod_name, "namespace": ns, "labels": {"app": app, "tier": "backend", "pod-template-hash": phash}},
                    "spec": {"nodeName": node, "serviceAccountName": "app", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
                    "status": {"phase": "Running", "podIP": ip}
                });
                store.put_obj(
                    pod_def,
                    &ns,
                    &pod_name,
                    store::Obj::from_parts(pod_def, json.into(), sel),
                );
                made += 1;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn pod(
    name: &str,
    app: &str,
    phash: &str,
    rs: &str,
    rs_uid: &Value,
    image: &str,
    ip: &str,
    node: &str,
    now: &str,
) -> Value {
    let cstatus = |cname: &str, img: &str| {
        json!({
            "name": cname, "state": {"running": {"startedAt": now}}, "lastState": {},
            "ready": true, "restartCount": 0, "image": img,
            "imageID": format!("{img}@sha256:9b2d1f0c3e4a5b6c7d8e9f00112233445566778899aabbccddeeff0011223344"),
            "containerID": "containerd://4f3e2d1c0b9a8f7e6d5c4b3a29181716151413121110f0e0d0c0b0a090807060",
            "started": true
        })
    };
    json!({
        "metadata": {
            "name": name,
            "generateName": format!("{rs}-"),
            "labels": {"app": app, "tier": "backend", "pod-template-hash": phash},
            "annotations": {"kubectl.kubernetes.io/restartedAt": now},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": now, "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:tier": {}},
                    "f:ownerReferences": {".": {}, "k:{\"uid\":\"x\"}": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {}}},
                    "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:imagePullSecrets": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": now, "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}}
            ]
        },
        "spec": {
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "containers": [
                {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                 "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"},
                {"name": "sidecar", "image": "docker.io/envoyproxy/envoy:v1.31.0", "imagePullPolicy": "IfNotPresent",
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                 "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
            ],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "app", "serviceAccount": "app", "nodeName": node,
            "securityContext": {}, "imagePullSecrets": [{"name": "regcred"}], "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}],
            "hostIP": "192.168.1.10", "hostIPs": [{"ip": "192.168.1.10"}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
            "containerStatuses": [cstatus("main", image), cstatus("sidecar", "docker.io/envoyproxy/envoy:v1.31.0")],
            "qosClass": "Burstable"
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthesized_pods_match_their_extract() {
        let mut store = super::Store::default();
        super::populate(&mut store, 12);
        let def = super::lookup("pods").unwrap();
        assert_eq!(store.map(def).len(), 12);
        for o in store.map(def).values() {
            let v = o.value();
            assert_eq!(super::store::Obj::new(def, &v).sel, o.sel);
            assert_eq!(v["kind"], "Pod");
            assert!(v["metadata"]["uid"].as_str().unwrap().len() == 36);
        }
    }
}
