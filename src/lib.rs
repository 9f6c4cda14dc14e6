//! kubectl image-sec: keeps a cluster's container images honest.
//!
//! Layout:
//! - `cli`: the clap types (flags, subcommands).
//! - `domain`: pure, I/O-free logic (image references, docker config and the kubelet's credential
//!   matching, registry patterns, pull-secret building, patch plans, audit rules, triage).
//! - `cluster`: the Kubernetes client (kubeconfig, pagination, retries, error mapping).
//! - `registry`: the OCI distribution client (auth challenges, manifests, streaming layer scans, cache).
//! - `manifests`: loading YAML/JSON manifests from files, directories and stdin.
//! - `output`: rendering (table, JSON, YAML, SARIF).
//! - `commands`: one module per subcommand, orchestrating the others.
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod domain;
pub mod error;
pub mod manifest_edit;
pub mod manifests;
pub mod output;
pub mod registry;

pub use error::{Error, Result};

/// Entry point used by `main.rs`.
pub fn main_entry() -> std::process::ExitCode {
    commands::run_from_env()
}
