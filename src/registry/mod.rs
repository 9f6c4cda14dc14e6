//! OCI distribution client: auth challenges (Basic, Bearer), manifests and indexes with platform
//! selection, streaming layer scans with digest verification, and an on-disk layer cache.
//! Knows nothing about Kubernetes: callers pass registry, repository and credentials.
pub mod auth;
pub mod cache;
pub mod client;
pub mod error;
pub mod image;
pub mod layers;
pub mod manifest;

pub use auth::Credentials;
pub use cache::{default_cache_dir, LayerCache, CACHE_DIR_ENV};
pub use client::{api_host, RegistryClient, RegistryOptions};
pub use error::{RegistryError, Secret};
pub use image::{ImageInspection, ImageRequest, InspectStats, Inspector, LayerInfo};
pub use manifest::Platform;
