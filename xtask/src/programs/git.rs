//! The fork's checkout, read with git2: HEAD, dirtiness, and the `origin` remote.

use anyhow::{bail, Context, Result};
use git2::{DiffFormat, DiffOptions, Repository, StatusOptions};
use sha2::{Digest, Sha256};
use std::path::Path;

pub struct Checkout {
    pub repo: Repository,
}

impl Checkout {
    pub fn open(path: &Path) -> Result<Checkout> {
        if !path.is_dir() {
            bail!("fork checkout {} does not exist: pass --fork PATH or set MCP_FORK_DIR", path.display());
        }
        let repo = Repository::open(path).map_err(|_| {
            anyhow::anyhow!("{} is not a git repository: point --fork at the fork's checkout", path.display())
        })?;
        Ok(Checkout { repo })
    }

    pub fn head_sha(&self) -> Result<String> {
        let head = self.repo.head().context("the fork has no commit yet: commit before building")?;
        let commit = head.peel_to_commit().context("HEAD does not point at a commit")?;
        Ok(commit.id().to_string())
    }

    /// HEAD's commit time (seconds since the epoch), as `SOURCE_DATE_EPOCH` would be.
    pub fn head_time(&self) -> Result<i64> {
        let head = self.repo.head().context("the fork has no commit yet: commit before building")?;
        Ok(head.peel_to_commit().context("HEAD does not point at a commit")?.time().seconds())
    }

    pub fn is_dirty(&self) -> Result<bool> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        Ok(!self.repo.statuses(Some(&mut opts))?.is_empty())
    }

    /// First 8 hex digits of a sha256 over the uncommitted diff (staged and unstaged, against HEAD)
    /// including the content of untracked files: equal dirty states share it, different ones don't.
    pub fn dirty_hash(&self) -> Result<String> {
        let head_tree = self.repo.head()?.peel_to_tree()?;
        let mut opts = DiffOptions::new();
        opts.include_untracked(true).recurse_untracked_dirs(true).show_untracked_content(true).show_binary(true);
        let diff = self.repo.diff_tree_to_workdir_with_index(Some(&head_tree), Some(&mut opts))?;
        let mut hasher = Sha256::new();
        diff.print(DiffFormat::Patch, |_, _, line| {
            hasher.update([line.origin() as u8]);
            hasher.update(line.content());
            true
        })?;
        Ok(hex(&hasher.finalize())[..8].to_string())
    }

    /// `dev-<short sha>`, or with `allow_dirty` on a dirty tree `dev-<short sha>-dirty-<hash>`.
    pub fn image_tag(&self, allow_dirty: bool) -> Result<(String, String)> {
        let sha = self.head_sha()?;
        let short = &sha[..7];
        if !self.is_dirty()? {
            return Ok((format!("dev-{short}"), sha));
        }
        if !allow_dirty {
            bail!("the fork has uncommitted changes (modified, staged or untracked files): commit them, or pass --allow-dirty");
        }
        Ok((format!("dev-{short}-dirty-{}", self.dirty_hash()?), sha))
    }

    pub fn origin_url(&self) -> Option<String> {
        self.repo.find_remote("origin").ok()?.url().ok().map(str::to_string)
    }
}

/// Host and path of a remote URL in any of git's forms (scp-like ssh, ssh://, https://).
fn host_and_path(url: &str) -> Option<(String, String)> {
    let url = url.trim();
    let (host, path) = if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host.to_string(), path.to_string())
    } else {
        let (userhost, path) = url.split_once(':')?;
        (userhost.rsplit('@').next()?.to_string(), path.to_string())
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).to_string();
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some((host, path))
}

/// The owner in `git@github.com:alice/repo.git`, `https://github.com/alice/repo`, ...
pub fn owner_from_url(url: &str) -> Option<String> {
    let (_, path) = host_and_path(url)?;
    let (owner, _) = path.split_once('/')?;
    (!owner.is_empty()).then(|| owner.to_string())
}

/// The web URL of a remote: `git@github.com:alice/repo.git` -> `https://github.com/alice/repo`.
pub fn https_url(url: &str) -> Option<String> {
    let (host, path) = host_and_path(url)?;
    Some(format!("https://{host}/{path}"))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_forms() {
        for url in [
            "git@github.com:alice/kubernetes-mcp-server.git",
            "git@github.com:alice/kubernetes-mcp-server",
            "ssh://git@github.com/alice/kubernetes-mcp-server.git",
            "ssh://git@github.com:22/alice/kubernetes-mcp-server",
            "https://github.com/alice/kubernetes-mcp-server.git",
            "https://github.com/alice/kubernetes-mcp-server",
            "https://bob:secret@github.com/alice/kubernetes-mcp-server/",
        ] {
            assert_eq!(owner_from_url(url).as_deref(), Some("alice"), "{url}");
            assert_eq!(https_url(url).as_deref(), Some("https://github.com/alice/kubernetes-mcp-server"), "{url}");
        }
        assert_eq!(owner_from_url("/srv/git/repo.git"), None);
        assert_eq!(owner_from_url("not a url"), None);
    }
}

#[cfg(test)]
mod repo_tests {
    use super::*;
    use std::fs;

    fn repo() -> (tempfile::TempDir, Checkout, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        fs::write(dir.path().join("a.txt"), "one\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("T", "t@example.com").unwrap();
        let sha = repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap().to_string();
        let checkout = Checkout::open(dir.path()).unwrap();
        (dir, checkout, sha)
    }

    fn dirty_tag(c: &Checkout) -> String {
        c.image_tag(true).unwrap().0
    }

    #[test]
    fn clean_tree_gets_the_short_sha() {
        let (_dir, c, sha) = repo();
        assert_eq!(c.image_tag(false).unwrap(), (format!("dev-{}", &sha[..7]), sha.clone()));
        assert_eq!(c.image_tag(true).unwrap().0, format!("dev-{}", &sha[..7]));
    }

    #[test]
    fn modified_staged_and_untracked_are_dirty() {
        let (dir, c, sha) = repo();
        fs::write(dir.path().join("a.txt"), "two\n").unwrap();
        let err = c.image_tag(false).unwrap_err().to_string();
        assert!(err.contains("uncommitted changes") && err.contains("--allow-dirty"), "{err}");
        let modified = dirty_tag(&c);
        assert!(modified.starts_with(&format!("dev-{}-dirty-", &sha[..7])), "{modified}");
        assert_eq!(modified.len(), "dev-".len() + 7 + "-dirty-".len() + 8);

        let mut index = c.repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();
        assert!(c.image_tag(false).is_err(), "staged change is dirty");
        assert_eq!(dirty_tag(&c), modified, "staging the same change keeps the same state");

        fs::write(dir.path().join("a.txt"), "one\n").unwrap();
        let mut index = c.repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();
        assert!(!c.is_dirty().unwrap());
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/new.txt"), "x\n").unwrap();
        assert!(c.image_tag(false).is_err(), "untracked file is dirty");
        let untracked = dirty_tag(&c);
        fs::write(dir.path().join("sub/new.txt"), "y\n").unwrap();
        assert_ne!(dirty_tag(&c), untracked, "untracked content counts");
    }

    #[test]
    fn dirty_states_have_distinct_stable_tags() {
        let (dir, c, _) = repo();
        fs::write(dir.path().join("a.txt"), "two\n").unwrap();
        let first = dirty_tag(&c);
        assert_eq!(dirty_tag(&c), first, "same state, same tag");
        fs::write(dir.path().join("a.txt"), "three\n").unwrap();
        let second = dirty_tag(&c);
        assert_ne!(first, second);
        fs::write(dir.path().join("a.txt"), "two\n").unwrap();
        assert_eq!(dirty_tag(&c), first, "back to the first state, back to its tag");
    }

    #[test]
    fn ignored_files_are_not_dirty() {
        let (dir, c, _) = repo();
        fs::write(dir.path().join(".git/info/exclude"), "build/\n").unwrap();
        fs::create_dir(dir.path().join("build")).unwrap();
        fs::write(dir.path().join("build/out"), "bin\n").unwrap();
        assert!(!c.is_dirty().unwrap());
    }

    #[test]
    fn origin_remote_is_read() {
        let (_dir, c, _) = repo();
        assert_eq!(c.origin_url(), None);
        c.repo.remote("origin", "git@github.com:alice/kmcp.git").unwrap();
        assert_eq!(c.origin_url().as_deref(), Some("git@github.com:alice/kmcp.git"));
    }
}
