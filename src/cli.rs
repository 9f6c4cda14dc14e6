//! The command line: clap types only. Flag names, shorthands and meanings follow kubectl.
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps a cluster's container images honest: where they come from, how they are named, how the
/// cluster authenticates to pull them, and what is inside them.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl image-sec",
    bin_name = "kubectl image-sec",
    version,
    propagate_version = true,
    disable_help_subcommand = true,
    after_help = "Use \"kubectl image-sec <command> --help\" for more information about a given command."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's global flags, with kubectl's names and meanings.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Vec<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation; repeat for several groups.
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// Bearer token for authentication to the API server.
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Path to a cert file for the certificate authority.
    #[arg(long = "certificate-authority", global = true, value_name = "PATH")]
    pub certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS.
    #[arg(long = "client-certificate", global = true, value_name = "PATH")]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long = "client-key", global = true, value_name = "PATH")]
    pub client_key: Option<PathBuf>,
    /// If true, the server's certificate will not be checked for validity.
    #[arg(long = "insecure-skip-tls-verify", global = true)]
    pub insecure_skip_tls_verify: bool,
    /// Server name to use for server certificate validation.
    #[arg(long = "tls-server-name", global = true, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// The length of time to wait before giving up on a single server request (e.g. 1s, 2m, 3h;
    /// 0 means no timeout).
    #[arg(
        long = "request-timeout",
        global = true,
        default_value = "0",
        value_name = "DURATION"
    )]
    pub request_timeout: String,
    /// Number for the log level verbosity (6 logs requests, 7 headers with credentials masked).
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        default_value_t = 0,
        value_name = "LEVEL"
    )]
    pub verbosity: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update a kubernetes.io/dockerconfigjson pull secret (safer `kubectl create secret docker-registry`).
    #[command(after_help = CREATE_SECRET_EXAMPLES)]
    CreateSecret(CreateSecretArgs),
    /// Add or remove imagePullSecrets on ServiceAccounts, pod controllers, Pods or manifests.
    #[command(after_help = PATCH_EXAMPLES)]
    Patch(PatchArgs),
    /// Report images that break the registry and naming rules, pull secrets that cannot work, and pull failures.
    #[command(after_help = AUDIT_EXAMPLES)]
    Audit(AuditArgs),
    /// Read an image from its registry and report what is inside it.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Print shell completion code (bash, zsh or fish).
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
}

const CREATE_SECRET_EXAMPLES: &str = "Examples:
  # Create a pull secret, reading the password from stdin (never from the command line)
  echo \"$REGISTRY_PASSWORD\" | kubectl image-sec create-secret regcred \\
      --docker-server=registry.example.com --docker-username=ci --password-stdin

  # Add a second registry to an existing secret, keeping its other entries
  kubectl image-sec create-secret regcred --docker-server=ghcr.io --docker-username=bot \\
      --password-file=./ghcr-token --overwrite

  # Check the credentials against the registry before saving them
  kubectl image-sec create-secret regcred --docker-server=registry.example.com \\
      --docker-username=ci --password-stdin --verify < password.txt

  # Take two registries from your docker config.json
  kubectl image-sec create-secret regcred --from-docker-config=$HOME/.docker/config.json \\
      --registry=registry.example.com --registry=ghcr.io

  # Print the Secret without creating it
  kubectl image-sec create-secret regcred --docker-username=u --password-stdin --dry-run=client -o yaml";

const PATCH_EXAMPLES: &str = "Examples:
  # Let every new pod of the default service account pull with regcred
  kubectl image-sec patch sa/default --secret=regcred

  # Attach two secrets to every deployment labelled app=web
  kubectl image-sec patch deployment -l app=web --secret=regcred --secret=ghcr

  # Detach a secret from all statefulsets in a namespace
  kubectl image-sec patch sts --all --secret=old-creds --remove -n data

  # Patch manifests offline and print them
  kubectl image-sec patch -f k8s/ --secret=regcred > patched.yaml";

const AUDIT_EXAMPLES: &str = "Examples:
  # Audit the current namespace
  kubectl image-sec audit

  # Audit every namespace of two clusters against a policy, failing CI on medium findings
  kubectl image-sec audit -A --context=prod --context=staging --policy=policy.yaml --fail-on=medium

  # Audit manifests without a cluster (Helm output on stdin works too)
  helm template ./chart | kubectl image-sec audit -f - -o sarif > results.sarif

  # Also look inside the images for shells, package managers, network tools and editors
  kubectl image-sec audit -n web --deep";

const INSPECT_EXAMPLES: &str = "Examples:
  # Inspect a public image
  kubectl image-sec inspect registry.example.com/team/app:1.4.2

  # Inspect with the cluster's pull secret
  kubectl image-sec inspect registry.example.com/team/app:1.4.2 --pull-secret=regcred -n web

  # As JSON, failing on high findings
  kubectl image-sec inspect ghcr.io/org/app@sha256:... -o json --fail-on=high";

const COMPLETION_EXAMPLES: &str = "Examples:
  # bash
  source <(kubectl image-sec completion bash)
  # zsh
  kubectl image-sec completion zsh > \"${fpath[1]}/_kubectl-image_sec\"
  # fish
  kubectl image-sec completion fish | source";

/// `--dry-run` as in kubectl: a bare `--dry-run` means `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DryRun {
    #[default]
    None,
    Client,
    Server,
}

/// `-o` for commands that print Kubernetes objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectOutput {
    Json,
    Yaml,
    Name,
}

/// `-o` for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportOutput {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
    Sarif,
}

/// `-o` for `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum InspectOutput {
    #[default]
    Table,
    Json,
    Yaml,
}

pub use crate::domain::Severity;

/// `--fail-on`: clap's possible values for the domain's [`Severity`] (what `ValueEnum` would
/// give: the same help, errors, suggestions and completions).
fn severity_parser() -> impl TypedValueParser<Value = Severity> {
    PossibleValuesParser::new(Severity::ALL.map(Severity::as_str)).map(|s| {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .expect("one of the possible values")
    })
}

/// Flags for commands that talk to image registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryOpts {
    /// Registry (HOST[:PORT]) reached over plain HTTP, or HTTPS without verification. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Extra CA certificate (PEM) trusted for registries, on top of the system roots.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Platform picked from multi-arch images.
    #[arg(long, default_value = "linux/amd64", value_name = "OS/ARCH[/VARIANT]")]
    pub platform: String,
}

#[derive(Debug, Args)]
pub struct CreateSecretArgs {
    /// Name of the secret.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Server location for the registry, used verbatim as the `auths` key.
    #[arg(
        long = "docker-server",
        default_value = "https://index.docker.io/v1/",
        value_name = "SERVER"
    )]
    pub docker_server: String,
    /// Username for registry authentication.
    #[arg(long = "docker-username", value_name = "USER")]
    pub docker_username: Option<String>,
    /// Password for registry authentication (prefer --password-stdin or --password-file).
    #[arg(
        long = "docker-password",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub docker_password: Option<String>,
    /// Read the password from standard input (one trailing newline is removed).
    #[arg(long = "password-stdin", conflicts_with_all = ["docker_password", "password_file"])]
    pub password_stdin: bool,
    /// Read the password from a file (one trailing newline is removed).
    #[arg(
        long = "password-file",
        value_name = "FILE",
        conflicts_with = "docker_password"
    )]
    pub password_file: Option<PathBuf>,
    /// Email for the registry entry (omitted when empty).
    #[arg(long = "docker-email", default_value = "", value_name = "EMAIL")]
    pub docker_email: String,
    /// Key files, as kubectl: [key=]path; a directory adds each regular file in it.
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub from_file: Vec<String>,
    /// Take registry entries from an existing docker config.json.
    #[arg(
        long = "from-docker-config",
        value_name = "PATH",
        conflicts_with = "from_file"
    )]
    pub from_docker_config: Option<PathBuf>,
    /// With --from-docker-config: only these registries (repeatable).
    #[arg(
        long = "registry",
        value_name = "HOST",
        requires = "from_docker_config"
    )]
    pub registry: Vec<String>,
    /// Update an existing secret, keeping its other registries and keys.
    #[arg(long)]
    pub overwrite: bool,
    /// Log in to each registry's /v2/ endpoint first; refuse credentials it rejects.
    #[arg(long)]
    pub verify: bool,
    /// Also attach the secret to this object's imagePullSecrets (KIND/NAME, repeatable).
    #[arg(long = "attach-to", value_name = "KIND/NAME")]
    pub attach_to: Vec<String>,
    /// Must be "none", "client", or "server".
    #[arg(long = "dry-run", value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Output format: json, yaml or name.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<ObjectOutput>,
    /// Name of the manager used to track field ownership.
    #[arg(long = "field-manager", default_value = "kubectl-image-sec")]
    pub field_manager: String,
    #[command(flatten)]
    pub registry_opts: RegistryOpts,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// KIND/NAME..., or KIND with -l/--all.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Manifests to patch offline (file, directory or - for stdin); prints the patched manifests.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub filename: Vec<String>,
    /// Secret name to add (or remove with --remove). Repeatable.
    #[arg(long = "secret", value_name = "NAME", required = true)]
    pub secret: Vec<String>,
    /// Remove the secrets instead of adding them.
    #[arg(long)]
    pub remove: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Select all objects of KIND in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Must be "none", "client", or "server".
    #[arg(long = "dry-run", value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
    /// Output format: json, yaml or name.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<ObjectOutput>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Audit every namespace.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Manifests to audit instead of the cluster (file, directory or - for stdin). Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub filename: Vec<String>,
    /// Selector (label query) to filter workloads on.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Policy file (YAML).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Also read each image from its registry (once per distinct image, with the workload's pull
    /// secrets, else --docker-config, else anonymously) and check what is inside it, its
    /// compressed size (policy maxImageBytes, default 500 MiB) and age (maxImageAgeDays,
    /// default 90).
    #[arg(long)]
    pub deep: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: ReportOutput,
    /// Exit 3 when a finding at or above this severity is found.
    #[arg(long = "fail-on", value_parser = severity_parser(), default_value = "high")]
    pub fail_on: Severity,
    /// Docker config.json whose credentials are used for --deep when no pull secret matches.
    #[arg(long = "docker-config", value_name = "PATH")]
    pub docker_config: Option<PathBuf>,
    #[command(flatten)]
    pub registry_opts: RegistryOpts,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference, e.g. registry.example.com/team/app:1.2.3.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Use this pull secret (from the namespace) for registry credentials.
    #[arg(long = "pull-secret", value_name = "NAME")]
    pub pull_secret: Option<String>,
    /// Docker config.json with registry credentials (default ~/.docker/config.json).
    #[arg(long = "docker-config", value_name = "PATH")]
    pub docker_config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: InspectOutput,
    /// Exit 3 when a finding at or above this severity is found.
    #[arg(long = "fail-on", value_parser = severity_parser(), default_value = "high")]
    pub fail_on: Severity,
    #[command(flatten)]
    pub registry_opts: RegistryOpts,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to generate completion for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}
