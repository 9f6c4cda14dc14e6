//! On-disk cache of layer summaries, keyed by the layer's compressed digest (content-addressed,
//! so entries never go stale). Lets an audit of many images sharing a base read each layer once.
use super::layers::{LayerSummary, SUMMARY_VERSION};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Environment variable pointing the cache elsewhere (tests, CI).
pub const CACHE_DIR_ENV: &str = "KUBECTL_IMAGE_SEC_CACHE_DIR";

/// `$KUBECTL_IMAGE_SEC_CACHE_DIR`, else `$XDG_CACHE_HOME/kubectl-image-sec`, else
/// `~/.cache/kubectl-image-sec`. `None` when no home is known (then nothing is cached).
pub fn default_cache_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty(CACHE_DIR_ENV) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = nonempty("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("kubectl-image-sec"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".cache").join("kubectl-image-sec"))
}

#[derive(Debug, Default)]
pub struct LayerCache {
    dir: Option<PathBuf>,
    /// One lock per digest so concurrent inspections of images sharing a layer scan it once.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// In-process copies, so one run does not re-read the same summary file per image.
    memory: Mutex<HashMap<String, Arc<LayerSummary>>>,
}

impl LayerCache {
    /// `dir = None` keeps summaries in memory for this process only.
    pub fn new(dir: Option<PathBuf>) -> Self {
        LayerCache {
            dir,
            ..Default::default()
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn file_for(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        // Digests are validated before we get here; refuse anything that could escape the dir.
        if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some(
            self.dir
                .as_ref()?
                .join("layers")
                .join("sha256")
                .join(format!("{hex}.json")),
        )
    }

    pub(crate) async fn lock(&self, digest: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(digest.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }

    /// A cached summary; unreadable or other-version files count as misses.
    pub fn get(&self, digest: &str) -> Option<Arc<LayerSummary>> {
        if let Some(s) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Some(s.clone());
        }
        let path = self.file_for(digest)?;
        let bytes = std::fs::read(path).ok()?;
        let s: LayerSummary = serde_json::from_slice(&bytes).ok()?;
        if s.version != SUMMARY_VERSION || s.digest != digest {
            return None;
        }
        let s = Arc::new(s);
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.to_string(), s.clone());
        Some(s)
    }

    /// Store a verified summary. Written to a temp file and renamed so readers never see half
    /// a file. Failure to write only costs a re-scan next time, so it is returned for the caller
    /// to ignore or report.
    pub fn put(&self, summary: Arc<LayerSummary>) -> std::io::Result<()> {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(summary.digest.clone(), summary.clone());
        let Some(path) = self.file_for(&summary.digest) else {
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&*summary)?)?;
        std::fs::rename(&tmp, &path)
    }
}
