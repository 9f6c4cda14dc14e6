//! End-to-end tests of the fake apiserver over real HTTP(S).

use std::time::{Duration, Instant};

use fake_apiserver::{CertificateAuthority, ClientCertificate, FakeApiServer, Match, Options};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

struct T {
    srv: FakeApiServer,
    client: Client,
}

impl T {
    fn new(opts: Options) -> T {
        let srv = FakeApiServer::start(opts);
        T {
            client: client_for(&srv, None),
            srv,
        }
    }
    fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.req_as(method, path, self.srv.token())
    }
    fn req_as(&self, method: &str, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(
                method.parse().unwrap(),
                format!("{}{}", self.srv.url(), path),
            )
            .bearer_auth(token)
    }
    fn get(&self, path: &str) -> (u16, Value) {
        split(self.req("GET", path).send().unwrap())
    }
    fn send(&self, method: &str, path: &str, ctype: &str, body: Value) -> (u16, Value) {
        split(
            self.req(method, path)
                .header("content-type", ctype)
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    }
}

/// A client trusting the server's CA, presenting `cert` if given.
fn client_for(srv: &FakeApiServer, cert: Option<&ClientCertificate>) -> Client {
    let mut b = Client::builder().timeout(Duration::from_secs(10));
    if let Some(pem) = srv.ca_pem() {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
    }
    if let Some(c) = cert {
        let identity = format!("{}{}", c.key_pem, c.cert_pem);
        b = b.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn split(r: Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

const WEB: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: web, labels: {app: a}}
spec:
  imagePullSecrets: [{name: s1}]
  containers: [{name: c, image: nginx:1}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder, namespace: web}
imagePullSecrets: [{name: s1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: j, namespace: web}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;

#[test]
fn pagination_and_selectors() {
    let t = T::new(Options::default().synthesize_pods(250));
    let (s, first) = t.get("/api/v1/pods?limit=100");
    assert_eq!(s, 200);
    assert_eq!(first["kind"], "PodList");
    assert_eq!(first["items"].as_array().unwrap().len(), 100);
    assert!(first["items"][0].get("kind").is_none());
    assert_eq!(first["metadata"]["remainingItemCount"], 150);
    let mut names = vec![];
    let mut cont = first["metadata"]["continue"].as_str().unwrap().to_string();
    for i in &first["items"].as_array().unwrap()[..] {
        names.push(format!(
            "{}/{}",
            i["metadata"]["namespace"].as_str().unwrap(),
            i["metadata"]["name"].as_str().unwrap()
        ));
    }
    loop {
        let (_, page) = t.get(&format!("/api/v1/pods?limit=100&continue={cont}"));
        for i in page["items"].as_array().unwrap() {
            names.push(format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap(),
                i["metadata"]["name"].as_str().unwrap()
            ));
        }
        match page["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    assert_eq!(names.len(), 250);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names);

    let (_, ns) = t.get("/api/v1/namespaces/ns-0001/pods");
    assert_eq!(ns["items"].as_array().unwrap().len(), 100);
    let (_, sel) =
        t.get("/api/v1/namespaces/ns-0001/pods?labelSelector=app%3Dapp-003,tier%20in%20(backend)");
    assert_eq!(sel["items"].as_array().unwrap().len(), 10);
    let (_, sel) = t.get("/api/v1/pods?labelSelector=app!%3Dapp-003,!nothere&limit=5");
    assert_eq!(sel["items"].as_array().unwrap().len(), 5);
    assert!(sel["metadata"].get("remainingItemCount").is_none());
    let (_, f) =
        t.get("/api/v1/pods?fieldSelector=metadata.namespace%3Dns-0002,status.phase%3DRunning");
    assert_eq!(f["items"].as_array().unwrap().len(), 50);
    let (s, bad) = t.get("/api/v1/pods?fieldSelector=spec.bogus%3Dx");
    assert_eq!(s, 400);
    assert_eq!(bad["message"], "field label not supported: spec.bogus");
    let (_, d) = t.get("/apis/apps/v1/deployments");
    assert_eq!(d["kind"], "DeploymentList");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["items"].as_array().unwrap().len(), 25);
}

#[test]
fn status_bodies_conflicts_and_patches() {
    let t = T::new(Options::default());
    t.srv.load_yaml(WEB);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"a": "b"}});
    let (s, created) = t.send(
        "POST",
        "/api/v1/namespaces/web/secrets",
        "application/json",
        secret.clone(),
    );
    assert_eq!(s, 201);
    assert_eq!(created["data"]["a"], "Yg==");
    let (s, body) = t.send(
        "POST",
        "/api/v1/namespaces/web/secrets",
        "application/json",
        secret.clone(),
    );
    assert_eq!(s, 409);
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"x\" already exists","reason":"AlreadyExists","details":{"name":"x","kind":"secrets"},"code":409})
    );
    let (s, body) = t.get("/api/v1/namespaces/web/secrets/nope");
    assert_eq!(s, 404);
    assert_eq!(body["message"], "secrets \"nope\" not found");
    assert_eq!(body["details"], json!({"name": "nope", "kind": "secrets"}));
    let (s, body) = t.send(
        "POST",
        "/api/v1/namespaces/nons/secrets",
        "application/json",
        secret,
    );
    assert_eq!(
        (s, body["message"].as_str().unwrap()),
        (404, "namespaces \"nons\" not found")
    );

    // PUT with a stale resourceVersion.
    let (_, mut sa) = t.get("/api/v1/namespaces/web/serviceaccounts/default");
    let rv = sa["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    sa["metadata"]["labels"] = json!({"x": "1"});
    let (s, updated) = t.send(
        "PUT",
        "/api/v1/namespaces/web/serviceaccounts/default",
        "application/json",
        sa.clone(),
    );
    assert_eq!(s, 200);
    assert_ne!(updated["metadata"]["resourceVersion"].as_str().unwrap(), rv);
    let (s, body) = t.send(
        "PUT",
        "/api/v1/namespaces/web/serviceaccounts/default",
        "application/json",
        sa.clone(),
    );
    assert_eq!(s, 409);
    assert_eq!(body["reason"], "Conflict");
    assert_eq!(body["message"], "Operation cannot be fulfilled on serviceaccounts \"default\": the object has been modified; please apply your changes to the latest version and try again");
    // PATCH carrying a stale resourceVersion.
    let (s, _) = t.send(
        "PATCH",
        "/api/v1/namespaces/web/serviceaccounts/default",
        "application/merge-patch+json",
        json!({"metadata": {"resourceVersion": rv, "labels": {"y": "2"}}}),
    );
    assert_eq!(s, 409);
    // PUT without resourceVersion: unconditional.
    sa["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (s, _) = t.send(
        "PUT",
        "/api/v1/namespaces/web/serviceaccounts/default",
        "application/json",
        sa,
    );
    assert_eq!(s, 200);

    // JSON patch with a failing test.
    let (s, body) = t.send("PATCH", "/api/v1/namespaces/web/serviceaccounts/builder", "application/json-patch+json",
        json!([{"op": "test", "path": "/imagePullSecrets/0/name", "value": "other"}, {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "s2"}}]));
    assert_eq!(s, 422);
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422})
    );
    let (s, body) = t.send("PATCH", "/api/v1/namespaces/web/serviceaccounts/builder", "application/json-patch+json",
        json!([{"op": "test", "path": "/imagePullSecrets/0/name", "value": "s1"}, {"op": "add", "path": "/imagePullSecrets/-", "value": {"name": "s2"}}]));
    assert_eq!(s, 200);
    assert_eq!(
        body["imagePullSecrets"],
        json!([{"name": "s1"}, {"name": "s2"}])
    );

    // Strategic merge: ServiceAccount.imagePullSecrets replaced, PodSpec.imagePullSecrets merged.
    let (_, body) = t.send(
        "PATCH",
        "/api/v1/namespaces/web/serviceaccounts/builder",
        "application/strategic-merge-patch+json",
        json!({"imagePullSecrets": [{"name": "s3"}]}),
    );
    assert_eq!(body["imagePullSecrets"], json!([{"name": "s3"}]));
    let (s, body) = t.send(
        "PATCH",
        "/api/v1/namespaces/web/pods/p1",
        "application/strategic-merge-patch+json",
        json!({"spec": {"imagePullSecrets": [{"name": "s2"}]}}),
    );
    // PodSpec.imagePullSecrets cannot change on a live pod, but the merged result is what the
    // server validated: it names the forbidden change.
    assert_eq!(s, 422);
    assert!(body["message"].as_str().unwrap().starts_with("Pod \"p1\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
    assert_eq!(body["details"]["kind"], "Pod");
    let (s, body) = t.send("PATCH", "/api/v1/namespaces/web/pods/p1", "application/strategic-merge-patch+json",
        json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}));
    assert_eq!(s, 200);
    assert_eq!(
        body["spec"]["containers"],
        json!([{"name": "c", "image": "nginx:2"}])
    );
    assert_eq!(body["metadata"]["labels"], json!({"app": "a", "b": "2"}));
    let (s, body) = t.send(
        "PATCH",
        "/apis/batch/v1/namespaces/web/jobs/j",
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "s1"}]}}}}),
    );
    assert_eq!(s, 422);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Job.batch \"j\" is invalid: spec.template: Invalid value: "));
    assert!(body["message"]
        .as_str()
        .unwrap()
        .ends_with("field is immutable"));
    // Deployments: template pull secrets merge by name.
    t.srv.insert(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "web"},
        "spec": {"template": {"spec": {"imagePullSecrets": [{"name": "s1"}], "containers": [{"name": "c", "image": "x"}]}}}}));
    let (s, body) = t.send(
        "PATCH",
        "/apis/apps/v1/namespaces/web/deployments/d",
        "application/strategic-merge-patch+json",
        json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": "s2"}]}}}}),
    );
    assert_eq!(s, 200);
    assert_eq!(
        body["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "s1"}, {"name": "s2"}])
    );
    assert_eq!(body["metadata"]["generation"], 2);
}

#[test]
fn dry_run_stores_nothing() {
    let t = T::new(Options::default());
    t.srv.load_yaml(WEB);
    let rv = t.srv.resource_version();
    let (s, body) = t.send(
        "POST",
        "/api/v1/namespaces/web/secrets?dryRun=All",
        "application/json",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dry"}}),
    );
    assert_eq!(s, 201);
    assert_eq!(body["metadata"]["name"], "dry");
    let (s, body) = t.send(
        "PATCH",
        "/api/v1/namespaces/web/serviceaccounts/builder?dryRun=All",
        "application/merge-patch+json",
        json!({"imagePullSecrets": [{"name": "zz"}]}),
    );
    assert_eq!(s, 200);
    assert_eq!(body["imagePullSecrets"], json!([{"name": "zz"}]));
    let (s, _) = t
        .req("DELETE", "/api/v1/namespaces/web/pods/p1?dryRun=All")
        .send()
        .map(split)
        .unwrap();
    assert_eq!(s, 200);
    assert_eq!(t.srv.resource_version(), rv);
    assert!(t.srv.get("secret", "web", "dry").is_none());
    assert!(t.srv.get("pod", "web", "p1").is_some());
    assert_eq!(
        t.srv.get("sa", "web", "builder").unwrap()["imagePullSecrets"],
        json!([{"name": "s1"}])
    );
    let log = t.srv.writes();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.dry_run));
    assert_eq!(
        log[1].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(log[1].verb, "patch");
    assert_eq!(log[1].name, "builder");
}

#[test]
fn authentication_and_rbac() {
    let t = T::new(
        Options::default()
            .rbac(true)
            .user("alice-token", "alice", &["devs"])
            .user("sa-token", "system:serviceaccount:web:deployer", &[]),
    );
    t.srv.load_yaml(WEB);
    let (s, body) = split(t.req_as("GET", "/api/v1/pods", "wrong").send().unwrap());
    assert_eq!(s, 401);
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
    );
    let (s, _) = split(
        t.client
            .get(format!("{}/api/v1/pods", t.srv.url()))
            .send()
            .unwrap(),
    );
    assert_eq!(s, 401);
    let (s, body) = split(
        t.req_as("GET", "/api/v1/namespaces/web/secrets", "alice-token")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 403);
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"web\"",
        "reason":"Forbidden","details":{"kind":"secrets"},"code":403})
    );
    let (_, body) = split(
        t.req_as("GET", "/apis/apps/v1/deployments", "alice-token")
            .send()
            .unwrap(),
    );
    assert_eq!(body["message"], "deployments.apps is forbidden: User \"alice\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope");
    t.srv.load_yaml(r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: web}
rules: [{apiGroups: [""], resources: ["secrets", "serviceaccounts"], verbs: ["get", "list"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-read, namespace: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}, {kind: ServiceAccount, name: deployer, namespace: web}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-patcher}
rules: [{apiGroups: ["*"], resources: ["pods"], verbs: ["*"], resourceNames: ["p1"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-patcher}
subjects: [{kind: User, name: alice}]
"#);
    let (s, _) = split(
        t.req_as("GET", "/api/v1/namespaces/web/secrets", "alice-token")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 200);
    let (s, _) = split(
        t.req_as(
            "GET",
            "/api/v1/namespaces/web/serviceaccounts/builder",
            "sa-token",
        )
        .send()
        .unwrap(),
    );
    assert_eq!(s, 200);
    let (s, body) = split(
        t.req_as(
            "DELETE",
            "/api/v1/namespaces/web/serviceaccounts/builder",
            "sa-token",
        )
        .send()
        .unwrap(),
    );
    assert_eq!(s, 403);
    assert_eq!(body["message"], "serviceaccounts \"builder\" is forbidden: User \"system:serviceaccount:web:deployer\" cannot delete resource \"serviceaccounts\" in API group \"\" in the namespace \"web\"");
    assert_eq!(
        body["details"],
        json!({"name": "builder", "kind": "serviceaccounts"})
    );
    let (s, _) = split(
        t.req_as("GET", "/api/v1/namespaces/web/pods/p1", "alice-token")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 200);
    let (s, _) = split(
        t.req_as("GET", "/api/v1/namespaces/web/pods", "alice-token")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 403);
    // Admin token bypasses RBAC; the log never holds the token.
    assert_eq!(t.get("/api/v1/namespaces/web/secrets").0, 200);
    assert!(t
        .srv
        .requests()
        .iter()
        .all(|r| !format!("{r:?}").contains("alice-token")));
}

#[test]
fn client_certificates_authenticate_like_kube_apiserver() {
    let ca = CertificateAuthority::new("clients");
    let t = T::new(Options::default().rbac(true).client_ca(&ca));
    t.srv.load_yaml(WEB);
    let pods = format!("{}/api/v1/namespaces/web/pods", t.srv.url());
    let carol = client_for(&t.srv, Some(&ca.issue_client("carol", &["devs", "ops"])));
    let (s, body) = split(carol.get(&pods).send().unwrap());
    assert_eq!(s, 403);
    assert_eq!(body["message"], "pods is forbidden: User \"carol\" cannot list resource \"pods\" in API group \"\" in the namespace \"web\"");
    let last = t.srv.requests().pop().unwrap();
    assert_eq!(last.user, "carol");
    assert_eq!(last.groups, ["devs", "ops", "system:authenticated"]);
    assert_eq!(last.impersonator, None);
    // Every O value is a group.
    t.srv.load_yaml(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: web}
rules: [{apiGroups: [""], resources: ["pods"], verbs: ["list"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ops-read, namespace: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: Group, name: ops}]
"#,
    );
    assert_eq!(split(carol.get(&pods).send().unwrap()).0, 200);

    // Another CA's certificate: the handshake succeeds (the server only requests a
    // certificate), the certificate authenticates nothing, a token still does.
    let other = CertificateAuthority::new("other");
    let stranger = client_for(&t.srv, Some(&other.issue_client("carol", &["ops"])));
    let (s, body) = split(stranger.get(&pods).send().unwrap());
    assert_eq!((s, body["reason"].as_str()), (401, Some("Unauthorized")));
    let with_token = stranger
        .get(&pods)
        .bearer_auth(t.srv.token())
        .send()
        .unwrap();
    assert_eq!(with_token.status().as_u16(), 200);
    assert_eq!(t.srv.requests().pop().unwrap().user, "kubernetes-admin");
    // A verified certificate comes before the token, as in kube-apiserver's authenticator chain.
    let (s, _) = split(carol.get(&pods).bearer_auth(t.srv.token()).send().unwrap());
    assert_eq!(s, 200);
    assert_eq!(t.srv.requests().pop().unwrap().user, "carol");
    // No certificate, no token.
    assert_eq!(split(t.client.get(&pods).send().unwrap()).0, 401);
    assert_eq!(t.srv.requests().pop().unwrap().user, "");
}

#[test]
fn impersonation_is_authorized_then_runs_as_the_impersonated_user() {
    let t = T::new(
        Options::default()
            .rbac(true)
            .user("alice-token", "alice", &[]),
    );
    t.srv.load_yaml(WEB);
    let as_jane = |groups: &[&str]| {
        let mut r = t
            .req_as("GET", "/api/v1/namespaces/web/secrets", "alice-token")
            .header("Impersonate-User", "jane");
        for g in groups {
            r = r.header("Impersonate-Group", *g);
        }
        split(r.send().unwrap())
    };
    let (s, body) = as_jane(&[]);
    assert_eq!(s, 403);
    assert_eq!(
        body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
        "message":"users \"jane\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
        "reason":"Forbidden","details":{"name":"jane","kind":"users"},"code":403})
    );
    assert_eq!(t.srv.requests().pop().unwrap().user, "");
    t.srv.load_yaml(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-jane}
rules:
- {apiGroups: [""], resources: ["users"], verbs: ["impersonate"], resourceNames: ["jane"]}
- {apiGroups: [""], resources: ["groups"], verbs: ["impersonate"], resourceNames: ["auditors"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-impersonates}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-jane}
subjects: [{kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: web}
rules: [{apiGroups: [""], resources: ["secrets"], verbs: ["list"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: auditors-read, namespace: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{kind: Group, name: auditors}]
"#,
    );
    // Allowed to impersonate jane, the request is then authorized as jane, not alice.
    let (s, body) = as_jane(&[]);
    assert_eq!(s, 403);
    assert_eq!(body["message"], "secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" in the namespace \"web\"");
    let last = t.srv.requests().pop().unwrap();
    assert_eq!(
        (last.user.as_str(), last.impersonator.as_deref()),
        ("jane", Some("alice"))
    );
    assert_eq!(last.groups, ["system:authenticated"]);
    // With a group jane reads secrets through the group's binding.
    assert_eq!(as_jane(&["auditors"]).0, 200);
    let last = t.srv.requests().pop().unwrap();
    assert_eq!(last.groups, ["auditors", "system:authenticated"]);
    let (s, body) = as_jane(&["auditors", "admins"]);
    assert_eq!(s, 403);
    assert_eq!(body["message"], "groups \"admins\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope");
    // A service account is impersonated through resource serviceaccounts in its namespace.
    let (s, body) = split(
        t.req_as("GET", "/api/v1/namespaces/web/pods", "alice-token")
            .header("Impersonate-User", "system:serviceaccount:web:deployer")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 403);
    assert_eq!(body["message"], "serviceaccounts \"deployer\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"web\"");
    // Groups without a user are a bad request.
    let (s, body) = split(
        t.req_as("GET", "/api/v1/namespaces/web/pods", "alice-token")
            .header("Impersonate-Group", "auditors")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 400);
    assert_eq!(
        body["message"],
        "requested [{Group  auditors    }] without impersonating a user"
    );
    // system:masters may impersonate anyone; a service account gets its fixed groups.
    let (s, body) = split(
        t.req("GET", "/api/v1/namespaces/web/pods")
            .header("Impersonate-User", "system:serviceaccount:web:deployer")
            .send()
            .unwrap(),
    );
    assert_eq!(s, 403, "{body}");
    let last = t.srv.requests().pop().unwrap();
    assert_eq!(last.impersonator.as_deref(), Some("kubernetes-admin"));
    assert_eq!(
        last.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:web",
            "system:authenticated"
        ]
    );
}

#[test]
fn fault_injection() {
    let t = T::new(Options::default().tls(true));
    t.srv.load_yaml(WEB);
    assert!(t.srv.url().starts_with("https://127.0.0.1:"));

    t.srv
        .fail_always(403, Match::any().verb("list").resource("secrets"));
    let (s, body) = t.get("/api/v1/namespaces/web/secrets");
    assert_eq!(s, 403);
    assert_eq!(body["message"], "secrets is forbidden: User \"kubernetes-admin\" cannot list resource \"secrets\" in API group \"\" in the namespace \"web\"");
    assert_eq!(t.get("/api/v1/namespaces/web/secrets/x").0, 404);
    t.srv.clear_faults();

    t.srv
        .fail_next(2, 409, Match::writes().resource("sa").name("builder"));
    let patch = json!({"metadata": {"labels": {"a": "b"}}});
    for _ in 0..2 {
        let (s, body) = t.send(
            "PATCH",
            "/api/v1/namespaces/web/serviceaccounts/builder",
            "application/merge-patch+json",
            patch.clone(),
        );
        assert_eq!(s, 409);
        assert_eq!(body["reason"], "Conflict");
    }
    assert_eq!(
        t.send(
            "PATCH",
            "/api/v1/namespaces/web/serviceaccounts/builder",
            "application/merge-patch+json",
            patch
        )
        .0,
        200
    );

    t.srv.fail_next(1, 429, Match::any());
    let r = t.req("GET", "/api/v1/pods").send().unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(t.get("/api/v1/pods").0, 200);

    t.srv.fail_next(1, 502, Match::any());
    assert_eq!(
        t.req("GET", "/api/v1/pods")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        502
    );

    t.srv
        .drop_connections(Match::any().path_contains("/version"), Some(1));
    assert!(t.req("GET", "/version").send().is_err());
    assert_eq!(t.get("/version").0, 200);

    t.srv
        .add_latency(Duration::from_millis(150), Match::any().verb("get"));
    let start = Instant::now();
    t.get("/api/v1/namespaces/web/pods/p1");
    assert!(start.elapsed() >= Duration::from_millis(150));
    t.srv.clear_faults();

    t.srv.fail_fraction(0.5, 503, Match::any().resource("pods"));
    let failures = (0..40).filter(|_| t.get("/api/v1/pods").0 == 503).count();
    assert!((8..=32).contains(&failures), "{failures}");
    t.srv.clear_faults();

    // Race: another client changes the SA between our GET and PUT.
    let (_, mut sa) = t.get("/api/v1/namespaces/web/serviceaccounts/builder");
    t.srv.before_next_write(
        "sa",
        "web",
        "builder",
        json!({"imagePullSecrets": [{"name": "theirs"}]}),
    );
    sa["imagePullSecrets"] = json!([{"name": "mine"}]);
    let (s, _) = t.send(
        "PUT",
        "/api/v1/namespaces/web/serviceaccounts/builder",
        "application/json",
        sa,
    );
    assert_eq!(s, 409);
    assert_eq!(
        t.srv.get("sa", "web", "builder").unwrap()["imagePullSecrets"],
        json!([{"name": "theirs"}])
    );

    let log = t.srv.requests();
    assert!(log.iter().any(|r| r.status == 0 && r.path == "/version"));
    assert!(log.iter().any(|r| r.status == 502));
    t.srv.clear_requests();
    assert!(t.srv.requests().is_empty());
}

#[test]
fn real_kubectl() {
    if !std::path::Path::new("/usr/bin/kubectl").exists() {
        eprintln!("note: /usr/bin/kubectl not found, skipping");
        return;
    }
    let t = T::new(Options::default().tls(true).synthesize_pods(30));
    t.srv.load_yaml(WEB);
    let dir = std::env::temp_dir().join(format!("fake-apiserver-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("config");
    t.srv.write_kubeconfig(&kc);
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .env("HOME", &dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = kubectl(&["get", "pods", "-A", "-o", "json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 31);
    let (ok, out, err) = kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "reg",
        "-n",
        "web",
        "--docker-username=u",
        "--docker-password=p",
        "--docker-server=r.io",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("secret/reg created"));
    let s = t.srv.get("secret", "web", "reg").unwrap();
    assert_eq!(s["type"], "kubernetes.io/dockerconfigjson");
    let (ok, _, err) = kubectl(&[
        "patch",
        "sa",
        "default",
        "-n",
        "web",
        "-p",
        r#"{"imagePullSecrets":[{"name":"reg"}]}"#,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        t.srv.get("sa", "web", "default").unwrap()["imagePullSecrets"],
        json!([{"name": "reg"}])
    );
    let (ok, _, err) = kubectl(&[
        "patch",
        "sa",
        "default",
        "-n",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/imagePullSecrets/0/name","value":"x"}]"#,
    ]);
    assert!(!ok);
    assert!(
        err.contains("the server rejected our request due to an error in our request"),
        "{err}"
    );
    let (ok, out, err) = kubectl(&["get", "pods", "-n", "web"]);
    assert!(ok, "{err}");
    assert!(out.contains("NAME") && out.contains("p1"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
