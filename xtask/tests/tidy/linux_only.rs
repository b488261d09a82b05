//! What runs only on Linux stays in Linux-only modules: a module is Linux-only when its declaration
//! carries `#[cfg(target_os = "linux")]` (or its parent is Linux-only); anywhere else, a
//! `libc::prctl`, `libc::gettid`, a `/proc/` path or an `ip` command is a build or a run that
//! breaks on a Mac.

/// The module file that declares `path` (`a/b.rs` and `a/b/mod.rs` are declared in `a/mod.rs`,
/// `a/mod.rs` and `a.rs` in `lib.rs`), and the name it declares.
fn parent(path: &str) -> Option<(String, String)> {
    let trimmed = path.trim_end_matches("/mod.rs").trim_end_matches(".rs");
    if matches!(path, "lib.rs" | "main.rs") {
        return None;
    }
    let (dir, name) = match trimmed.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/mod.rs"), name.to_string()),
        None => ("lib.rs".to_string(), trimmed.to_string()),
    };
    Some((dir, name))
}

fn declared_linux_only(text: &str, name: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.iter().enumerate().any(|(i, l)| {
        let declares = l.trim_start_matches("pub ").trim_start_matches("pub(crate) ").trim_start_matches("pub(super) ")
            == format!("mod {name};");
        declares && i > 0 && lines[i - 1] == "#[cfg(target_os = \"linux\")]"
    })
}

fn is_linux_only(path: &str, files: &[(String, String)]) -> bool {
    let Some((declarer, name)) = parent(path) else { return false };
    let Some((_, text)) = files.iter().find(|(p, _)| *p == declarer) else { return false };
    declared_linux_only(text, &name) || is_linux_only(&declarer, files)
}

/// Each use of a Linux-only interface outside a Linux-only module: `file: what`.
pub fn unguarded(files: &[(String, String)]) -> Vec<String> {
    let marks = ["libc::prctl", "libc::gettid", "\"/proc/", "\"ip\"", "\"ip "];
    let mut out = Vec::new();
    for (path, text) in files {
        if is_linux_only(path, files) {
            continue;
        }
        for mark in marks.iter().filter(|m| text.contains(*m)) {
            out.push(format!("{path}: {mark}"));
        }
    }
    out
}
