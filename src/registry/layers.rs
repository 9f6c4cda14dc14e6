//! Streaming layer scan: the blob flows from the HTTP body through a bounded channel into a
//! blocking task that hashes the compressed bytes, decompresses (gzip, zstd or none, told by
//! magic bytes), hashes the tar stream (the diff ID) and walks the tar headers, skipping entry
//! contents. Nothing is written to disk and only a few chunks are in memory at a time.
use crate::domain::image_contents::{normalize_path, EntryKind, FsEntry};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read};

/// What one layer holds, as cached on disk by its compressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Cache format version; summaries of another version are ignored.
    pub version: u32,
    pub digest: String,
    pub diff_id: String,
    pub compression: Compression,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: Vec<FsEntry>,
}

pub const SUMMARY_VERSION: u32 = 1;

/// Entries kept per layer. Real layers hold up to a few hundred thousand files; past this a
/// layer is refused rather than letting a hostile image grow the listing without bound.
pub const MAX_ENTRIES_PER_LAYER: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Raw result of a scan, before the caller checks digests.
#[derive(Debug, Clone)]
pub struct ScanResult {
    pub digest: String,
    pub diff_id: String,
    pub compression: Compression,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: Vec<FsEntry>,
}

/// Counts and hashes whatever is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    fn finish(self) -> (String, u64, R) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
            self.inner,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Detect compression from the first bytes; the media type is only a hint (some registries and
/// tools label zstd or uncompressed layers as gzip).
pub fn detect_compression(head: &[u8], media_type: &str) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Compression::None
    } else if media_type.ends_with("zstd") {
        Compression::Zstd
    } else if media_type.ends_with("gzip") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// Scan a layer from any reader (blocking). The whole input is consumed so the digest covers
/// every byte, even what follows the tar end marker.
pub fn scan_reader<R: Read>(reader: R, media_type: &str) -> io::Result<ScanResult> {
    let hashing = HashingReader::new(reader);
    let mut buf = BufReader::with_capacity(64 << 10, hashing);
    let head = buf.fill_buf()?.to_vec();
    let compression = detect_compression(&head, media_type);
    let (entries, diff_id, uncompressed_size, mut buf) = match compression {
        Compression::Gzip => {
            let dec = flate2::bufread::MultiGzDecoder::new(buf);
            let (entries, diff, size, dec) = walk_tar(dec)?;
            (entries, diff, size, dec.into_inner())
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(buf)?;
            let (entries, diff, size, dec) = walk_tar(dec)?;
            (entries, diff, size, dec.finish())
        }
        Compression::None => walk_tar(buf)?,
    };
    io::copy(&mut buf, &mut io::sink())?;
    let (digest, compressed_size, _) = buf.into_inner().finish();
    Ok(ScanResult {
        digest,
        diff_id,
        compression,
        compressed_size,
        uncompressed_size,
        entries,
    })
}

/// Walk tar headers, return entries, the diff ID and size of the tar stream, and the reader.
fn walk_tar<R: Read>(r: R) -> io::Result<(Vec<FsEntry>, String, u64, R)> {
    let mut archive = tar::Archive::new(HashingReader::new(r));
    let mut entries = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        if entries.len() >= MAX_ENTRIES_PER_LAYER {
            return Err(io::Error::other(format!(
                "more than {MAX_ENTRIES_PER_LAYER} entries in one layer"
            )));
        }
        let h = entry.header();
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                EntryKind::File
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            _ => EntryKind::Other,
        };
        let path = normalize_path(&entry.path()?.to_string_lossy());
        if path == "/" {
            continue;
        }
        let link = match kind {
            EntryKind::Symlink => entry.link_name()?.map(|l| l.to_string_lossy().into_owned()),
            // Hardlink names are archive paths, like entry paths.
            EntryKind::Hardlink => entry
                .link_name()?
                .map(|l| normalize_path(&l.to_string_lossy())),
            _ => None,
        };
        entries.push(FsEntry {
            path,
            kind,
            mode: h.mode().unwrap_or(0),
            size: entry.size(),
            link,
        });
        // Dropping the entry lets the archive skip its contents by reading through them.
    }
    let mut tar_stream = archive.into_inner();
    // Count the end-of-archive blocks and padding too: the diff ID covers the whole stream.
    io::copy(&mut tar_stream, &mut io::sink())?;
    let (diff_id, size, inner) = tar_stream.finish();
    Ok((entries, diff_id, size, inner))
}

/// Blocking reader fed by the async download through a bounded channel.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tarball() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "./bin/", io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        let body = vec![7u8; 5000];
        h.set_size(body.len() as u64);
        b.append_data(&mut h, "bin/busybox", body.as_slice())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, "bin/sh", "busybox").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_link(&mut h, "bin/ash", "./bin/busybox").unwrap();
        // A long path exercises GNU long-name records.
        let long = format!("usr/share/{}/file", "x".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1);
        b.append_data(&mut h, &long, &b"z"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn check(r: &ScanResult, raw: &[u8], tar: &[u8]) {
        assert_eq!(r.digest, crate::registry::client::sha256_digest(raw));
        assert_eq!(r.diff_id, crate::registry::client::sha256_digest(tar));
        assert_eq!(r.compressed_size, raw.len() as u64);
        assert_eq!(r.uncompressed_size, tar.len() as u64);
        let paths: Vec<(&str, EntryKind, Option<&str>)> = r
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind, e.link.as_deref()))
            .collect();
        assert_eq!(paths[0], ("/bin", EntryKind::Dir, None));
        assert_eq!(paths[1], ("/bin/busybox", EntryKind::File, None));
        assert_eq!(paths[2], ("/bin/sh", EntryKind::Symlink, Some("busybox")));
        assert_eq!(
            paths[3],
            ("/bin/ash", EntryKind::Hardlink, Some("/bin/busybox"))
        );
        assert!(paths[4].0.ends_with("/file") && paths[4].0.len() > 150);
        assert_eq!(r.entries[1].size, 5000);
        assert_eq!(r.entries[1].mode, 0o755);
    }

    #[test]
    fn scans_uncompressed_gzip_and_zstd() {
        let tar = tarball();
        let r = scan_reader(tar.as_slice(), "application/vnd.oci.image.layer.v1.tar").unwrap();
        assert_eq!(r.compression, Compression::None);
        check(&r, &tar, &tar);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let r = scan_reader(gz.as_slice(), "").unwrap();
        assert_eq!(r.compression, Compression::Gzip);
        check(&r, &gz, &tar);

        let zs = zstd::encode_all(tar.as_slice(), 3).unwrap();
        let r = scan_reader(zs.as_slice(), "application/vnd.oci.image.layer.v1.tar+gzip").unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        check(&r, &zs, &tar);
    }

    #[test]
    fn trailing_bytes_are_hashed() {
        let tar = tarball();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let r = scan_reader(gz.as_slice(), "").unwrap();
        assert_eq!(r.compressed_size, gz.len() as u64);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let tar = tarball();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let mut gz = gz.finish().unwrap();
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        gz[mid + 1] ^= 0xff;
        assert!(scan_reader(gz.as_slice(), "").is_err());
    }

    #[test]
    fn channel_reader_streams() {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let t = std::thread::spawn(move || {
            let mut r = ChannelReader::new(rx);
            let mut s = String::new();
            r.read_to_string(&mut s).map(|_| s)
        });
        tx.blocking_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.blocking_send(Ok(Bytes::from_static(b"cd"))).unwrap();
        drop(tx);
        assert_eq!(t.join().unwrap().unwrap(), "abcd");
    }
}
