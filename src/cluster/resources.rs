//! The resource kinds this tool reads and writes, with kubectl's names and short names.
//! Pure: builds API paths, parses `KIND` and `KIND/NAME` arguments.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceKind {
    pub kind: &'static str,
    pub plural: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub namespaced: bool,
    /// kubectl's accepted spellings besides the plural.
    pub aliases: &'static [&'static str],
}

macro_rules! kind {
    ($name:ident, $kind:literal, $plural:literal, $group:literal, $version:literal, $ns:literal, [$($alias:literal),*]) => {
        pub const $name: ResourceKind = ResourceKind {
            kind: $kind, plural: $plural, group: $group, version: $version, namespaced: $ns,
            aliases: &[$($alias),*],
        };
    };
}

kind!(
    NAMESPACE,
    "Namespace",
    "namespaces",
    "",
    "v1",
    false,
    ["namespace", "ns"]
);
kind!(POD, "Pod", "pods", "", "v1", true, ["pod", "po"]);
kind!(
    SERVICE_ACCOUNT,
    "ServiceAccount",
    "serviceaccounts",
    "",
    "v1",
    true,
    ["serviceaccount", "sa"]
);
kind!(SECRET, "Secret", "secrets", "", "v1", true, ["secret"]);
kind!(EVENT, "Event", "events", "", "v1", true, ["event", "ev"]);
kind!(
    REPLICATION_CONTROLLER,
    "ReplicationController",
    "replicationcontrollers",
    "",
    "v1",
    true,
    ["replicationcontroller", "rc"]
);
kind!(
    DEPLOYMENT,
    "Deployment",
    "deployments",
    "apps",
    "v1",
    true,
    ["deployment", "deploy"]
);
kind!(
    REPLICA_SET,
    "ReplicaSet",
    "replicasets",
    "apps",
    "v1",
    true,
    ["replicaset", "rs"]
);
kind!(
    STATEFUL_SET,
    "StatefulSet",
    "statefulsets",
    "apps",
    "v1",
    true,
    ["statefulset", "sts"]
);
kind!(
    DAEMON_SET,
    "DaemonSet",
    "daemonsets",
    "apps",
    "v1",
    true,
    ["daemonset", "ds"]
);
kind!(JOB, "Job", "jobs", "batch", "v1", true, ["job"]);
kind!(
    CRON_JOB,
    "CronJob",
    "cronjobs",
    "batch",
    "v1",
    true,
    ["cronjob", "cj"]
);

/// Kinds that carry a pod spec (directly or in a template), in the order audits read them.
pub const POD_BEARING: [ResourceKind; 8] = [
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    CRON_JOB,
    JOB,
    POD,
];

/// Kinds `patch` accepts.
pub const PATCHABLE: [ResourceKind; 9] = [
    SERVICE_ACCOUNT,
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    CRON_JOB,
    JOB,
    POD,
];

const ALL: [ResourceKind; 12] = [
    NAMESPACE,
    POD,
    SERVICE_ACCOUNT,
    SECRET,
    EVENT,
    REPLICATION_CONTROLLER,
    DEPLOYMENT,
    REPLICA_SET,
    STATEFUL_SET,
    DAEMON_SET,
    JOB,
    CRON_JOB,
];

impl ResourceKind {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// kubectl's `TYPE.GROUP` spelling used in messages: `deployment.apps`, `serviceaccount`.
    pub fn qualified_name(&self) -> String {
        let singular = self.kind.to_ascii_lowercase();
        if self.group.is_empty() {
            singular
        } else {
            format!("{singular}.{}", self.group)
        }
    }

    /// `/api/v1/namespaces/NS/pods[/NAME]` or the cluster-wide collection when `namespace` is None.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut p = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if let (true, Some(ns)) = (self.namespaced, namespace) {
            p.push_str("/namespaces/");
            p.push_str(ns);
        }
        p.push('/');
        p.push_str(self.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(n);
        }
        p
    }

    /// Looks up a kind by kubectl name: plural, singular, short name or Kind, optionally `.group`.
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        let lower = name.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower, None),
        };
        ALL.into_iter().find(|k| {
            let name_ok = k.plural == base || k.aliases.contains(&base.as_str());
            let group_ok = group.as_deref().is_none_or(|g| g == k.group);
            name_ok && group_ok
        })
    }

    /// Looks up by `apiVersion` + `kind` as found in manifests.
    pub fn from_api_version_kind(api_version: &str, kind: &str) -> Option<ResourceKind> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        ALL.into_iter().find(|k| k.kind == kind && k.group == group)
    }

    pub fn from_kind(kind: &str) -> Option<ResourceKind> {
        ALL.into_iter().find(|k| k.kind == kind)
    }
}

/// Parses `KIND/NAME` into its parts; `Err` names what is wrong.
pub fn parse_kind_name(arg: &str) -> Result<(ResourceKind, String), String> {
    let (kind, name) = arg
        .split_once('/')
        .ok_or_else(|| format!("{arg:?} is not KIND/NAME (for example deployment/web)"))?;
    let kind = ResourceKind::from_name(kind)
        .ok_or_else(|| format!("unknown resource type {kind:?} in {arg:?}"))?;
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{arg:?} is not KIND/NAME (for example deployment/web)"
        ));
    }
    Ok((kind, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_names_and_short_names_resolve() {
        for (name, kind) in [
            ("sa", "ServiceAccount"),
            ("serviceaccounts", "ServiceAccount"),
            ("deploy", "Deployment"),
            ("deployment.apps", "Deployment"),
            ("sts", "StatefulSet"),
            ("ds", "DaemonSet"),
            ("rs", "ReplicaSet"),
            ("rc", "ReplicationController"),
            ("cj", "CronJob"),
            ("cronjob.batch", "CronJob"),
            ("job", "Job"),
            ("po", "Pod"),
            ("Pod", "Pod"),
        ] {
            assert_eq!(
                ResourceKind::from_name(name).map(|k| k.kind),
                Some(kind),
                "{name}"
            );
        }
        assert!(ResourceKind::from_name("deployment.batch").is_none());
        assert!(ResourceKind::from_name("widgets").is_none());
    }

    #[test]
    fn paths_follow_the_api_layout() {
        assert_eq!(
            POD.path(Some("web"), Some("p")),
            "/api/v1/namespaces/web/pods/p"
        );
        assert_eq!(POD.path(None, None), "/api/v1/pods");
        assert_eq!(
            CRON_JOB.path(Some("a"), None),
            "/apis/batch/v1/namespaces/a/cronjobs"
        );
        assert_eq!(NAMESPACE.path(Some("x"), Some("x")), "/api/v1/namespaces/x");
        assert_eq!(DEPLOYMENT.qualified_name(), "deployment.apps");
        assert_eq!(SERVICE_ACCOUNT.qualified_name(), "serviceaccount");
    }

    #[test]
    fn kind_name_arguments_are_validated() {
        assert_eq!(parse_kind_name("deploy/web").unwrap().1, "web");
        assert!(parse_kind_name("web").is_err());
        assert!(parse_kind_name("deploy/").is_err());
        assert!(parse_kind_name("gizmo/x").is_err());
    }

    #[test]
    fn manifests_resolve_by_api_version_and_kind() {
        assert_eq!(
            ResourceKind::from_api_version_kind("apps/v1", "Deployment"),
            Some(DEPLOYMENT)
        );
        assert_eq!(ResourceKind::from_api_version_kind("v1", "Pod"), Some(POD));
        assert_eq!(
            ResourceKind::from_api_version_kind("batch/v1", "CronJob"),
            Some(CRON_JOB)
        );
        assert_eq!(
            ResourceKind::from_api_version_kind("extensions/v1beta1", "Deployment"),
            None
        );
    }
}
