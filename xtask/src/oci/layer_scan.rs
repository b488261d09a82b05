//! One file looked up in an image layer's tar stream (gzip or plain), fed chunk by chunk: the
//! first bytes of a regular file, where a link points, or that a whiteout deleted it.

use anyhow::{bail, Context, Result};
use std::io::Read;
use tokio::sync::mpsc::Receiver;

pub enum Found {
    /// The file's first bytes (up to 64).
    Header(Vec<u8>),
    /// A symbolic or hard link to this path (cleaned, from the root).
    Link(String),
    /// A whiteout in this layer hides it (and every lower layer's copy).
    Deleted,
}

/// Looks for `want` (cleaned, from the root) in the layer arriving on `chunks`.
pub fn scan(chunks: Receiver<bytes::Bytes>, media_type: &str, want: &str) -> Result<Option<Found>> {
    let reader = Chunks { rx: chunks, chunk: bytes::Bytes::new() };
    let input: Box<dyn Read> = match media_type {
        m if m.ends_with("gzip") => Box::new(flate2::read::GzDecoder::new(reader)),
        m if m.ends_with("tar") || m.is_empty() => Box::new(reader),
        m => bail!("a layer of type {m} (not gzip or plain tar) cannot be read by this tool"),
    };
    let dir = want.rsplit_once('/').map_or("", |x| x.0);
    let mut hidden = false;
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().context("reading a layer")? {
        let mut entry = entry.context("reading a layer")?;
        let path = clean(&entry.path().context("reading a layer")?.to_string_lossy());
        if path == want {
            let header = entry.header();
            return Ok(Some(match header.entry_type() {
                tar::EntryType::Symlink => {
                    let target = entry.link_name()?.unwrap_or_default().to_string_lossy().to_string();
                    Found::Link(clean(&if target.starts_with('/') { target } else { format!("{dir}/{target}") }))
                }
                tar::EntryType::Link => Found::Link(clean(&entry.link_name()?.unwrap_or_default().to_string_lossy())),
                _ => {
                    let mut first = Vec::new();
                    entry.by_ref().take(64).read_to_end(&mut first)?;
                    Found::Header(first)
                }
            }));
        }
        let whited = |p: &str| path == join(p.rsplit_once('/').map_or("", |x| x.0), &format!(".wh.{}", base(p)));
        let opaque = path.strip_suffix("/.wh..wh..opq").is_some_and(|d| want.starts_with(&format!("{d}/")));
        if whited(want) || ancestors(dir).any(|a| whited(&a)) || opaque {
            hidden = true;
        }
    }
    Ok(hidden.then_some(Found::Deleted))
}

/// `/a/./b/../c/` as `a/c`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn base(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |x| x.1)
}

/// `a/b/c`, `a/b`, `a`.
fn ancestors(dir: &str) -> impl Iterator<Item = String> + '_ {
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    (1..=parts.len()).rev().map(move |n| parts[..n].join("/"))
}

struct Chunks {
    rx: Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn find(tar: Vec<u8>, want: &str) -> Option<Found> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let t = std::thread::spawn(move || {
            for c in tar.chunks(100) {
                if tx.blocking_send(bytes::Bytes::copy_from_slice(c)).is_err() {
                    break;
                }
            }
        });
        let found = scan(rx, "application/vnd.oci.image.layer.v1.tar", want).unwrap();
        t.join().unwrap();
        found
    }

    #[test]
    fn finds_files_links_and_whiteouts() {
        use tar::EntryType::{Regular, Symlink};
        let elf = b"\x7fELF and the rest of a long binary";
        let t = layer(&[("app/", tar::EntryType::Directory, b"", None), ("app/server", Regular, elf, None)]);
        assert!(matches!(find(t, "app/server"), Some(Found::Header(h)) if h == elf));
        let t = layer(&[("./app/kubernetes-mcp-server", Symlink, b"", Some("server"))]);
        assert!(matches!(find(t, "app/kubernetes-mcp-server"), Some(Found::Link(l)) if l == "app/server"));
        let t = layer(&[("app/.wh.server", Regular, b"", None)]);
        assert!(matches!(find(t, "app/server"), Some(Found::Deleted)));
        let t = layer(&[("app/.wh..wh..opq", Regular, b"", None)]);
        assert!(matches!(find(t, "app/server"), Some(Found::Deleted)));
        let t = layer(&[("other", Regular, b"x", None)]);
        assert!(find(t, "app/server").is_none());
        assert_eq!(clean("/a/./b/../c/"), "a/c");
    }
}
