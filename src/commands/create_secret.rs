//! `kubectl image-sec create-secret`: kubectl's `create secret docker-registry`, made safer.
//!
//! Shaped like kubectl's `create_secret_docker.go`: options are completed from the flags
//! (reading passwords and files), validated before any API call, then run.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::cli::{CreateSecretArgs, DryRun, GlobalOpts, ObjectOutput};
use crate::cluster::{resources::SECRET, Cluster, WriteOptions};
use crate::domain::docker_config::{parse_docker_config_json, DockerConfig};
use crate::domain::pull_secret::{
    self, build_docker_config_json, merge_docker_config_json, MergeSummary, RegistryCredential,
    SECRET_KEY, SECRET_TYPE,
};
use crate::error::{Error, Outcome, Result};
use crate::output;

/// How many times an `--overwrite` update is retried after a conflicting concurrent write.
const CONFLICT_RETRIES: u32 = 5;

/// Validated options: everything needed to build the Secret, with the files already read.
pub struct CreateSecretOptions {
    pub name: String,
    /// Registry entries from the flags and/or a docker config.json.
    pub credentials: Vec<RegistryCredential>,
    /// Raw data keys from `--from-file` (kubectl's meaning).
    pub file_data: BTreeMap<String, Vec<u8>>,
    pub overwrite: bool,
    pub verify: bool,
    pub dry_run: DryRun,
    pub output: Option<ObjectOutput>,
    pub field_manager: String,
    /// `KIND/NAME` objects whose imagePullSecrets get this secret (the `patch` code path).
    pub attach_to: Vec<String>,
}

impl CreateSecretOptions {
    /// Completes and validates the options. Reads the password (stdin or file) and input files;
    /// makes no API call.
    pub fn complete(args: &CreateSecretArgs) -> Result<Self> {
        let name = args.name.clone().unwrap_or_default();
        pull_secret::validate_secret_name(&name).map_err(Error::invalid)?;
        for target in &args.attach_to {
            crate::cluster::resources::parse_kind_name(target)
                .map_err(|e| Error::invalid(format!("--attach-to: {e}")))?;
        }
        let mut credentials = Vec::new();
        let mut file_data = BTreeMap::new();
        if !args.from_file.is_empty() {
            file_data = read_file_sources(&args.from_file)?;
            validate_file_data(&file_data)?;
        }
        if let Some(path) = &args.from_docker_config {
            credentials.extend(read_docker_config_entries(path, &args.registry)?);
        }
        let password = read_password(args)?;
        let wants_flag_entry = args.docker_username.is_some() || password.is_some();
        if wants_flag_entry || (file_data.is_empty() && credentials.is_empty()) {
            let (Some(username), Some(password)) = (args.docker_username.clone(), password) else {
                return Err(Error::invalid(
                    "either --from-file, --from-docker-config, or --docker-username with a password (--password-stdin, --password-file or --docker-password) is required",
                ));
            };
            if username.is_empty() {
                return Err(Error::invalid("--docker-username is empty"));
            }
            if password.is_empty() {
                return Err(Error::invalid(
                    "the password is empty; pass it with --password-stdin or --password-file",
                ));
            }
            pull_secret::validate_username(&username).map_err(Error::invalid)?;
            pull_secret::validate_server(&args.docker_server).map_err(Error::invalid)?;
            credentials.push(RegistryCredential {
                server: args.docker_server.clone(),
                username,
                password,
                email: args.docker_email.clone(),
            });
        }
        if !file_data.is_empty() && !credentials.is_empty() {
            return Err(Error::invalid(
                "--from-file cannot be combined with registry credentials; use one or the other",
            ));
        }
        if args.verify && credentials.is_empty() {
            return Err(Error::invalid(
                "--verify needs registry credentials (--docker-username or --from-docker-config)",
            ));
        }
        Ok(CreateSecretOptions {
            name,
            credentials,
            file_data,
            overwrite: args.overwrite,
            verify: args.verify,
            dry_run: args.dry_run,
            output: args.output,
            field_manager: args.field_manager.clone(),
            attach_to: args.attach_to.clone(),
        })
    }

    /// The Secret as kubectl builds it (`namespace` only when `-n` was given, like kubectl).
    pub fn build_secret(&self, namespace: Option<&str>) -> Value {
        let data: Map<String, Value> = if self.file_data.is_empty() {
            let mut m = Map::new();
            m.insert(
                SECRET_KEY.into(),
                Value::String(b64(&build_docker_config_json(&self.credentials))),
            );
            m
        } else {
            self.file_data
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(b64(v))))
                .collect()
        };
        let mut metadata = Map::new();
        metadata.insert("name".into(), Value::String(self.name.clone()));
        if let Some(ns) = namespace {
            metadata.insert("namespace".into(), Value::String(ns.to_string()));
        }
        metadata.insert("creationTimestamp".into(), Value::Null);
        json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": metadata,
            "data": data,
            "type": SECRET_TYPE,
        })
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn run(global: &GlobalOpts, args: CreateSecretArgs) -> Result<Outcome> {
    if args.dry_run == DryRun::None
        && std::io::stdin().is_terminal()
        && args.docker_password.is_some()
    {
        output::warn("--docker-password puts the password in your shell history and the process list; use --password-stdin or --password-file");
    }
    if global.context.len() > 1 {
        return Err(Error::invalid("create-secret takes one --context"));
    }
    let opts = CreateSecretOptions::complete(&args)?;
    if opts.verify {
        verify_credentials(&opts, &args).await?;
    }
    if opts.dry_run == DryRun::Client {
        let secret = opts.build_secret(global.namespace.as_deref());
        print_result(&secret, opts.output, "created (dry run)")?;
        if opts.attach_to.is_empty() {
            return Ok(Outcome::Success);
        }
        // Attaching needs the targets' current lists, so even a client dry run reads them.
        let cluster = Cluster::connect(global, None).await?;
        return attach(&cluster, &opts).await;
    }
    let cluster = Cluster::connect(global, None).await?;
    let namespace = cluster.namespace.clone();
    let secret = opts.build_secret(cluster.namespace_explicit.then_some(namespace.as_str()));
    let write = WriteOptions {
        dry_run: opts.dry_run == DryRun::Server,
        field_manager: Some(&opts.field_manager),
    };
    let suffix = if write.dry_run {
        " (server dry run)"
    } else {
        ""
    };
    match cluster.create(&SECRET, &namespace, &secret, &write).await {
        Ok(created) => {
            print_result(&created, opts.output, &format!("created{suffix}"))?;
            attach(&cluster, &opts).await
        }
        Err(e) if e.api_code() == Some(409) && opts.overwrite => {
            let (updated, summary) = overwrite(&cluster, &namespace, &opts, &write).await?;
            let verb = format!("configured{suffix}: {}", describe_merge(&summary));
            print_result(&updated, opts.output, &verb)?;
            attach(&cluster, &opts).await
        }
        Err(e) if e.api_code() == Some(409) => Err(e.with_hint(
            "nothing was changed; add --overwrite to add or replace these registries and keep the secret's other entries",
        )),
        Err(e) => Err(e),
    }
}

/// `--attach-to`: adds the secret to each target's imagePullSecrets with `patch`'s
/// never-lose-an-entry code path, after the secret itself was written.
async fn attach(cluster: &Cluster, opts: &CreateSecretOptions) -> Result<Outcome> {
    if opts.attach_to.is_empty() {
        return Ok(Outcome::Success);
    }
    let secrets = [opts.name.clone()];
    let patched = super::patch::attach_secrets(
        cluster,
        &cluster.namespace,
        &opts.attach_to,
        &secrets,
        false,
        opts.dry_run,
    )
    .await?;
    if opts.output.is_none() {
        let lines: String = patched
            .iter()
            .map(|p| super::patch::summary_line(p, opts.dry_run) + "\n")
            .collect();
        output::write_stdout(&lines)?;
    }
    Ok(Outcome::Success)
}

fn print_result(obj: &Value, format: Option<ObjectOutput>, verb: &str) -> Result<()> {
    match format {
        Some(f) => output::print_object(obj, f),
        None => output::write_stdout(&format!("{} {verb}\n", output::object_name(obj))),
    }
}

fn describe_merge(summary: &MergeSummary) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "added [{}], replaced [{}], kept {} other {}",
        list(&summary.added),
        list(&summary.replaced),
        summary.kept.len(),
        if summary.kept.len() == 1 {
            "entry"
        } else {
            "entries"
        }
    )
}

/// Updates the existing secret: merges the new registries into its `.dockerconfigjson` (or sets
/// the `--from-file` keys), keeps everything else, and writes with its resourceVersion so a
/// concurrent change is never overwritten; on conflict, re-reads and merges again.
async fn overwrite(
    cluster: &Cluster,
    namespace: &str,
    opts: &CreateSecretOptions,
    write: &WriteOptions<'_>,
) -> Result<(Value, MergeSummary)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut existing = cluster
            .get(&SECRET, namespace, &opts.name)
            .await?
            .ok_or_else(|| {
                Error::other(format!(
                    "secret {:?} disappeared while updating it; run the command again",
                    opts.name
                ))
            })?;
        let summary = merge_into(&mut existing, opts)?;
        match cluster.replace(&SECRET, namespace, &opts.name, &existing, write).await {
            Ok(updated) => return Ok((updated, summary)),
            Err(e) if e.api_code() == Some(409) && attempt < CONFLICT_RETRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => {
                return Err(e.with_hint("the secret kept changing while we updated it; nothing of ours was written, run the command again"))
            }
        }
    }
}

fn merge_into(secret: &mut Value, opts: &CreateSecretOptions) -> Result<MergeSummary> {
    let secret_type = secret
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string);
    let data = secret
        .as_object_mut()
        .ok_or_else(|| Error::other("the server returned a secret that is not an object"))?
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    let data = data
        .as_object_mut()
        .ok_or_else(|| Error::other("the secret's data is not an object"))?;
    if !opts.file_data.is_empty() {
        if secret_type.as_deref() != Some(SECRET_TYPE) {
            return Err(Error::invalid(
                pull_secret::MergeError::WrongType(secret_type.unwrap_or_default()).to_string(),
            ));
        }
        let mut summary = MergeSummary::default();
        for (k, v) in &opts.file_data {
            let replaced = data.insert(k.clone(), Value::String(b64(v))).is_some();
            if replaced {
                summary.replaced.push(k.clone())
            } else {
                summary.added.push(k.clone())
            }
        }
        return Ok(summary);
    }
    let existing = match data.get(SECRET_KEY).and_then(Value::as_str) {
        Some(s) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| Error::invalid(format!("the existing secret's {SECRET_KEY} is not base64; refusing to overwrite it")))?,
        ),
        None => None,
    };
    let (bytes, summary) = merge_docker_config_json(
        secret_type.as_deref(),
        existing.as_deref(),
        &opts.credentials,
    )
    .map_err(|e| Error::invalid(e.to_string()))?;
    data.insert(SECRET_KEY.into(), Value::String(b64(&bytes)));
    Ok(summary)
}

/// `--verify`: log in to each registry's `/v2/` endpoint before anything is written.
async fn verify_credentials(opts: &CreateSecretOptions, args: &CreateSecretArgs) -> Result<()> {
    super::inspect::verify_registry_credentials(&opts.credentials, &args.registry_opts).await
}

/// The password from exactly one of `--docker-password`, `--password-stdin`, `--password-file`.
fn read_password(args: &CreateSecretArgs) -> Result<Option<String>> {
    if let Some(p) = &args.docker_password {
        return Ok(Some(p.clone()));
    }
    if args.password_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Error::invalid(format!("cannot read the password from stdin: {e}")))?;
        let text = String::from_utf8(buf)
            .map_err(|_| Error::invalid("the password on stdin is not UTF-8 text"))?;
        return Ok(Some(strip_one_newline(text)));
    }
    if let Some(path) = &args.password_file {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("--password-file {}", path.display()), e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::invalid(format!(
                "--password-file {}: not UTF-8 text",
                path.display()
            ))
        })?;
        return Ok(Some(strip_one_newline(text)));
    }
    Ok(None)
}

/// `echo pw |` and files saved by editors end in one newline that is not part of the password.
fn strip_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// kubectl's `--from-file=[key=]path`: a file under its base name (or the given key), or each
/// regular file of a directory.
fn read_file_sources(sources: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut data = BTreeMap::new();
    let mut add = |key: String, path: &Path| -> Result<()> {
        validate_data_key(&key)?;
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("--from-file {}", path.display()), e))?;
        if data.insert(key.clone(), bytes).is_some() {
            return Err(Error::invalid(format!(
                "cannot add key {key}, another key by that name already exists"
            )));
        }
        Ok(())
    };
    for source in sources {
        let (key, path) = match source.split_once('=') {
            Some((k, p)) if k.is_empty() || p.is_empty() => {
                return Err(Error::invalid(format!(
                    "--from-file {source:?}: key or path is empty; use [key=]path"
                )))
            }
            Some((k, p)) => (Some(k.to_string()), Path::new(p)),
            None => (None, Path::new(source.as_str())),
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("--from-file {}", path.display()), e))?;
        if meta.is_dir() {
            if key.is_some() {
                return Err(Error::invalid(format!(
                    "--from-file {source:?}: cannot give a key for a directory"
                )));
            }
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path.display(), e))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                add(
                    entry.file_name().to_string_lossy().into_owned(),
                    &entry.path(),
                )?;
            }
        } else {
            let key = key.unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            add(key, path)?;
        }
    }
    Ok(data)
}

/// A Secret data key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
fn validate_data_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{key:?} is not a valid secret key: use letters, digits, '-', '_' or '.' (give one with --from-file=KEY=PATH)"
        )))
    }
}

/// A dockerconfigjson secret must hold `.dockerconfigjson` with a valid docker config.
fn validate_file_data(data: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let Some(bytes) = data.get(SECRET_KEY) else {
        return Err(Error::invalid(format!(
            "a {SECRET_TYPE} secret needs the key {SECRET_KEY}; use --from-file={SECRET_KEY}=PATH/TO/config.json"
        )));
    };
    check_docker_config(bytes, SECRET_KEY).map(|_| ())
}

fn check_docker_config(bytes: &[u8], what: &str) -> Result<DockerConfig> {
    parse_docker_config_json(bytes)
        .map_err(|e| Error::invalid(format!("{what} is not a valid docker config: {e}")))
}

/// Entries of a docker config.json, only the named registries if any (matched by the entry's
/// key or by its host, so `--registry=index.docker.io` finds `https://index.docker.io/v1/`).
fn read_docker_config_entries(
    path: &Path,
    registries: &[String],
) -> Result<Vec<RegistryCredential>> {
    let what = format!("--from-docker-config {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| Error::io(&what, e))?;
    let config = check_docker_config(&bytes, &what)?;
    let host_of = |key: &str| pull_secret::validate_server(key).unwrap_or_else(|_| key.to_string());
    let wanted = |key: &str| {
        registries.is_empty() || registries.iter().any(|r| r == key || *r == host_of(key))
    };
    for registry in registries {
        if !config
            .entries
            .iter()
            .any(|e| e.key == *registry || host_of(&e.key) == *registry)
        {
            return Err(Error::invalid(format!(
                "{what} has no entry for registry {registry:?}"
            )));
        }
    }
    let mut out = Vec::new();
    for entry in config.entries.iter().filter(|e| wanted(&e.key)) {
        if entry.username.is_empty() || entry.password.is_empty() {
            let store = config
                .cred_helpers
                .get(&entry.key)
                .or(config.creds_store.as_ref())
                .map(|s| format!(" (they are probably in the credential store {s:?})"))
                .unwrap_or_default();
            return Err(Error::invalid(format!(
                "{what}: the entry for {:?} holds no username and password{store}; use --docker-username with --password-stdin instead",
                entry.key
            )));
        }
        out.push(RegistryCredential {
            server: entry.key.clone(),
            username: entry.username.clone(),
            password: entry.password.clone(),
            email: entry.email.clone().unwrap_or_default(),
        });
    }
    if out.is_empty() {
        return Err(Error::invalid(format!("{what} has no registry entries")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_stripped() {
        assert_eq!(strip_one_newline("pw\n".into()), "pw");
        assert_eq!(strip_one_newline("pw\r\n".into()), "pw");
        assert_eq!(strip_one_newline("pw\n\n".into()), "pw\n");
        assert_eq!(strip_one_newline("pw".into()), "pw");
    }

    #[test]
    fn data_keys_follow_kubectl() {
        assert!(validate_data_key(".dockerconfigjson").is_ok());
        assert!(validate_data_key("a b").is_err());
        assert!(validate_data_key("..").is_err());
    }
}
