//! Workloads as the audit sees them: the containers of every pod-bearing kind, the pull secrets
//! they name, and pods folded into the controllers that own them. Pure: works on
//! `serde_json::Value` objects from the API server or from manifests.
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

/// The annotation that exempts a workload from some rules: `"rule-a,rule-b"`.
pub const IGNORE_ANNOTATION: &str = "image-sec.io/ignore";

/// Waiting reasons that mean the image cannot be pulled.
pub const PULL_FAILURE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    Container,
    Init,
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field holding this kind of container.
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Container => "containers",
            ContainerKind::Init => "initContainers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of a pod spec, reduced to what the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    /// The image string exactly as written.
    pub image: String,
    pub kind: ContainerKind,
    /// Position in its list (for JSON-patch remediations).
    pub index: usize,
    pub pull_policy: Option<String>,
    pub read_only_root_filesystem: bool,
}

/// A container of a live pod waiting because its image cannot be pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    pub pod: String,
    pub container: String,
    pub image: String,
    pub reason: String,
    pub message: String,
}

/// Where a manifest workload came from (for SARIF locations).
#[derive(Debug, Clone)]
pub struct ManifestSource {
    pub file: String,
    pub line: usize,
    pub document_text: Arc<str>,
    pub document_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// A pod-bearing object: a controller, or a Pod.
#[derive(Debug, Clone)]
pub struct Workload {
    /// kubeconfig context (empty for manifests).
    pub context: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub containers: Vec<ContainerSpec>,
    /// imagePullSecrets named by the pod spec itself.
    pub pull_secrets: Vec<String>,
    pub service_account: String,
    /// Rules this workload is exempt from (`image-sec.io/ignore`).
    pub ignore: BTreeSet<String>,
    /// Pods folded into this workload (1 for a Pod, 0 for a controller without pods).
    pub pod_count: usize,
    /// The controlling owner (`ownerReferences[controller=true]`).
    pub owner: Option<Owner>,
    pub failures: Vec<PullFailure>,
    pub source: Option<ManifestSource>,
}

impl Workload {
    /// `deployment/web`, as kubectl and `patch` spell it.
    pub fn kind_name(&self) -> String {
        self.kind_name_display().to_string()
    }

    /// [`Workload::kind_name`] written straight into a message, with no string of its own
    /// (the rules write it into hundreds of remediations).
    pub fn kind_name_display(&self) -> KindName<'_> {
        KindName(self)
    }

    /// The pull secrets the kubelet will use: the pod's own, else the service account's (the
    /// ServiceAccount admission plugin copies them only when the pod names none). Each with
    /// the service account it came from.
    pub fn effective_pull_secrets(
        &self,
        service_account_secrets: Option<&[String]>,
    ) -> Vec<(String, Option<String>)> {
        if !self.pull_secrets.is_empty() {
            return self
                .pull_secrets
                .iter()
                .map(|s| (s.clone(), None))
                .collect();
        }
        service_account_secrets
            .unwrap_or_default()
            .iter()
            .map(|s| (s.clone(), Some(self.service_account.clone())))
            .collect()
    }

    /// JSON pointer of a container's list in this kind's object (for `kubectl patch` hints).
    pub fn container_pointer(&self, c: &ContainerSpec) -> String {
        self.container_pointer_display(c).to_string()
    }

    /// [`Workload::container_pointer`] written straight into a message.
    pub fn container_pointer_display<'a>(&'a self, c: &'a ContainerSpec) -> ContainerPointer<'a> {
        ContainerPointer(self, c)
    }
}

/// See [`Workload::kind_name_display`].
pub struct KindName<'a>(&'a Workload);

impl std::fmt::Display for KindName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for ch in self.0.kind.chars() {
            std::fmt::Write::write_char(f, ch.to_ascii_lowercase())?;
        }
        f.write_str("/")?;
        f.write_str(&self.0.name)
    }
}

/// See [`Workload::container_pointer_display`].
pub struct ContainerPointer<'a>(&'a Workload, &'a ContainerSpec);

impl std::fmt::Display for ContainerPointer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = match self.0.kind.as_str() {
            "Pod" => "/spec",
            "CronJob" => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        };
        write!(f, "{prefix}/{}/{}", self.1.kind.field(), self.1.index)
    }
}

/// Kinds whose objects carry a pod spec.
pub fn is_pod_bearing(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicationController"
            | "Job"
            | "CronJob"
            | "Pod"
    )
}

/// The pod template of a kind (`None` for Pod itself).
fn template<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => None,
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template"),
        _ => obj.pointer("/spec/template"),
    }
}

fn pod_spec<'a>(kind: &str, obj: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => obj.get("spec"),
        _ => template(kind, obj).and_then(|t| t.get("spec")),
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Adds the rule IDs of an `image-sec.io/ignore: "rule-a, rule-b"` annotation value.
fn add_ignored_rules(list: &str, out: &mut BTreeSet<String>) {
    out.extend(
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
}

fn ignore_list(meta: Option<&Value>, out: &mut BTreeSet<String>) {
    if let Some(list) = meta
        .and_then(|m| m.pointer("/annotations"))
        .and_then(|a| a.get(IGNORE_ANNOTATION))
        .and_then(Value::as_str)
    {
        add_ignored_rules(list, out);
    }
}

/// Extracts a workload from an object of a pod-bearing `kind`. `default_namespace` is used when
/// the object has none (manifests). Returns None when the object has no name.
pub fn extract(
    kind: &str,
    obj: &Value,
    context: &str,
    default_namespace: &str,
) -> Option<Workload> {
    let name = str_at(obj, "/metadata/name")?.to_string();
    let namespace = str_at(obj, "/metadata/namespace")
        .filter(|s| !s.is_empty())
        .unwrap_or(default_namespace)
        .to_string();
    let spec = pod_spec(kind, obj);
    let mut containers = Vec::new();
    for ck in [
        ContainerKind::Init,
        ContainerKind::Container,
        ContainerKind::Ephemeral,
    ] {
        let list = spec
            .and_then(|s| s.get(ck.field()))
            .and_then(Value::as_array);
        for (index, c) in list.into_iter().flatten().enumerate() {
            containers.push(ContainerSpec {
                name: c.get("name").and_then(Value::as_str).unwrap_or("").into(),
                image: c.get("image").and_then(Value::as_str).unwrap_or("").into(),
                kind: ck,
                index,
                pull_policy: c
                    .get("imagePullPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                read_only_root_filesystem: c
                    .pointer("/securityContext/readOnlyRootFilesystem")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
    }
    let pull_secrets = spec
        .and_then(|s| s.get("imagePullSecrets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let service_account = spec
        .and_then(|s| {
            s.get("serviceAccountName")
                .or_else(|| s.get("serviceAccount"))
                .and_then(Value::as_str)
        })
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    let mut ignore = BTreeSet::new();
    ignore_list(obj.get("metadata"), &mut ignore);
    ignore_list(
        template(kind, obj).and_then(|t| t.get("metadata")),
        &mut ignore,
    );
    let owner = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| {
            Some(Owner {
                kind: r.get("kind")?.as_str()?.to_string(),
                name: r.get("name")?.as_str()?.to_string(),
            })
        });
    let mut failures = Vec::new();
    if kind == "Pod" {
        for field in [
            "initContainerStatuses",
            "containerStatuses",
            "ephemeralContainerStatuses",
        ] {
            let statuses = obj
                .pointer(&format!("/status/{field}"))
                .and_then(Value::as_array);
            for st in statuses.into_iter().flatten() {
                let Some(reason) = str_at(st, "/state/waiting/reason") else {
                    continue;
                };
                if !PULL_FAILURE_REASONS.contains(&reason) {
                    continue;
                }
                let cname = st.get("name").and_then(Value::as_str).unwrap_or("");
                // The spec's image as written (status.image may be normalised by the runtime).
                let image = containers
                    .iter()
                    .find(|c| c.name == cname)
                    .map(|c| c.image.clone())
                    .or_else(|| st.get("image").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                failures.push(PullFailure {
                    pod: name.clone(),
                    container: cname.to_string(),
                    image,
                    reason: reason.to_string(),
                    message: str_at(st, "/state/waiting/message")
                        .unwrap_or("")
                        .to_string(),
                });
            }
        }
    }
    Some(Workload {
        context: context.to_string(),
        namespace,
        kind: kind.to_string(),
        name,
        containers,
        pull_secrets,
        service_account,
        ignore,
        pod_count: usize::from(kind == "Pod"),
        owner,
        failures,
        source: None,
    })
}

/// Typed, lenient views of API objects for the live audit: only the fields the audit reads.
/// serde skips every other field without allocating, so decoding a LIST page into these costs a
/// fraction of a `serde_json::Value` tree. Scalars of an unexpected type read as absent (like
/// the `Value` accessors), so one odd object never fails a page.
pub mod typed {
    use std::borrow::Cow;
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    /// A string, or None when absent, null or not a string.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct LStr(pub Option<String>);

    impl LStr {
        pub fn as_deref(&self) -> Option<&str> {
            self.0.as_deref()
        }
    }

    /// A boolean, or None when absent, null or not a boolean.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct LBool(pub Option<bool>);

    /// A list, empty when absent, null or not a list.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LVec<T>(pub Vec<T>);

    impl<T> Default for LVec<T> {
        fn default() -> Self {
            LVec(Vec::new())
        }
    }

    fn skip_seq<'de, A: SeqAccess<'de>>(mut a: A) -> Result<(), A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn skip_map<'de, A: MapAccess<'de>>(mut a: A) -> Result<(), A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    /// A JSON scalar as far as the lenient types care: a string, a boolean, or anything else
    /// (skipped without allocating).
    enum Scalar<'de> {
        Str(Cow<'de, str>),
        Bool(bool),
        Other,
    }

    impl<'de> Deserialize<'de> for Scalar<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Str(Cow::Owned(v)))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Bool(v))
                }
                fn visit_i64<E: de::Error>(self, _v: i64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Other)
                }
                fn visit_u64<E: de::Error>(self, _v: u64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Other)
                }
                fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Other)
                }
                fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Other)
                }
                fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                    Ok(Scalar::Other)
                }
                fn visit_some<D2: Deserializer<'de>>(
                    self,
                    d: D2,
                ) -> Result<Scalar<'de>, D2::Error> {
                    Scalar::deserialize(d)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Scalar<'de>, A::Error> {
                    skip_seq(a).map(|_| Scalar::Other)
                }
                fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Scalar<'de>, A::Error> {
                    skip_map(a).map(|_| Scalar::Other)
                }
            }
            d.deserialize_any(V)
        }
    }

    impl<'de> Deserialize<'de> for LStr {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(LStr(match Scalar::deserialize(d)? {
                Scalar::Str(s) => Some(s.into_owned()),
                _ => None,
            }))
        }
    }

    /// [`LStr`] borrowed from the input where it can be (no escapes in the string).
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct LCow<'a>(pub Option<Cow<'a, str>>);

    impl LCow<'_> {
        pub fn as_deref(&self) -> Option<&str> {
            self.0.as_deref()
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for LCow<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(LCow(match Scalar::deserialize(d)? {
                Scalar::Str(s) => Some(s),
                _ => None,
            }))
        }
    }

    impl<'de> Deserialize<'de> for LBool {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(LBool(match Scalar::deserialize(d)? {
                Scalar::Bool(b) => Some(b),
                _ => None,
            }))
        }
    }

    /// What a lenient list reads into: made from the elements of a list, or the default when
    /// the value is absent, null or not a list.
    trait FromLenientSeq<'de>: Default {
        fn from_seq<A: SeqAccess<'de>>(a: A) -> Result<Self, A::Error>;
    }

    struct LenientSeq<T>(std::marker::PhantomData<T>);

    impl<'de, T: FromLenientSeq<'de>> Visitor<'de> for LenientSeq<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<T, A::Error> {
            T::from_seq(a)
        }
        fn visit_bool<E: de::Error>(self, _v: bool) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_i64<E: de::Error>(self, _v: i64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_u64<E: de::Error>(self, _v: u64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_f64<E: de::Error>(self, _v: f64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_str<E: de::Error>(self, _v: &str) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<T, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<T, A::Error> {
            skip_map(a).map(|_| T::default())
        }
    }

    impl<'de, T: Deserialize<'de>> FromLenientSeq<'de> for LVec<T> {
        fn from_seq<A: SeqAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
            let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(64));
            while let Some(x) = a.next_element()? {
                out.push(x);
            }
            Ok(LVec(out))
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for LVec<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(LenientSeq(std::marker::PhantomData))
        }
    }

    /// Of a list of owner references, the first one marked `controller: true` (whose pods the
    /// fold merges), borrowed; the list itself is not kept (one allocation less per pod).
    #[derive(Debug, Default)]
    pub struct ControllerRef<'a>(pub Option<OwnerRefView<'a>>);

    impl<'de: 'a, 'a> FromLenientSeq<'de> for ControllerRef<'a> {
        fn from_seq<A: SeqAccess<'de>>(mut a: A) -> Result<Self, A::Error> {
            while let Some(LObj(r)) = a.next_element::<LObj<OwnerRefView<'a>>>()? {
                if let Some(r) = r.filter(|r| r.controller.0 == Some(true)) {
                    skip_seq(a)?;
                    return Ok(ControllerRef(Some(r)));
                }
            }
            Ok(ControllerRef(None))
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for ControllerRef<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(LenientSeq(std::marker::PhantomData))
        }
    }

    /// An object, or the default when absent, null or not an object.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct LObj<T>(pub Option<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for LObj<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = LObj<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<LObj<T>, A::Error> {
                    T::deserialize(de::value::MapAccessDeserializer::new(a)).map(|x| LObj(Some(x)))
                }
                fn visit_bool<E: de::Error>(self, _v: bool) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_i64<E: de::Error>(self, _v: i64) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_u64<E: de::Error>(self, _v: u64) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_f64<E: de::Error>(self, _v: f64) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_str<E: de::Error>(self, _v: &str) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_unit<E: de::Error>(self) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_none<E: de::Error>(self) -> Result<LObj<T>, E> {
                    Ok(LObj(None))
                }
                fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<LObj<T>, D2::Error> {
                    LObj::deserialize(d)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<LObj<T>, A::Error> {
                    skip_seq(a).map(|_| LObj(None))
                }
            }
            d.deserialize_any(V(std::marker::PhantomData))
        }
    }

    impl<T> LObj<T> {
        pub fn get(&self) -> Option<&T> {
            self.0.as_ref()
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Meta {
        pub name: LStr,
        pub namespace: LStr,
        pub annotations: LObj<Annotations>,
        pub owner_references: LVec<LObj<OwnerRef>>,
    }

    /// What a pod's metadata says about whose pod it is, borrowed from the page: all the fold
    /// needs of a pod whose owner already has a pod decoded whole ([`Meta`] takes the same
    /// fields, owned).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct MetaOwner<'a> {
        #[serde(borrow)]
        pub name: LCow<'a>,
        #[serde(borrow)]
        pub namespace: LCow<'a>,
        #[serde(borrow, rename = "ownerReferences")]
        pub controller: ControllerRef<'a>,
    }

    /// [`OwnerRef`], borrowed.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct OwnerRefView<'a> {
        #[serde(borrow)]
        pub kind: LCow<'a>,
        #[serde(borrow)]
        pub name: LCow<'a>,
        pub controller: LBool,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Annotations {
        #[serde(rename = "image-sec.io/ignore")]
        pub ignore: LStr,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct OwnerRef {
        pub kind: LStr,
        pub name: LStr,
        pub controller: LBool,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct NameRef {
        pub name: LStr,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct SecurityContext {
        pub read_only_root_filesystem: LBool,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Container {
        pub name: LStr,
        pub image: LStr,
        pub image_pull_policy: LStr,
        pub security_context: LObj<SecurityContext>,
    }

    /// A pod spec, and the fields that lead to one in controllers (`template`, `jobTemplate`).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Spec {
        pub containers: LVec<LObj<Container>>,
        pub init_containers: LVec<LObj<Container>>,
        pub ephemeral_containers: LVec<LObj<Container>>,
        pub image_pull_secrets: LVec<LObj<NameRef>>,
        pub service_account_name: LStr,
        pub service_account: LStr,
        pub template: LObj<Box<Template>>,
        pub job_template: LObj<Box<JobTemplate>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct TemplateMeta {
        pub annotations: LObj<Annotations>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Template {
        pub metadata: LObj<TemplateMeta>,
        pub spec: LObj<Spec>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct JobTemplate {
        pub spec: LObj<Spec>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct Waiting {
        pub reason: LStr,
        pub message: LStr,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct State {
        pub waiting: LObj<Waiting>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct ContainerStatus {
        pub name: LStr,
        pub image: LStr,
        pub state: LObj<State>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Status {
        pub init_container_statuses: LVec<LObj<ContainerStatus>>,
        pub container_statuses: LVec<LObj<ContainerStatus>>,
        pub ephemeral_container_statuses: LVec<LObj<ContainerStatus>>,
    }

    /// A pod-bearing object (Pod or controller).
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    pub struct PodBearing {
        pub metadata: LObj<Meta>,
        pub spec: LObj<Spec>,
        pub status: LObj<Status>,
    }

    /// A Secret: its type and data, decoded by the caller.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct Secret {
        pub metadata: LObj<Meta>,
        #[serde(rename = "type")]
        pub type_: LStr,
        pub data: LObj<BTreeMap<String, LStr>>,
        pub string_data: LObj<BTreeMap<String, LStr>>,
    }

    /// A ServiceAccount: its pull secrets.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct ServiceAccount {
        pub metadata: LObj<Meta>,
        pub image_pull_secrets: LVec<LObj<NameRef>>,
    }
}

fn typed_ignore(a: Option<&typed::LObj<typed::Annotations>>, out: &mut BTreeSet<String>) {
    if let Some(list) = a.and_then(|a| a.get()).and_then(|a| a.ignore.as_deref()) {
        add_ignored_rules(list, out);
    }
}

/// [`extract`] for a typed object from a live LIST page; same result as `extract` on the same
/// JSON, without a `serde_json::Value` tree.
pub fn extract_typed(
    kind: &str,
    obj: typed::PodBearing,
    context: &str,
    default_namespace: &str,
) -> Option<Workload> {
    let typed::PodBearing {
        metadata,
        spec,
        status,
    } = obj;
    let mut meta = metadata.0.unwrap_or_default();
    let name = meta.name.0.take()?;
    let namespace = meta
        .namespace
        .0
        .take()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_namespace.to_string());
    let mut template_meta = None;
    let spec: Option<typed::Spec> = match kind {
        "Pod" => spec.0,
        "CronJob" => spec
            .0
            .and_then(|s| s.job_template.0)
            .and_then(|j| j.spec.0)
            .and_then(|s| s.template.0)
            .and_then(|t| {
                let t = *t;
                template_meta = t.metadata.0;
                t.spec.0
            }),
        _ => spec.0.and_then(|s| s.template.0).and_then(|t| {
            let t = *t;
            template_meta = t.metadata.0;
            t.spec.0
        }),
    };
    let mut spec = spec.unwrap_or_default();
    let mut containers = Vec::new();
    for (ck, list) in [
        (
            ContainerKind::Init,
            std::mem::take(&mut spec.init_containers.0),
        ),
        (
            ContainerKind::Container,
            std::mem::take(&mut spec.containers.0),
        ),
        (
            ContainerKind::Ephemeral,
            std::mem::take(&mut spec.ephemeral_containers.0),
        ),
    ] {
        for (index, c) in list.into_iter().enumerate() {
            let c = c.0.unwrap_or_default();
            containers.push(ContainerSpec {
                name: c.name.0.unwrap_or_default(),
                image: c.image.0.unwrap_or_default(),
                kind: ck,
                index,
                pull_policy: c.image_pull_policy.0,
                read_only_root_filesystem: c
                    .security_context
                    .0
                    .and_then(|s| s.read_only_root_filesystem.0)
                    .unwrap_or(false),
            });
        }
    }
    let pull_secrets = spec
        .image_pull_secrets
        .0
        .into_iter()
        .filter_map(|r| r.0.and_then(|r| r.name.0))
        .filter(|n| !n.is_empty())
        .collect();
    // `serviceAccountName` when present (even if not a string, like `Value::get().or_else`).
    let service_account = spec
        .service_account_name
        .0
        .or(spec.service_account.0)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let mut ignore = BTreeSet::new();
    typed_ignore(Some(&meta.annotations), &mut ignore);
    typed_ignore(template_meta.as_ref().map(|m| &m.annotations), &mut ignore);
    let owner = meta
        .owner_references
        .0
        .into_iter()
        .filter_map(|r| r.0)
        .find(|r| r.controller.0 == Some(true))
        .and_then(|r| {
            Some(Owner {
                kind: r.kind.0?,
                name: r.name.0?,
            })
        });
    let mut failures = Vec::new();
    if kind == "Pod" {
        let status = status.0.unwrap_or_default();
        for list in [
            status.init_container_statuses.0,
            status.container_statuses.0,
            status.ephemeral_container_statuses.0,
        ] {
            for st in list.into_iter().filter_map(|s| s.0) {
                let Some(waiting) = st.state.0.and_then(|s| s.waiting.0) else {
                    continue;
                };
                let Some(reason) = waiting.reason.0 else {
                    continue;
                };
                if !PULL_FAILURE_REASONS.contains(&reason.as_str()) {
                    continue;
                }
                let cname = st.name.0.unwrap_or_default();
                let image = containers
                    .iter()
                    .find(|c| c.name == cname)
                    .map(|c| c.image.clone())
                    .or(st.image.0)
                    .unwrap_or_default();
                failures.push(PullFailure {
                    pod: name.clone(),
                    container: cname,
                    image,
                    reason,
                    message: waiting.message.0.unwrap_or_default(),
                });
            }
        }
    }
    Some(Workload {
        context: context.to_string(),
        namespace,
        kind: kind.to_string(),
        name,
        containers,
        pull_secrets,
        service_account,
        ignore,
        pod_count: usize::from(kind == "Pod"),
        owner,
        failures,
        source: None,
    })
}

type Key = (String, String, String, String);

/// Folds owned objects into their controllers: Pod → ReplicaSet → Deployment, Pod → Job →
/// CronJob, Pod → StatefulSet/DaemonSet/ReplicationController. Pod counts and pull failures move
/// up; the owned objects disappear. Pods whose owner was not read (filtered out, or the list was
/// denied) are still reported once per owner: the first such pod stands for the owner, named
/// after it.
pub fn fold(workloads: Vec<Workload>) -> Vec<Workload> {
    // Keys borrowed from the workloads: building owned ones cost an allocation per string,
    // twice per workload.
    let index: HashMap<(&str, &str, &str, &str), usize> = workloads
        .iter()
        .enumerate()
        .map(|(i, w)| ((&*w.context, &*w.namespace, &*w.kind, &*w.name), i))
        .collect();
    // The top ancestor present among the workloads, for each workload.
    let top = |i: usize| -> usize {
        let mut cur = i;
        for _ in 0..8 {
            let w = &workloads[cur];
            let Some(o) = &w.owner else { break };
            match index.get(&(&*w.context, &*w.namespace, &*o.kind, &*o.name)) {
                Some(&j) if j != cur => cur = j,
                _ => break,
            }
        }
        cur
    };
    let tops: Vec<usize> = (0..workloads.len()).map(top).collect();
    drop(index);
    let mut slots: Vec<Option<Workload>> = workloads.into_iter().map(Some).collect();
    let mut extra_pods = vec![0usize; slots.len()];
    let mut extra_failures: Vec<Vec<PullFailure>> = vec![Vec::new(); slots.len()];
    let mut orphans: HashMap<Key, usize> = HashMap::new();
    for i in 0..slots.len() {
        let t = tops[i];
        if t != i {
            let w = slots[i].take().expect("each slot taken once");
            extra_pods[t] += w.pod_count;
            extra_failures[t].extend(w.failures);
            continue;
        }
        // Not folded: a Pod (or controller) whose controlling owner was not read.
        let w = slots[i].as_ref().expect("present");
        let orphan = match (&w.owner, w.kind == "Pod") {
            (Some(o), true) => Some((
                (
                    w.context.clone(),
                    w.namespace.clone(),
                    o.kind.clone(),
                    o.name.clone(),
                ),
                o.clone(),
            )),
            _ => None,
        };
        if let Some((k, o)) = orphan {
            match orphans.get(&k) {
                Some(&rep) => {
                    let w = slots[i].take().expect("present");
                    extra_pods[rep] += w.pod_count;
                    extra_failures[rep].extend(w.failures);
                }
                None => {
                    orphans.insert(k, i);
                    let w = slots[i].as_mut().expect("present");
                    w.kind = o.kind.clone();
                    w.name = o.name.clone();
                    w.owner = None;
                }
            }
        }
    }
    slots
        .into_iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let mut w = w?;
            w.pod_count += extra_pods[i];
            w.failures.append(&mut extra_failures[i]);
            Some(w)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep() -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop",
            "annotations": {"image-sec.io/ignore": "missing-tag, implicit-registry"}},
          "spec": {"template": {"metadata": {"annotations": {"image-sec.io/ignore": "writable-root-filesystem"}},
            "spec": {"serviceAccountName": "builder", "imagePullSecrets": [{"name": "regcred"}],
              "initContainers": [{"name": "init", "image": "busybox"}],
              "containers": [{"name": "app", "image": "nginx:1", "imagePullPolicy": "Always",
                "securityContext": {"readOnlyRootFilesystem": true}}]}}}})
    }

    #[test]
    fn extracts_containers_secrets_and_exemptions() {
        let w = extract("Deployment", &dep(), "", "default").unwrap();
        assert_eq!(w.namespace, "shop");
        assert_eq!(w.containers.len(), 2);
        assert_eq!(w.containers[0].kind, ContainerKind::Init);
        assert!(w.containers[1].read_only_root_filesystem);
        assert_eq!(w.pull_secrets, ["regcred"]);
        assert_eq!(w.service_account, "builder");
        assert_eq!(
            w.ignore.iter().collect::<Vec<_>>(),
            [
                "implicit-registry",
                "missing-tag",
                "writable-root-filesystem"
            ]
        );
        assert_eq!(
            w.container_pointer(&w.containers[1]),
            "/spec/template/spec/containers/0"
        );
        let cj = json!({"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "x"}], "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}}}}});
        let w = extract("CronJob", &cj, "", "default").unwrap();
        assert_eq!(w.namespace, "default");
        assert_eq!(w.containers.len(), 2);
        assert_eq!(w.containers[1].kind, ContainerKind::Ephemeral);
    }

    #[test]
    fn service_account_secrets_apply_only_when_the_pod_names_none() {
        let mut w = extract("Deployment", &dep(), "", "default").unwrap();
        let sa = vec!["from-sa".to_string()];
        assert_eq!(
            w.effective_pull_secrets(Some(&sa)),
            [("regcred".to_string(), None)]
        );
        w.pull_secrets.clear();
        assert_eq!(
            w.effective_pull_secrets(Some(&sa)),
            [("from-sa".to_string(), Some("builder".to_string()))]
        );
    }

    fn pod(name: &str, owner: Option<(&str, &str)>, waiting: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
        if let Some((k, n)) = owner {
            p["metadata"]["ownerReferences"] = json!([{"kind": k, "name": n, "controller": true}]);
        }
        if let Some(r) = waiting {
            p["status"] = json!({"containerStatuses": [{"name": "app", "image": "docker.io/library/nginx:latest",
                "state": {"waiting": {"reason": r, "message": "boom"}}}]});
        }
        p
    }

    #[test]
    fn owners_read_borrowed_where_the_json_allows() {
        use std::borrow::Cow;
        use typed::{LObj, MetaOwner};
        let text = r#"{"name":"p","namespace":"n\u0073","labels":{"a":"b"},
            "ownerReferences":[{"kind":"Job","name":"j"},
                               {"kind":"ReplicaSet","name":"rs","controller":true,"uid":"u"}]}"#;
        let m: LObj<MetaOwner> = serde_json::from_str(text).unwrap();
        let m = m.get().unwrap();
        // Plain strings are borrowed from the input, escaped ones are read owned.
        assert!(matches!(m.name.0, Some(Cow::Borrowed("p"))));
        assert!(matches!(&m.namespace.0, Some(Cow::Owned(s)) if s == "ns"));
        // Of the owners, the controller is kept.
        let c = m.controller.0.as_ref().unwrap();
        assert_eq!(
            (c.kind.as_deref(), c.name.as_deref(), c.controller.0),
            (Some("ReplicaSet"), Some("rs"), Some(true))
        );
        // The first controller, past references that are not objects or not controllers.
        let m: LObj<MetaOwner> = serde_json::from_str(
            r#"{"ownerReferences":[3,{"name":"a","controller":"yes"},{"name":"b","controller":true},{"name":"c","controller":true}]}"#,
        )
        .unwrap();
        let c = m.get().unwrap().controller.0.as_ref().unwrap();
        assert_eq!(c.name.as_deref(), Some("b"));
        // Lenient like the owned types: a value of another type reads as absent.
        let odd: LObj<MetaOwner> =
            serde_json::from_str(r#"{"name":5,"namespace":null,"ownerReferences":"x"}"#).unwrap();
        let odd = odd.get().unwrap();
        assert_eq!(
            (odd.name.as_deref(), odd.namespace.as_deref()),
            (None, None)
        );
        assert!(odd.controller.0.is_none());
        // No controller among the owners.
        let m: LObj<MetaOwner> =
            serde_json::from_str(r#"{"ownerReferences":[{"kind":"Job","name":"j"}]}"#).unwrap();
        assert!(m.get().unwrap().controller.0.is_none());
    }

    #[test]
    fn typed_extraction_matches_value_extraction() {
        let odd = json!({"metadata": {"name": "odd", "namespace": 7, "annotations": null,
            "ownerReferences": [3, {"kind": "ReplicaSet", "name": "x", "controller": "yes"},
                {"kind": "ReplicaSet", "name": "y", "controller": true}]},
            "spec": {"containers": [5, {"name": 1, "image": "nginx", "imagePullPolicy": ["x"],
                "securityContext": {"readOnlyRootFilesystem": "true"}}], "initContainers": {},
                "imagePullSecrets": [{"name": ""}, {"name": "a"}, "b"], "serviceAccount": "legacy"},
            "status": {"containerStatuses": [{"name": "", "state": {"waiting": {"reason": "ErrImagePull"}}},
                {"name": "z", "image": "img", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "m"}}},
                {"state": {"running": {}}}]}});
        let cj = json!({"metadata": {"name": "c", "annotations": {"image-sec.io/ignore": "a, b,"}},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"annotations": {"image-sec.io/ignore": "c"}},
                "spec": {"containers": [{"name": "a", "image": "x"}],
                "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}}}}});
        let cases = [
            ("Deployment", dep()),
            ("CronJob", cj),
            ("Pod", odd.clone()),
            ("ReplicaSet", odd),
            (
                "Pod",
                pod("p", Some(("ReplicaSet", "r")), Some("ErrImagePull")),
            ),
            ("Pod", json!({"metadata": {}})),
            ("Job", json!({"metadata": {"name": "j"}, "spec": null})),
        ];
        for (kind, v) in cases {
            let typed: typed::PodBearing = serde_json::from_value(v.clone()).unwrap();
            let a = extract(kind, &v, "ctx", "dflt");
            let b = extract_typed(kind, typed, "ctx", "dflt");
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{kind} {v}");
        }
    }

    #[test]
    fn folds_pods_into_controllers() {
        let rs = json!({"metadata": {"name": "web-1", "namespace": "shop",
            "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}});
        let ws = vec![
            extract("Deployment", &dep(), "", "default").unwrap(),
            extract("ReplicaSet", &rs, "", "default").unwrap(),
            extract(
                "Pod",
                &pod(
                    "web-1-a",
                    Some(("ReplicaSet", "web-1")),
                    Some("ErrImagePull"),
                ),
                "",
                "d",
            )
            .unwrap(),
            extract(
                "Pod",
                &pod("web-1-b", Some(("ReplicaSet", "web-1")), None),
                "",
                "d",
            )
            .unwrap(),
            extract("Pod", &pod("lonely", None, None), "", "d").unwrap(),
            extract("Pod", &pod("j-1", Some(("Job", "gone")), None), "", "d").unwrap(),
            extract(
                "Pod",
                &pod("j-2", Some(("Job", "gone")), Some("ImagePullBackOff")),
                "",
                "d",
            )
            .unwrap(),
        ];
        let folded = fold(ws);
        let names: Vec<_> = folded
            .iter()
            .map(|w| {
                (
                    w.kind.as_str(),
                    w.name.as_str(),
                    w.pod_count,
                    w.failures.len(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Deployment", "web", 2, 1),
                ("Pod", "lonely", 1, 0),
                ("Job", "gone", 2, 1)
            ]
        );
        assert_eq!(folded[0].failures[0].pod, "web-1-a");
        assert_eq!(folded[0].failures[0].image, "nginx");
    }
}
