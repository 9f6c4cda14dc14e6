//! Pure domain logic: no I/O, unit-tested with tables of cases.
#![forbid(unsafe_code)]
pub mod docker_config;
pub mod image_contents;
pub mod keyring;
pub mod label_selector;
pub mod manifests;
pub mod patch_plan;
pub mod policy;
pub mod pull_secret;
pub mod reference;
pub mod registry_pattern;
pub mod rules;
pub mod severity;
pub mod triage;
pub mod workload;

pub use severity::Severity;
