//! kubectl image-sec: keeps a cluster's container images honest.
//!
//! Layout:
//! - `cli`: the clap types (flags, subcommands).
//! - `domain`: pure, I/O-free logic (image references, docker config and the kubelet's credential
//!   matching, registry patterns, pull-secret building, patch plans, audit rules, triage, manifest
//!   parsing): the `image-sec-domain` crate in `crates/domain`, which does no I/O and cannot depend
//!   on kube; re-exported here as `domain`.
//! - `cluster`: the Kubernetes client (kubeconfig, pagination, retries, error mapping).
//! - `registry`: the OCI distribution client (auth challenges, manifests, streaming layer scans, cache).
//! - `manifests`: loading YAML/JSON manifests: reading files, directories and stdin
//!   (`manifest_sources`) and parsing them (the domain crate's `manifests`).
//! - `output`: rendering (table, JSON, YAML, SARIF).
//! - `commands`: one module per subcommand, orchestrating the others.
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod error;
pub mod manifest_edit;
pub mod manifest_sources;
pub mod output;
pub mod registry;
pub mod report;

pub use error::{Error, Result};
pub use image_sec_domain as domain;

/// Manifests: the domain crate's parsing and this crate's reading of `-f` sources, under one path.
pub mod manifests {
    pub use crate::manifest_sources::{read_sources, MAX_FILE_BYTES};
    pub use image_sec_domain::manifests::*;
}

/// Entry point used by `main.rs`.
pub fn main_entry() -> std::process::ExitCode {
    commands::run_from_env()
}
