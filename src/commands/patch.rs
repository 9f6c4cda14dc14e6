//! `kubectl image-sec patch`: add or remove imagePullSecrets without losing anything.
//!
//! Options are validated before any API call, then each object is patched on its own:
//! read, plan (pure, `domain::patch_plan`), and write a JSON patch that `test`s the
//! resourceVersion and the current list, so a concurrent writer makes our write fail rather than
//! be overwritten; on such a conflict, re-read and re-plan (bounded). Pods and Jobs, whose pod
//! spec the API will not change, are explained with the command that patches their owner.
//! `-f` patches manifests offline by editing their text (`manifest_edit`).
use std::time::Duration;

use serde_json::Value;

use crate::cli::{DryRun, GlobalOpts, ObjectOutput, PatchArgs};
use crate::cluster::resources::{self, ResourceKind, PATCHABLE, POD, SECRET};
use crate::cluster::{Cluster, ListQuery, WriteOptions};
use crate::domain::patch_plan::{self, Plan};
use crate::domain::pull_secret;
use crate::error::{Error, Outcome, Result};
use crate::output;

/// Attempts per object when the object keeps changing under us.
pub const CONFLICT_ATTEMPTS: u32 = 5;
const FIELD_MANAGER: &str = "kubectl-image-sec";
const JSON_PATCH: &str = "application/json-patch+json";
const PULL_SECRET_TYPES: [&str; 2] = ["kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"];

/// What to patch on the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Explicit objects.
    Named(Vec<(ResourceKind, String)>),
    /// Every object of a kind matching a label selector (`None`: `--all`).
    Kind(ResourceKind, Option<String>),
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct PatchOptions {
    pub selection: Option<Selection>,
    pub files: Vec<String>,
    pub secrets: Vec<String>,
    pub remove: bool,
    pub dry_run: DryRun,
    pub output: Option<ObjectOutput>,
}

fn patchable(kind: ResourceKind, arg: &str) -> Result<ResourceKind> {
    if PATCHABLE.contains(&kind) {
        Ok(kind)
    } else {
        Err(Error::invalid(format!(
            "{arg:?}: patch works on serviceaccount, deployment, statefulset, daemonset, replicaset, replicationcontroller, cronjob, job and pod"
        )))
    }
}

impl PatchOptions {
    pub fn complete(args: &PatchArgs) -> Result<Self> {
        let mut secrets: Vec<String> = Vec::new();
        for s in &args.secret {
            for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                pull_secret::validate_secret_name(name).map_err(Error::invalid)?;
                if !secrets.iter().any(|x| x == name) {
                    secrets.push(name.to_string());
                }
            }
        }
        if secrets.is_empty() {
            return Err(Error::usage("--secret=NAME is required"));
        }
        if !args.filename.is_empty() {
            if !args.targets.is_empty() || args.selector.is_some() || args.all {
                return Err(Error::usage(
                    "-f patches manifests offline and cannot be combined with KIND/NAME, -l or --all",
                ));
            }
            if args.output.is_some() {
                return Err(Error::usage(
                    "-o cannot be used with -f: patched manifests are printed in their own format",
                ));
            }
            return Ok(PatchOptions {
                selection: None,
                files: args.filename.clone(),
                secrets,
                remove: args.remove,
                dry_run: args.dry_run,
                output: None,
            });
        }
        if args.targets.is_empty() {
            return Err(Error::usage(
                "you must specify what to patch: KIND/NAME..., KIND -l SELECTOR, KIND --all, or -f FILE",
            ));
        }
        let selection = if args.selector.is_some() || args.all {
            if args.selector.is_some() && args.all {
                return Err(Error::usage("-l and --all cannot be used together"));
            }
            let [kind] = args.targets.as_slice() else {
                return Err(Error::usage(
                    "with -l or --all, give only the KIND (for example: patch deployment -l app=web)",
                ));
            };
            if kind.contains('/') {
                return Err(Error::usage(format!(
                    "with -l or --all, give only the KIND, not {kind:?}"
                )));
            }
            let k = ResourceKind::from_name(kind)
                .ok_or_else(|| Error::invalid(format!("unknown resource type {kind:?}")))?;
            Selection::Kind(patchable(k, kind)?, args.selector.clone())
        } else if !args.targets[0].contains('/') {
            // kubectl's `KIND NAME...` form.
            let kind = &args.targets[0];
            let k = ResourceKind::from_name(kind)
                .ok_or_else(|| Error::invalid(format!("unknown resource type {kind:?}")))?;
            let k = patchable(k, kind)?;
            if args.targets.len() < 2 {
                return Err(Error::usage(format!(
                    "give a name (patch {kind}/NAME), -l SELECTOR or --all"
                )));
            }
            let mut named = Vec::new();
            for n in &args.targets[1..] {
                if n.contains('/') {
                    return Err(Error::usage(format!(
                        "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form: {n:?}"
                    )));
                }
                named.push((k, n.clone()));
            }
            Selection::Named(named)
        } else {
            let mut named = Vec::new();
            for t in &args.targets {
                let (k, n) = resources::parse_kind_name(t).map_err(Error::invalid)?;
                named.push((patchable(k, t)?, n));
            }
            Selection::Named(named)
        };
        Ok(PatchOptions {
            selection: Some(selection),
            files: Vec::new(),
            secrets,
            remove: args.remove,
            dry_run: args.dry_run,
            output: args.output,
        })
    }
}

pub async fn run(global: &GlobalOpts, args: PatchArgs) -> Result<Outcome> {
    let opts = PatchOptions::complete(&args)?;
    let Some(selection) = opts.selection.clone() else {
        return run_offline(&opts);
    };
    if global.context.len() > 1 {
        return Err(Error::invalid("patch takes one --context"));
    }
    let cluster = Cluster::connect(global, None).await?;
    let namespace = cluster.namespace.clone();
    let targets = match selection {
        Selection::Named(n) => n,
        Selection::Kind(kind, selector) => {
            let names = select(&cluster, &namespace, &kind, selector.as_deref()).await?;
            if names.is_empty() {
                eprintln!("No resources found in {namespace} namespace.");
                return Ok(Outcome::Success);
            }
            names.into_iter().map(|n| (kind, n)).collect()
        }
    };
    if !opts.remove {
        check_secrets(&cluster, &namespace, &opts.secrets).await;
    }
    let total = targets.len();
    let mut failures: Vec<Error> = Vec::new();
    let mut objects = Vec::new();
    for (kind, name) in &targets {
        match patch_object(
            &cluster,
            &namespace,
            kind,
            name,
            &opts.secrets,
            opts.remove,
            opts.dry_run,
        )
        .await
        {
            Ok(done) => {
                if opts.output.is_none() {
                    output::write_stdout(&format!("{}\n", summary_line(&done, opts.dry_run)))?;
                }
                if *kind == resources::SERVICE_ACCOUNT && done.changed && !opts.remove {
                    warn_service_account_pods(&cluster, &namespace, name, &added_names(&done))
                        .await;
                }
                objects.push(done.object);
            }
            Err(e) => failures.push(e),
        }
    }
    if let Some(format) = opts.output {
        if !objects.is_empty() {
            output::print_objects(&objects, format)?;
        }
    }
    match failures.len() {
        0 => Ok(Outcome::Success),
        1 if total == 1 => Err(failures.pop().unwrap()),
        n => {
            for e in &failures {
                eprintln!("error: {e}");
            }
            Err(Error::other(format!(
                "{n} of {total} objects were not patched (see above)"
            )))
        }
    }
}

async fn select(
    cluster: &Cluster,
    namespace: &str,
    kind: &ResourceKind,
    selector: Option<&str>,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let query = ListQuery {
        label_selector: selector,
        ..ListQuery::default()
    };
    cluster
        .list_all(kind, Some(namespace), &query, |items| {
            names.extend(items.iter().filter_map(|o| {
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(String::from)
            }))
        })
        .await?;
    Ok(names)
}

/// The result of patching one object.
#[derive(Debug, Clone)]
pub struct Patched {
    /// `deployment.apps/web`.
    pub name: String,
    pub before: Vec<Value>,
    pub after: Vec<Value>,
    pub changed: bool,
    /// The object as it ends up (as the server returned it, or computed for `--dry-run=client`).
    pub object: Value,
}

/// `deployment.apps/web patched: imagePullSecrets [a] -> [a, b]` or
/// `serviceaccount/default unchanged: imagePullSecrets [a, b]`.
pub fn summary_line(p: &Patched, dry_run: DryRun) -> String {
    let suffix = match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    };
    if p.changed {
        format!(
            "{} patched{suffix}: imagePullSecrets {} -> {}",
            p.name,
            patch_plan::display(&p.before),
            patch_plan::display(&p.after)
        )
    } else {
        format!(
            "{} unchanged{suffix}: imagePullSecrets {}",
            p.name,
            patch_plan::display(&p.before)
        )
    }
}

/// For `create-secret --attach-to`: patches each `KIND/NAME` target (stopping at the first
/// error) and returns what was done; the caller prints [`summary_line`]s.
pub async fn attach_secrets(
    cluster: &Cluster,
    namespace: &str,
    targets: &[String],
    secrets: &[String],
    remove: bool,
    dry_run: DryRun,
) -> Result<Vec<Patched>> {
    let mut parsed = Vec::new();
    for t in targets {
        let (k, n) = resources::parse_kind_name(t).map_err(Error::invalid)?;
        parsed.push((patchable(k, t)?, n));
    }
    let mut done = Vec::new();
    for (kind, name) in &parsed {
        let p = patch_object(cluster, namespace, kind, name, secrets, remove, dry_run).await?;
        if *kind == resources::SERVICE_ACCOUNT && p.changed && !remove {
            warn_service_account_pods(cluster, namespace, name, &added_names(&p)).await;
        }
        done.push(p);
    }
    Ok(done)
}

fn not_found(kind: &ResourceKind, name: &str, namespace: &str) -> Error {
    Error::other(format!(
        "{}/{name} not found in namespace {namespace:?}; check the name and -n",
        kind.qualified_name()
    ))
}

/// Patches one object: read, plan, conditional JSON patch, retry on conflict.
pub async fn patch_object(
    cluster: &Cluster,
    namespace: &str,
    kind: &ResourceKind,
    name: &str,
    secrets: &[String],
    remove: bool,
    dry_run: DryRun,
) -> Result<Patched> {
    let display_name = format!("{}/{name}", kind.qualified_name());
    let write = WriteOptions {
        dry_run: dry_run == DryRun::Server,
        field_manager: Some(FIELD_MANAGER),
    };
    for attempt in 1..=CONFLICT_ATTEMPTS {
        let obj = cluster
            .get(kind, namespace, name)
            .await?
            .ok_or_else(|| not_found(kind, name, namespace))?;
        let plan = patch_plan::plan(&obj, kind.kind, secrets, remove)
            .map_err(|e| Error::other(format!("{display_name}: {e}")))?;
        if !plan.changed() {
            return Ok(done(display_name, plan, false, obj));
        }
        if *kind == POD {
            return Err(pod_refusal(cluster, namespace, &obj, name, secrets, remove).await);
        }
        if *kind == resources::JOB {
            return Err(job_refusal(&obj, name, namespace, secrets, remove));
        }
        if dry_run == DryRun::Client {
            let object = plan.apply(&obj);
            return Ok(done(display_name, plan, true, object));
        }
        let ops = Value::Array(plan.json_patch(&obj));
        match cluster
            .patch(kind, namespace, name, JSON_PATCH, &ops, &write)
            .await
        {
            Ok(updated) => {
                let after = patch_plan::current_entries(&updated, kind.kind);
                let before = plan.before.clone();
                return Ok(Patched {
                    name: display_name,
                    changed: before != after,
                    before,
                    after,
                    object: updated,
                });
            }
            Err(e) if e.api_code() == Some(409) => {}
            Err(e) if e.api_code() == Some(422) => {
                // A failed `test` op answers 422: it is a conflict only if the object changed.
                let now = cluster.get(kind, namespace, name).await?;
                let rv = |o: &Value| {
                    o.pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                if now.as_ref().and_then(rv) == rv(&obj) {
                    return Err(e.with_hint(format!("{display_name} was not changed")));
                }
            }
            Err(e) => return Err(e.with_hint(format!("{display_name} was not changed"))),
        }
        if attempt < CONFLICT_ATTEMPTS {
            let ms = 100u64 << (attempt - 1).min(4);
            tokio::time::sleep(Duration::from_millis(rand::random_range(ms / 2..=ms))).await;
        }
    }
    Err(Error::other(format!(
        "{display_name} kept changing while we patched it ({CONFLICT_ATTEMPTS} attempts, each write was refused because another client changed it first); nothing was written, run the command again"
    )))
}

/// Names that `p` added (for the ServiceAccount pod count).
fn added_names(p: &Patched) -> Vec<String> {
    p.after
        .iter()
        .filter(|e| !p.before.contains(e))
        .filter_map(|e| patch_plan::entry_name(e).map(String::from))
        .collect()
}

fn done(name: String, plan: Plan, changed: bool, object: Value) -> Patched {
    Patched {
        name,
        before: plan.before,
        after: plan.after,
        changed,
        object,
    }
}

fn secrets_flags(secrets: &[String]) -> String {
    secrets
        .iter()
        .map(|s| format!("--secret={s}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The kubectl short spelling of a kind: `deployment`, `cronjob`.
fn cli_kind(kind: &str) -> String {
    ResourceKind::from_kind(kind)
        .and_then(|k| k.aliases.first().map(|a| a.to_string()))
        .unwrap_or_else(|| kind.to_ascii_lowercase())
}

/// Why a live Pod cannot be patched, and the owner to patch instead.
async fn pod_refusal(
    cluster: &Cluster,
    namespace: &str,
    pod: &Value,
    name: &str,
    secrets: &[String],
    remove: bool,
) -> Error {
    let head = format!(
        "pod/{name}: a Pod's imagePullSecrets cannot be changed after it is created (the API allows only image, tolerations and a few other fields to change)"
    );
    let Some((mut kind, mut owner)) = patch_plan::controller_of(pod) else {
        let remove_flag = if remove { " --remove" } else { "" };
        return Error::other(format!(
            "{head}; it has no controller, so add the secret to its manifest and recreate it: kubectl image-sec patch -f pod.yaml {}{remove_flag} > patched.yaml && kubectl replace --force -f patched.yaml",
            secrets_flags(secrets)
        ));
    };
    // ReplicaSet → Deployment, Job → CronJob, when the intermediate owner is itself owned.
    if let Some(parent) = patch_plan::owner_parent_kind(&kind) {
        if let Some(rk) = ResourceKind::from_kind(&kind) {
            if let Ok(Some(obj)) = cluster.get(&rk, namespace, &owner).await {
                if let Some((pk, pn)) = patch_plan::controller_of(&obj) {
                    if pk == parent {
                        kind = pk;
                        owner = pn;
                    }
                }
            }
        }
    }
    let ck = cli_kind(&kind);
    let cmd = patch_plan::owner_command(&ck, &owner, namespace, secrets, remove);
    let what = if kind == "CronJob" {
        "its next Jobs get"
    } else {
        "its new pods get"
    };
    let what = if remove {
        what.replace("get", "lose")
    } else {
        what.to_string()
    };
    Error::other(format!(
        "{head}; it is managed by {ck}/{owner}: patch that instead ({what} the change): {cmd}"
    ))
}

/// Why a Job cannot be patched, and what to do instead.
fn job_refusal(
    job: &Value,
    name: &str,
    namespace: &str,
    secrets: &[String],
    remove: bool,
) -> Error {
    let head =
        format!("job.batch/{name}: a Job's pod template cannot be changed after it is created");
    match patch_plan::controller_of(job) {
        Some((k, owner)) if k == "CronJob" => Error::other(format!(
            "{head}; it was created by cronjob/{owner}: patch that so its next Jobs get the change: {}",
            patch_plan::owner_command("cronjob", &owner, namespace, secrets, remove)
        )),
        _ => {
            let remove_flag = if remove { " --remove" } else { "" };
            Error::other(format!(
                "{head}; recreate it with the change instead: kubectl image-sec patch -f job.yaml {}{remove_flag} > patched.yaml, then kubectl delete job {name} -n {namespace} and kubectl create -f patched.yaml",
                secrets_flags(secrets)
            ))
        }
    }
}

/// Warns (never fails) about secrets that do not exist or are not pull secrets.
async fn check_secrets(cluster: &Cluster, namespace: &str, secrets: &[String]) {
    for s in secrets {
        match cluster.get(&SECRET, namespace, s).await {
            Ok(None) => output::warn(&format!(
                "secret {s:?} does not exist in namespace {namespace:?}: pods will fail to pull until it is created (kubectl image-sec create-secret {s} ...)"
            )),
            Ok(Some(secret)) => {
                let t = secret.get("type").and_then(Value::as_str).unwrap_or("Opaque");
                if !PULL_SECRET_TYPES.contains(&t) {
                    output::warn(&format!(
                        "secret {s:?} has type {t:?}, not kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg: the kubelet ignores it for pulls"
                    ));
                }
            }
            Err(e) if e.api_code() == Some(403) => output::warn(&format!(
                "could not check that secret {s:?} exists in namespace {namespace:?} (not allowed to read secrets); patching anyway"
            )),
            Err(_) => output::warn(&format!(
                "could not check that secret {s:?} exists in namespace {namespace:?}; patching anyway"
            )),
        }
    }
}

/// A ServiceAccount's pull secrets reach only pods created afterwards: say so, and count the
/// running pods that use it and lack the secrets.
async fn warn_service_account_pods(
    cluster: &Cluster,
    namespace: &str,
    sa: &str,
    secrets: &[String],
) {
    let selector = format!("spec.serviceAccountName={sa}");
    let query = ListQuery {
        field_selector: Some(&selector),
        ..ListQuery::default()
    };
    let mut lacking = 0usize;
    let result = cluster
        .list_all(&POD, Some(namespace), &query, |items| {
            for pod in &items {
                let phase = pod
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if matches!(phase, "Succeeded" | "Failed") {
                    continue;
                }
                let have = patch_plan::current_entries(pod, "Pod");
                let missing = secrets
                    .iter()
                    .any(|s| !have.iter().any(|e| patch_plan::entry_name(e) == Some(s)));
                if missing {
                    lacking += 1;
                }
            }
        })
        .await;
    let head = format!(
        "only pods created from now on get imagePullSecrets from serviceaccount/{sa}; running pods keep theirs"
    );
    match result {
        Ok(()) if lacking == 0 => output::warn(&format!(
            "{head} (no running pod in namespace {namespace:?} uses it without the secrets)"
        )),
        Ok(()) => output::warn(&format!(
            "{head}: {lacking} running {} in namespace {namespace:?} {} it and {} the secrets; restart their controllers (kubectl rollout restart deployment/NAME -n {namespace}) to pick them up",
            if lacking == 1 { "pod" } else { "pods" },
            if lacking == 1 { "uses" } else { "use" },
            if lacking == 1 { "lacks" } else { "lack" },
        )),
        Err(_) => output::warn(&format!(
            "{head} (could not list pods in namespace {namespace:?} to count them)"
        )),
    }
}

/// `patch -f`: edit manifests' text and print them.
fn run_offline(opts: &PatchOptions) -> Result<Outcome> {
    let sources = crate::manifests::read_sources(&opts.files)?;
    let mut out = String::new();
    let mut changed = 0usize;
    let multiple = sources.len() > 1;
    for (i, source) in sources.iter().enumerate() {
        let edited = crate::manifest_edit::patch_source(&source.text, &opts.secrets, opts.remove)
            .map_err(|e| Error::invalid(format!("{}: {e}", source.name)))?;
        changed += edited.changed;
        if multiple && i > 0 && !out.is_empty() && !edited.text.trim_start().starts_with('{') {
            // Several YAML files: separate them like kubectl does.
            if !out.ends_with('\n') {
                out.push('\n');
            }
            if !edited.text.starts_with("---") {
                out.push_str("---\n");
            }
        }
        out.push_str(&edited.text);
    }
    output::write_stdout(&out)?;
    let verb = if opts.remove {
        "removed from"
    } else {
        "added to"
    };
    eprintln!(
        "{changed} {} patched (secrets {verb} imagePullSecrets)",
        if changed == 1 { "object" } else { "objects" }
    );
    Ok(Outcome::Success)
}
