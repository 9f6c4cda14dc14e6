//! `kubectl image-sec audit`: reads workloads, service accounts and secrets from one or several
//! clusters (concurrently, page by page) or from manifests, runs the rules, diagnoses pull
//! failures and prints the report.
//!
//! Exit codes: 4 when anything could not be read (it wins over 3, so CI never mistakes a partial
//! report for a full one), else 3 when an unsuppressed finding is at or above `--fail-on`, else 0.
//! Suppressed findings (`image-sec.io/ignore`) are listed but never counted for exit 3 or the
//! summary's severity counts. When every read of every context fails, there is no report at all
//! and the first error is returned (exit 1), like kubectl.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use base64::Engine;
use serde_json::Value;

use crate::cli::{AuditArgs, GlobalOpts};
use crate::cluster::resources::{EVENT, POD_BEARING, SECRET, SERVICE_ACCOUNT};
use crate::cluster::{Cluster, ListQuery, ResourceKind};
use crate::commands::audit_deep;
use crate::commands::pod_pages::{PodItem, PodPageDecoder};
use crate::domain::docker_config::{parse_pull_secret, DockerConfig};
use crate::domain::label_selector::LabelSelector;
use crate::domain::policy::Policy;
use crate::domain::rules::{
    evaluate_with, Emitter, Finding, ParsedImages, PullSecretUse, RuleId, SecretState,
    WorkloadInput,
};
use crate::domain::triage::diagnose;
use crate::domain::workload::{self, ContainerSpec, ManifestSource, Workload};
use crate::error::{Error, Outcome, Result};
use crate::manifests;
use crate::output;
use crate::report::{AuditReport, ReportError, WorkloadRef};

/// What is kept of a Secret: its type and parsed docker config, never its data.
#[derive(Debug, Clone)]
struct SecretInfo {
    parsed: std::result::Result<DockerConfig, String>,
}

type NsKey = (String, String, String); // context, namespace, name

/// Everything read from the sources, reduced to what the rules need.
#[derive(Default)]
struct Inventory {
    workloads: Vec<Workload>,
    secrets: HashMap<NsKey, SecretInfo>,
    service_accounts: HashMap<NsKey, Vec<String>>,
    /// Warning-event messages per (context, namespace, pod).
    events: HashMap<NsKey, Vec<String>>,
    /// Namespaces holding a secret of a name, per (context, name), from cluster-wide reads.
    secrets_elsewhere: HashMap<(String, String), BTreeSet<String>>,
    errors: Vec<ReportError>,
    /// Reads attempted and reads that failed (all failing means no report).
    reads: usize,
    failed_reads: usize,
    first_error: Option<Error>,
}

impl Inventory {
    fn merge(&mut self, other: Inventory) {
        self.workloads.extend(other.workloads);
        self.secrets.extend(other.secrets);
        self.service_accounts.extend(other.service_accounts);
        self.events.extend(other.events);
        for (k, v) in other.secrets_elsewhere {
            self.secrets_elsewhere.entry(k).or_default().extend(v);
        }
        self.errors.extend(other.errors);
        self.reads += other.reads;
        self.failed_reads += other.failed_reads;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn add_secret(
        &mut self,
        context: &str,
        namespace: &str,
        obj: &Value,
        data: BTreeMap<String, Vec<u8>>,
    ) {
        let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        let ty = obj.get("type").and_then(Value::as_str);
        self.add_secret_parts(context, namespace, name, ty, data);
    }

    fn add_secret_parts(
        &mut self,
        context: &str,
        namespace: &str,
        name: &str,
        ty: Option<&str>,
        data: BTreeMap<String, Vec<u8>>,
    ) {
        let parsed = parse_pull_secret(ty, &data).map_err(|e| e.to_string());
        self.secrets.insert(
            (context.into(), namespace.into(), name.into()),
            SecretInfo { parsed },
        );
        self.secrets_elsewhere
            .entry((context.into(), name.into()))
            .or_default()
            .insert(namespace.into());
    }

    fn add_service_account(&mut self, context: &str, namespace: &str, obj: &Value) {
        let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        let secrets = obj
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        self.service_accounts
            .insert((context.into(), namespace.into(), name.into()), secrets);
    }
}

/// [`secret_data`] for a typed Secret from a live LIST page.
fn typed_secret_data(s: &workload::typed::Secret) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if let Some(m) = s.data.get() {
        for (k, v) in m {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_deref().unwrap_or("").trim())
                .ok()?;
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(m) = s.string_data.get() {
        for (k, v) in m {
            out.insert(k.clone(), v.as_deref().unwrap_or("").as_bytes().to_vec());
        }
    }
    Some(out)
}

/// Decodes a Secret's `data` (base64) and `stringData`; None when `data` is not base64.
fn secret_data(obj: &Value) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    if let Some(m) = obj.get("data").and_then(Value::as_object) {
        for (k, v) in m {
            let s = v.as_str().unwrap_or("");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()?;
            out.insert(k.clone(), bytes);
        }
    }
    if let Some(m) = obj.get("stringData").and_then(Value::as_object) {
        for (k, v) in m {
            out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
        }
    }
    Some(out)
}

pub async fn run(global: &GlobalOpts, args: AuditArgs) -> Result<Outcome> {
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
            Policy::from_yaml(&text, &path.display().to_string()).map_err(Error::invalid)?
        }
        None => Policy::default(),
    };
    // The clusters read from, kept connected until the report is out (see the end).
    let mut clusters = Vec::new();
    let mut inventory = if !args.filename.is_empty() {
        // As in the cluster, the selector picks workloads; secrets and service accounts in the
        // files are all read (the workloads' pull secrets may be among them).
        let selector = match args.selector.as_deref() {
            Some(text) => Some(LabelSelector::parse(text).map_err(|e| {
                Error::usage(format!(
                    "invalid -l/--selector {text:?}: {e} (e.g. -l app=web,tier!=db)"
                ))
            })?),
            None => None,
        };
        read_manifests(&args.filename, selector.as_ref())?
    } else {
        read_clusters(global, &args, &mut clusters).await?
    };
    let deep = if args.deep {
        // Fold first so each image's credentials come from the workloads as reported
        // (folding again in build_report is a no-op).
        inventory.workloads = workload::fold(std::mem::take(&mut inventory.workloads));
        let keyrings: Vec<_> = inventory
            .workloads
            .iter()
            .map(|w| audit_deep::keyring(&pull_secret_uses(&inventory, w)))
            .collect();
        Some(audit_deep::scan(&inventory.workloads, &keyrings, &args, global.verbosity).await?)
    } else {
        None
    };
    let report = build_report(inventory, &policy, deep.as_ref());
    if args.output == crate::cli::ReportOutput::Json {
        // Straight to stdout: the JSON report is not built in memory first (megabytes on
        // large clusters). Same bytes as `render`.
        write_json_stdout(&report)?;
    } else {
        let text = report.render(args.output, output::use_colour())?;
        output::write_stdout(&text)?;
    }
    let outcome = if !report.complete {
        Outcome::Incomplete
    } else if report.fails(args.fail_on) {
        Outcome::Findings
    } else {
        Outcome::Success
    };
    // The process exits next: freeing the findings of a large cluster one by one only costs
    // time (milliseconds at 10,000 pods). Dropping a client earlier would have its connections
    // closed by the runtime's tasks before the command's task is joined (0.2 ms at 1,000 pods);
    // the kernel closes them at exit for less.
    std::mem::forget(report);
    std::mem::forget(clusters);
    Ok(outcome)
}

/// `output::to_kubectl_json` (4-space pretty JSON and a newline) written through a buffer.
fn write_json_stdout(report: &AuditReport) -> Result<()> {
    use serde::Serialize;
    use std::io::Write;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    let written = report
        .serialize(&mut ser)
        .map_err(std::io::Error::from)
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::other(format!("cannot write to stdout: {e}"))),
    }
}

fn read_manifests(args: &[String], selector: Option<&LabelSelector>) -> Result<Inventory> {
    let sources = manifests::read_sources(args)?;
    let (objects, problems) = manifests::load_objects(&sources);
    let mut inv = Inventory::default();
    for p in problems {
        inv.errors.push(ReportError {
            resource: format!("{}:{}", p.file, p.line),
            namespace: String::new(),
            message: p.message,
            context: String::new(),
        });
    }
    let mut noted: HashSet<String> = HashSet::new();
    for obj in objects {
        let v = &obj.value;
        let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        let namespace = v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        let known = ResourceKind::from_api_version_kind(api_version, kind);
        match known.map(|k| k.kind) {
            Some(k) if workload::is_pod_bearing(k) => {
                let labels = v.pointer("/metadata/labels");
                let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
                if selector.is_some_and(|s| !s.matches(label)) {
                    continue;
                }
                if let Some(mut w) = workload::extract(k, v, "", "default") {
                    w.source = Some(ManifestSource {
                        file: obj.file.clone(),
                        line: obj.line,
                        document_text: obj.document_text.clone(),
                        document_line: obj.document_line,
                    });
                    inv.workloads.push(w);
                }
            }
            Some("Secret") => match secret_data(v) {
                Some(data) => inv.add_secret("", &namespace, v, data),
                None => {
                    if let Some(name) = v.pointer("/metadata/name").and_then(Value::as_str) {
                        inv.secrets.insert(
                            (String::new(), namespace.clone(), name.into()),
                            SecretInfo {
                                parsed: Err("its data is not valid base64".into()),
                            },
                        );
                    }
                }
            },
            Some("ServiceAccount") => inv.add_service_account("", &namespace, v),
            // The audit policy itself (examples keep it next to the manifests).
            _ if api_version == "image-sec.io/v1" && kind == "AuditPolicy" => {}
            _ => {
                let label = format!("{api_version}/{kind}");
                if noted.insert(label) {
                    let what = if kind.is_empty() {
                        "objects without a kind".to_string()
                    } else {
                        format!("{kind} ({api_version}) objects")
                    };
                    eprintln!("note: skipping {what}: no pod spec to audit");
                }
            }
        }
    }
    Ok(inv)
}

/// Reads every context's inventory, handing each connected cluster to `clusters`.
async fn read_clusters(
    global: &GlobalOpts,
    args: &AuditArgs,
    clusters: &mut Vec<Cluster>,
) -> Result<Inventory> {
    let contexts: Vec<Option<String>> = if global.context.is_empty() {
        vec![None]
    } else {
        let mut seen = HashSet::new();
        global
            .context
            .iter()
            .filter(|c| seen.insert(c.to_string()))
            .map(|c| Some(c.clone()))
            .collect()
    };
    let progress = output::Progress::counting("reading the cluster", "objects");
    let results = futures::future::join_all(
        contexts
            .iter()
            .map(|c| read_context(global, args, c.as_deref(), &progress)),
    )
    .await;
    progress.finish();
    let mut inv = Inventory::default();
    for (ctx, r) in contexts.iter().zip(results) {
        match r {
            Ok((i, cluster)) => {
                inv.merge(i);
                clusters.push(cluster);
            }
            Err(e) if contexts.len() == 1 => return Err(e),
            Err(e) => {
                inv.reads += 1;
                inv.failed_reads += 1;
                inv.errors.push(ReportError {
                    resource: "context".into(),
                    namespace: String::new(),
                    message: e.to_string(),
                    context: ctx.clone().unwrap_or_default(),
                });
                inv.first_error.get_or_insert(e);
            }
        }
    }
    if inv.reads > 0 && inv.failed_reads == inv.reads {
        if let Some(e) = inv.first_error.take() {
            return Err(e);
        }
    }
    Ok(inv)
}

fn resource_name(kind: &ResourceKind) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

async fn read_context(
    global: &GlobalOpts,
    args: &AuditArgs,
    context: Option<&str>,
    progress: &output::Progress,
) -> Result<(Inventory, Cluster)> {
    let cluster = Cluster::connect(global, context).await?;
    let ctx = cluster.context.clone();
    let namespace: Option<String> = (!args.all_namespaces).then(|| cluster.namespace.clone());
    let ns = namespace.as_deref();
    let mut kinds: Vec<ResourceKind> = POD_BEARING.to_vec();
    kinds.push(SERVICE_ACCOUNT);
    kinds.push(SECRET);
    let reads = kinds.iter().map(|kind| {
        let cluster = &cluster;
        let ctx = ctx.clone();
        async move {
            let mut inv = Inventory {
                reads: 1,
                ..Default::default()
            };
            let workload_kind = workload::is_pod_bearing(kind.kind);
            let selector = if workload_kind {
                args.selector.as_deref()
            } else {
                None
            };
            let query = ListQuery {
                label_selector: selector,
                ..Default::default()
            };
            let default_ns = ns.unwrap_or("default").to_string();
            // Each page is decoded into small typed structs (only the fields the audit reads).
            let result = if workload_kind {
                // Pods owned by the same controller share their spec: the first one keeps its
                // containers and stands for the others, which only add to its pod count (or,
                // when failing to pull, are kept without containers for their failures). So
                // memory follows the number of controllers, not of pods; `workload::fold`
                // gives the same result as with every pod listed.
                let mut owners_seen: HashMap<(String, String, String), usize> = HashMap::new();
                let is_pod = kind.kind == "Pod";
                cluster
                    .list_all_decoded(
                        kind,
                        ns,
                        &query,
                        || PodPageDecoder::new(is_pod),
                        |page: Vec<PodItem>| {
                            progress.add(page.len());
                            // Per item of the page: the workload its owner's pods fold into.
                            let mut owner_slots: Vec<Option<usize>> =
                                Vec::with_capacity(page.len());
                            for PodItem { pod, repeat_of } in page {
                                if let Some(&Some(first)) =
                                    repeat_of.and_then(|i| owner_slots.get(i))
                                {
                                    // What extract_typed and the match below would do with
                                    // it: one more pod, no failures, for the same owner.
                                    inv.workloads[first].pod_count += 1;
                                    owner_slots.push(Some(first));
                                    continue;
                                }
                                let Some(mut w) = pod.and_then(|pod| {
                                    workload::extract_typed(kind.kind, *pod, &ctx, &default_ns)
                                }) else {
                                    owner_slots.push(None);
                                    continue;
                                };
                                let mut slot = None;
                                if kind.kind == "Pod" {
                                    if let Some(o) = &w.owner {
                                        let key =
                                            (w.namespace.clone(), o.kind.clone(), o.name.clone());
                                        match owners_seen.get(&key) {
                                            Some(&first) if w.failures.is_empty() => {
                                                inv.workloads[first].pod_count += w.pod_count;
                                                owner_slots.push(Some(first));
                                                continue;
                                            }
                                            Some(&first) => {
                                                slot = Some(first);
                                                w.containers.clear();
                                                w.pull_secrets.clear();
                                            }
                                            None => {
                                                slot = Some(inv.workloads.len());
                                                owners_seen.insert(key, inv.workloads.len());
                                            }
                                        }
                                    }
                                }
                                owner_slots.push(slot);
                                inv.workloads.push(w);
                            }
                        },
                    )
                    .await
            } else if kind.kind == "Secret" {
                cluster
                    .list_all_typed(kind, ns, &query, |page: Vec<workload::typed::Secret>| {
                        progress.add(page.len());
                        for obj in page {
                            let meta = obj.metadata.get();
                            let Some(name) = meta.and_then(|m| m.name.as_deref()) else {
                                continue;
                            };
                            let item_ns = meta
                                .and_then(|m| m.namespace.as_deref())
                                .unwrap_or(&default_ns);
                            let data = typed_secret_data(&obj).unwrap_or_default();
                            inv.add_secret_parts(&ctx, item_ns, name, obj.type_.as_deref(), data);
                        }
                    })
                    .await
            } else {
                cluster
                    .list_all_typed(
                        kind,
                        ns,
                        &query,
                        |page: Vec<workload::typed::ServiceAccount>| {
                            progress.add(page.len());
                            for obj in page {
                                let meta = obj.metadata.get();
                                let Some(name) = meta.and_then(|m| m.name.as_deref()) else {
                                    continue;
                                };
                                let item_ns = meta
                                    .and_then(|m| m.namespace.as_deref())
                                    .unwrap_or(&default_ns);
                                let secrets = obj
                                    .image_pull_secrets
                                    .0
                                    .iter()
                                    .filter_map(|r| r.get().and_then(|r| r.name.0.clone()))
                                    .collect();
                                inv.service_accounts.insert(
                                    (ctx.clone(), item_ns.to_string(), name.to_string()),
                                    secrets,
                                );
                            }
                        },
                    )
                    .await
            };
            if let Err(e) = result {
                inv.failed_reads = 1;
                inv.errors.push(ReportError {
                    resource: resource_name(kind),
                    namespace: ns.unwrap_or("").to_string(),
                    message: e.to_string(),
                    context: ctx.clone(),
                });
                inv.first_error = Some(e);
            }
            inv
        }
    });
    let mut inv = Inventory::default();
    for part in futures::future::join_all(reads).await {
        inv.merge(part);
    }
    read_events(&cluster, &ctx, ns, &mut inv).await;
    if ns.is_some() {
        find_secrets_elsewhere(&cluster, &ctx, &mut inv).await;
    }
    Ok((inv, cluster))
}

/// One LIST of pod warning events per namespace with failing pods (one cluster-wide with -A),
/// keeping only the messages of failing pods.
async fn read_events(cluster: &Cluster, ctx: &str, ns: Option<&str>, inv: &mut Inventory) {
    let failing: HashSet<(String, String)> = inv
        .workloads
        .iter()
        .flat_map(|w| {
            w.failures
                .iter()
                .map(move |f| (w.namespace.clone(), f.pod.clone()))
        })
        .collect();
    if failing.is_empty() {
        return;
    }
    let scopes: Vec<Option<String>> = match ns {
        None => vec![None],
        Some(_) => failing
            .iter()
            .map(|(n, _)| Some(n.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let query = ListQuery {
        field_selector: Some("involvedObject.kind=Pod,type=Warning"),
        ..Default::default()
    };
    for scope in scopes {
        let mut found: Vec<(NsKey, String)> = Vec::new();
        let result = cluster
            .list_all(&EVENT, scope.as_deref(), &query, |page| {
                for e in page {
                    let pod_ns = e
                        .pointer("/involvedObject/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let pod = e
                        .pointer("/involvedObject/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !failing.contains(&(pod_ns.to_string(), pod.to_string())) {
                        continue;
                    }
                    if let Some(m) = e.get("message").and_then(Value::as_str) {
                        found.push(((ctx.into(), pod_ns.into(), pod.into()), m.to_string()));
                    }
                }
            })
            .await;
        for (k, m) in found {
            inv.events.entry(k).or_default().push(m);
        }
        if let Err(e) = result {
            inv.errors.push(ReportError {
                resource: "events".into(),
                namespace: scope.unwrap_or_default(),
                message: e.to_string(),
                context: ctx.into(),
            });
        }
    }
}

/// For namespaced audits: pull secrets that do not exist are looked for in other namespaces
/// (one cluster-wide LIST by name each, at most 20). Optional: a denied read is not an error.
async fn find_secrets_elsewhere(cluster: &Cluster, ctx: &str, inv: &mut Inventory) {
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for w in &inv.workloads {
        let sa = inv.service_accounts.get(&(
            w.context.clone(),
            w.namespace.clone(),
            w.service_account.clone(),
        ));
        for (name, _) in w.effective_pull_secrets(sa.map(Vec::as_slice)) {
            if !inv
                .secrets
                .contains_key(&(w.context.clone(), w.namespace.clone(), name.clone()))
            {
                missing.insert(name);
            }
        }
    }
    for name in missing.into_iter().take(20) {
        let selector = format!("metadata.name={name}");
        let query = ListQuery {
            field_selector: Some(&selector),
            ..Default::default()
        };
        let mut namespaces = Vec::new();
        let r = cluster
            .list_all(&SECRET, None, &query, |page| {
                namespaces.extend(page.iter().filter_map(|s| {
                    s.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                }))
            })
            .await;
        if r.is_err() {
            return;
        }
        inv.secrets_elsewhere
            .entry((ctx.into(), name))
            .or_default()
            .extend(namespaces);
    }
}

/// The pull secrets a workload's pods use (its own, else its service account's) and what
/// became of each.
fn pull_secret_uses<'a>(inv: &'a Inventory, w: &Workload) -> Vec<PullSecretUse<'a>> {
    let sa = inv.service_accounts.get(&(
        w.context.clone(),
        w.namespace.clone(),
        w.service_account.clone(),
    ));
    w.effective_pull_secrets(sa.map(Vec::as_slice))
        .into_iter()
        .map(|(name, via)| {
            let state =
                match inv
                    .secrets
                    .get(&(w.context.clone(), w.namespace.clone(), name.clone()))
                {
                    None => SecretState::NotFound {
                        elsewhere: inv
                            .secrets_elsewhere
                            .get(&(w.context.clone(), name.clone()))
                            .map(|s| s.iter().filter(|n| **n != w.namespace).cloned().collect())
                            .unwrap_or_default(),
                    },
                    Some(SecretInfo { parsed: Err(e) }) => SecretState::Invalid(e.clone()),
                    Some(SecretInfo { parsed: Ok(cfg) }) => SecretState::Usable(cfg),
                };
            PullSecretUse {
                name,
                via_service_account: via,
                state,
            }
        })
        .collect()
}

fn build_report(
    inv: Inventory,
    policy: &Policy,
    deep: Option<&audit_deep::DeepScan>,
) -> AuditReport {
    // Workloads are judged independently: on large clusters, in contiguous chunks on every
    // core, merged back in order (the report is the same as from one thread).
    let threads = if inv.workloads.len() >= PARALLEL_REPORT_MIN {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    } else {
        1
    };
    build_report_on(inv, policy, deep, threads)
}

fn build_report_on(
    mut inv: Inventory,
    policy: &Policy,
    deep: Option<&audit_deep::DeepScan>,
    threads: usize,
) -> AuditReport {
    let workloads = workload::fold(std::mem::take(&mut inv.workloads));
    let chunk_len = workloads.len().div_ceil(threads).max(1);
    let inv_ref = &inv;
    let parts: Vec<Judged> = if threads > 1 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = workloads
                .chunks(chunk_len)
                .map(|chunk| scope.spawn(move || judge_workloads(chunk, inv_ref, policy, deep)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    } else {
        vec![judge_workloads(&workloads, inv_ref, policy, deep)]
    };
    let mut findings: Vec<Finding> = Vec::new();
    let mut images: BTreeMap<String, Vec<WorkloadRef>> = BTreeMap::new();
    for (part_images, part_findings) in parts {
        for (image, refs) in part_images {
            images.entry(image).or_default().extend(refs);
        }
        findings.extend(part_findings);
    }
    let mut errors = inv.errors;
    if let Some(d) = deep {
        errors.extend(d.errors());
    }
    AuditReport::new(workloads.len(), images, findings, errors)
}

/// Workloads on clusters at least this large are judged on several threads.
const PARALLEL_REPORT_MIN: usize = 512;

/// The images (with the workloads using each) and the findings of some workloads.
type Judged = (BTreeMap<String, Vec<WorkloadRef>>, Vec<Finding>);

/// The images and findings of `workloads`, in their order.
fn judge_workloads(
    workloads: &[Workload],
    inv: &Inventory,
    policy: &Policy,
    deep: Option<&audit_deep::DeepScan>,
) -> Judged {
    let mut findings: Vec<Finding> = Vec::new();
    let mut images: BTreeMap<String, Vec<WorkloadRef>> = BTreeMap::new();
    let mut parsed_images = ParsedImages::default();
    for w in workloads {
        for c in &w.containers {
            images
                .entry(c.image.clone())
                .or_default()
                .push(WorkloadRef {
                    context: w.context.clone(),
                    namespace: w.namespace.clone(),
                    kind: w.kind.clone(),
                    name: w.name.clone(),
                    container: c.name.clone(),
                    pods: w.pod_count,
                });
        }
        let elsewhere = |name: &str| -> Vec<String> {
            inv.secrets_elsewhere
                .get(&(w.context.clone(), name.to_string()))
                .map(|s| s.iter().filter(|n| **n != w.namespace).cloned().collect())
                .unwrap_or_default()
        };
        let secrets = pull_secret_uses(inv, w);
        let static_findings = evaluate_with(
            &WorkloadInput {
                workload: w,
                secrets: &secrets,
                policy,
            },
            &mut parsed_images,
        );
        // One image-pull-failing finding per failing container, naming the first failing pod.
        let mut em = Emitter::new(w, policy);
        let mut done: HashSet<&str> = HashSet::new();
        for f in &w.failures {
            if !done.insert(f.container.as_str()) {
                continue;
            }
            let pods = w
                .failures
                .iter()
                .filter(|x| x.container == f.container)
                .count();
            let events = inv
                .events
                .get(&(w.context.clone(), w.namespace.clone(), f.pod.clone()))
                .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            let d = diagnose(w, f, &events, &static_findings, &elsewhere);
            let mut message = d.message;
            if pods > 1 {
                message.push_str(&format!(" ({pods} pods failing)"));
            }
            let fallback = ContainerSpec {
                name: f.container.clone(),
                image: f.image.clone(),
                kind: workload::ContainerKind::Container,
                index: 0,
                pull_policy: None,
                read_only_root_filesystem: true,
            };
            let c = w
                .containers
                .iter()
                .find(|c| c.name == f.container)
                .unwrap_or(&fallback);
            em.emit(
                RuleId::ImagePullFailing,
                Some(c),
                message,
                d.remediation,
                Some(d.cause),
            );
        }
        findings.extend(static_findings);
        findings.extend(em.out);
        if let Some(d) = deep {
            findings.extend(d.findings(w, policy));
        }
    }
    (images, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_report_is_the_same_from_one_thread_or_several() {
        let inventory = || {
            let mut inv = Inventory::default();
            for i in 0..700 {
                let image = match i % 4 {
                    0 => "nginx".to_string(),
                    1 => format!("registry.example.com/team/app-{}:1.{i}", i % 7),
                    2 => "Bad Image".to_string(),
                    _ => format!("docker.io/someone/tool:v{}", i % 3),
                };
                let mut pod = json!({
                    "metadata": {"name": format!("w{i}"), "namespace": format!("ns{}", i % 5)},
                    "spec": {"containers": [{"name": "c", "image": image}],
                             "imagePullSecrets": [{"name": format!("s{}", i % 3)}]}
                });
                if i % 9 == 0 {
                    pod["status"] = json!({"containerStatuses": [{"name": "c", "image": image,
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "denied"}}}]});
                }
                inv.workloads
                    .push(workload::extract("Pod", &pod, "ctx", "default").unwrap());
            }
            inv
        };
        let policy = Policy::default();
        let one = build_report_on(inventory(), &policy, None, 1);
        for threads in [2, 3, 8] {
            let many = build_report_on(inventory(), &policy, None, threads);
            let (a, b) = (
                serde_json::to_string(&one).unwrap(),
                serde_json::to_string(&many).unwrap(),
            );
            assert!(
                a.len() > 100_000,
                "a report with findings: {} bytes",
                a.len()
            );
            assert!(a == b, "{threads} threads give another report");
        }
    }
}
