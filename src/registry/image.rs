//! Inspecting one image end to end: manifest (through an index for the requested platform),
//! config, every layer (from the cache or streamed), merged filesystem and its classification.
use super::auth::Credentials;
use super::cache::LayerCache;
use super::client::{RegistryClient, RepositoryClient, MAX_CONFIG_BYTES};
use super::error::RegistryError;
use super::layers::{scan_reader, ChannelReader, LayerSummary, SUMMARY_VERSION};
use super::manifest::{
    available_platforms, select_platform, Descriptor, ImageConfig, Manifest, Platform,
};
use crate::domain::image_contents::{bin_dirs_from_env, classify, merge_layers, ContentFinding};
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which image to read, already resolved by the caller (reference parsing and credential
/// choice live elsewhere).
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The image as the user wrote it, for messages.
    pub image: String,
    /// Normalised registry (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    pub repository: String,
    /// Tag or `sha256:` digest.
    pub reference: String,
    pub credentials: Credentials,
}

#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub digest: String,
    pub media_type: String,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub diff_id: String,
    pub from_cache: bool,
}

#[derive(Debug, Clone)]
pub struct ImageInspection {
    pub request: ImageRequest,
    /// Digest the reference resolved to (the index's when multi-arch).
    pub digest: String,
    /// The platform manifest's digest when an index was resolved.
    pub platform_digest: Option<String>,
    pub media_type: String,
    /// Platform used: from the index entry, else from the config.
    pub platform: Platform,
    pub from_index: bool,
    pub manifest_annotations: std::collections::BTreeMap<String, String>,
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    pub findings: Vec<ContentFinding>,
}

impl ImageInspection {
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.compressed_size).sum()
    }
    pub fn uncompressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_size).sum()
    }
}

/// Counters, mostly so tests (and `-v`) can see how much was really downloaded.
#[derive(Debug, Default)]
pub struct InspectStats {
    pub layers_downloaded: AtomicU64,
    pub layers_from_cache: AtomicU64,
    pub bytes_downloaded: AtomicU64,
}

pub struct Inspector {
    pub client: RegistryClient,
    pub cache: LayerCache,
    pub platform: Platform,
    pub stats: InspectStats,
}

/// Chunks buffered between download and scan: bounds memory per layer in flight.
const CHANNEL_CHUNKS: usize = 8;

impl Inspector {
    pub fn new(client: RegistryClient, cache: LayerCache, platform: Platform) -> Self {
        Inspector {
            client,
            cache,
            platform,
            stats: InspectStats::default(),
        }
    }

    pub async fn inspect(&self, req: &ImageRequest) -> Result<ImageInspection, RegistryError> {
        let repo = self
            .client
            .repository(&req.registry, &req.repository, req.credentials.clone());
        let top = repo.get_manifest(&req.reference).await?;
        let (manifest, platform_digest, from_index, index_platform) = match top.manifest {
            Manifest::Image(m) => (m, None, false, None),
            Manifest::Index(index) => {
                let d = select_platform(&index, &self.platform).ok_or_else(|| {
                    RegistryError::NoMatchingPlatform {
                        image: req.image.clone(),
                        requested: self.platform.to_string(),
                        available: available_platforms(&index),
                    }
                })?;
                let child = repo.get_manifest(&d.digest).await?;
                match child.manifest {
                    Manifest::Image(m) => (m, Some(child.digest), true, d.platform.clone()),
                    Manifest::Index(_) => {
                        return Err(RegistryError::Invalid {
                            registry: req.registry.clone(),
                            what: format!("manifest {}", d.digest),
                            message: "nested index where an image manifest was expected".into(),
                        })
                    }
                }
            }
        };
        let config_bytes = repo
            .get_blob_bytes(&manifest.config.digest, MAX_CONFIG_BYTES)
            .await?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::Invalid {
                registry: req.registry.clone(),
                what: format!("config {}", manifest.config.digest),
                message: e.to_string(),
            })?;
        let platform = index_platform.unwrap_or_else(|| Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
        });
        let diff_ids = &config.rootfs.diff_ids;
        if !diff_ids.is_empty() && diff_ids.len() != manifest.layers.len() {
            return Err(RegistryError::Invalid {
                registry: req.registry.clone(),
                what: format!("config {}", manifest.config.digest),
                message: format!(
                    "{} diff IDs for {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let mut summaries = Vec::with_capacity(manifest.layers.len());
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (i, desc) in manifest.layers.iter().enumerate() {
            let (summary, from_cache) = self
                .layer(&repo, desc, diff_ids.get(i).map(String::as_str))
                .await?;
            layers.push(LayerInfo {
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
                compressed_size: summary.compressed_size,
                uncompressed_size: summary.uncompressed_size,
                diff_id: summary.diff_id.clone(),
                from_cache,
            });
            summaries.push(summary);
        }
        let fs = merge_layers(summaries.iter().map(|s| s.entries.as_slice()));
        let env = config.config.env.clone().unwrap_or_default();
        let findings = classify(&fs, &bin_dirs_from_env(&env));
        Ok(ImageInspection {
            request: req.clone(),
            digest: top.digest,
            platform_digest,
            media_type: manifest.media_type.clone(),
            platform,
            from_index,
            manifest_annotations: manifest.annotations.clone(),
            config,
            layers,
            findings,
        })
    }

    /// A layer's summary: from the cache when present (no download at all), else streamed,
    /// verified against its digest and diff ID, then cached.
    async fn layer(
        &self,
        repo: &RepositoryClient<'_>,
        desc: &Descriptor,
        diff_id: Option<&str>,
    ) -> Result<(Arc<LayerSummary>, bool), RegistryError> {
        if let Some(s) = self.cache.get(&desc.digest) {
            self.stats.layers_from_cache.fetch_add(1, Ordering::Relaxed);
            return Ok((s, true));
        }
        let _guard = self.cache.lock(&desc.digest).await;
        // Another task may have scanned it while we waited.
        if let Some(s) = self.cache.get(&desc.digest) {
            self.stats.layers_from_cache.fetch_add(1, Ordering::Relaxed);
            return Ok((s, true));
        }
        let layer_err = |message: String| RegistryError::Layer {
            digest: desc.digest.clone(),
            message,
        };
        let resp = repo.get_blob(&desc.digest).await?;
        self.stats.layers_downloaded.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let media_type = desc.media_type.clone();
        let scan =
            tokio::task::spawn_blocking(move || scan_reader(ChannelReader::new(rx), &media_type));
        let mut body = resp.bytes_stream();
        let mut transport_error = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(b) => {
                    self.stats
                        .bytes_downloaded
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    if tx.send(Ok(b)).await.is_err() {
                        break; // the scanner stopped (bad data); its error is reported below
                    }
                }
                Err(e) => {
                    let err = RegistryError::from_reqwest(repo.registry(), &e);
                    let _ = tx.send(Err(err.to_string())).await;
                    transport_error = Some(err);
                    break;
                }
            }
        }
        drop(tx);
        // A JoinError's text carries the panic payload; the panic hook has already named where.
        let scanned = scan.await.map_err(|e| {
            layer_err(if e.is_panic() {
                "the layer scanner failed (internal error, please report)".into()
            } else {
                format!("scan task failed: {e}")
            })
        })?;
        if let Some(e) = transport_error {
            return Err(e);
        }
        let r = scanned.map_err(|e| layer_err(e.to_string()))?;
        if r.digest != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("layer {}", desc.digest),
                expected: desc.digest.clone(),
                actual: r.digest,
            });
        }
        if desc.size != 0 && r.compressed_size != desc.size {
            return Err(layer_err(format!(
                "size {} differs from the manifest's {}",
                r.compressed_size, desc.size
            )));
        }
        if let Some(expected) = diff_id {
            if expected != r.diff_id {
                return Err(RegistryError::DigestMismatch {
                    what: format!("uncompressed layer {} (diff ID)", desc.digest),
                    expected: expected.to_string(),
                    actual: r.diff_id,
                });
            }
        }
        let summary = Arc::new(LayerSummary {
            version: SUMMARY_VERSION,
            digest: r.digest,
            diff_id: r.diff_id,
            compression: r.compression,
            compressed_size: r.compressed_size,
            uncompressed_size: r.uncompressed_size,
            entries: r.entries,
        });
        // A cache write failure only costs a re-scan later.
        let _ = self.cache.put(summary.clone());
        Ok((summary, false))
    }

    /// Inspect several images with at most `concurrency` in flight, each distinct request once.
    /// Results come back in input order, one per request, errors included.
    pub async fn inspect_many(
        &self,
        requests: &[ImageRequest],
        concurrency: usize,
    ) -> Vec<Result<ImageInspection, RegistryError>> {
        futures::stream::iter(requests.iter().map(|r| self.inspect(r)))
            .buffered(concurrency.max(1))
            .collect()
            .await
    }
}
