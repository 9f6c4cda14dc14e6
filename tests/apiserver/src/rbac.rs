//! A small RBAC authorizer evaluating the stored Roles/ClusterRoles/(Cluster)RoleBindings.

use serde_json::Value;

use crate::resources::{lookup, ResourceDef};
use crate::store::Store;

/// Who is asking.
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn is_superuser(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

fn str_list(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    /// API group, `""` for core.
    pub group: &'a str,
    /// Plural resource: `pods`, or `users`/`groups` for impersonation.
    pub resource: &'a str,
    /// Empty when none.
    pub subresource: &'a str,
    /// Empty at cluster scope.
    pub namespace: &'a str,
    /// Empty for lists and creates.
    pub name: &'a str,
}

impl<'a> Attributes<'a> {
    /// A request on a served resource.
    pub fn on(
        def: &'a ResourceDef,
        verb: &'a str,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: def.group,
            resource: def.plural,
            subresource,
            namespace,
            name,
        }
    }
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = str_list(rule.get("verbs"));
    let groups = str_list(rule.get("apiGroups"));
    let resources = str_list(rule.get("resources"));
    let names = str_list(rule.get("resourceNames"));
    let name = attrs.name;
    let resource_matches = if attrs.subresource.is_empty() {
        resources.contains(&attrs.resource)
    } else {
        resources.contains(&format!("{}/{}", attrs.resource, attrs.subresource).as_str())
            || resources.contains(&format!("{}/*", attrs.resource).as_str())
    };
    (verbs.contains(&"*") || verbs.contains(&attrs.verb))
        && (groups.contains(&"*") || groups.contains(&attrs.group))
        && (resources.contains(&"*") || resource_matches)
        && (names.is_empty() || (!name.is_empty() && names.contains(&name)))
}

fn subject_matches(subject: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn role_rules(store: &Store, role_ref: &Value, binding_ns: &str) -> Vec<Value> {
    let kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let role = match kind {
        "Role" => store.get(lookup("roles").unwrap(), binding_ns, name),
        "ClusterRole" => store.get(lookup("clusterroles").unwrap(), "", name),
        _ => None,
    };
    role.and_then(|r| r.value().get("rules").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Is `user` allowed to do what `attrs` describe?
pub fn authorize(store: &Store, user: &UserInfo, attrs: &Attributes) -> bool {
    if user.is_superuser() {
        return true;
    }
    let namespace = attrs.namespace;
    let check = |rules: Vec<Value>| rules.iter().any(|r| rule_allows(r, attrs));
    for crb in store.map(lookup("clusterrolebindings").unwrap()).values() {
        let v = &crb.value();
        let subjects = v.get("subjects").and_then(Value::as_array);
        if subjects.is_some_and(|s| s.iter().any(|s| subject_matches(s, user, "")))
            && check(role_rules(store, &v["roleRef"], ""))
        {
            return true;
        }
    }
    if !namespace.is_empty() {
        let rbs = store.map(lookup("rolebindings").unwrap());
        for ((ns, _), rb) in rbs.range((namespace.to_string(), String::new())..) {
            if ns != namespace {
                break;
            }
            let v = &rb.value();
            let subjects = v.get("subjects").and_then(Value::as_array);
            if subjects.is_some_and(|s| s.iter().any(|s| subject_matches(s, user, namespace)))
                && check(role_rules(store, &v["roleRef"], namespace))
            {
                return true;
            }
        }
    }
    false
}
