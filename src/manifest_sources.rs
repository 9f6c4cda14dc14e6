//! Reading `-f` manifest sources from files, directories and stdin, with the size and text checks;
//! parsing them is [`crate::manifests`] (the domain crate's `manifests`).
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifests::Source;

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads `-f` arguments: files, directories (recursively, `.yaml`, `.yml`, `.json`, sorted) and
/// `-` for stdin.
pub fn read_sources(args: &[String]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let mut stdin_used = false;
    for arg in args {
        if arg == "-" {
            if stdin_used {
                return Err(Error::invalid("-f - (stdin) can be given only once"));
            }
            stdin_used = true;
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::invalid(format!("cannot read stdin: {e}")))?;
            sources.push(to_source("<stdin>".into(), buf)?);
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("-f {arg}"), e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect_manifest_files(path, &mut files)?;
            if files.is_empty() {
                return Err(Error::invalid(format!(
                    "-f {arg}: no .yaml, .yml or .json files in this directory"
                )));
            }
            for f in files {
                sources.push(read_file(&f)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

fn read_file(path: &Path) -> Result<Source> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path.display(), e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(format!(
            "{}: file is {} MiB, larger than the {} MiB limit for manifests",
            path.display(),
            meta.len() / (1024 * 1024),
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    to_source(path.display().to_string(), bytes)
}

fn to_source(name: String, bytes: Vec<u8>) -> Result<Source> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::invalid(format!(
            "{name}: larger than the {} MiB limit for manifests",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    if bytes.contains(&0) {
        return Err(Error::invalid(format!(
            "{name}: binary data, not a YAML or JSON manifest"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid(format!(
            "{name}: not UTF-8 text, not a YAML or JSON manifest"
        ))
    })?;
    Ok(Source { name, text })
}

fn collect_manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io(path.display(), e))?;
        if file_type.is_dir() {
            collect_manifest_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}
