//! House rules, checked: every Rust source opens with a `//!` line saying what it is for, and the
//! versions that several places need (the server binary's, helm's) are written in one place.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for d in ["xtask/src", "xtask/tests", "xtask/benches"] {
        rust_files(&root().join(d), &mut files);
    }
    files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let missing: Vec<_> = sources().into_iter().filter(|(_, t)| !t.starts_with("//! ")).map(|(f, _)| f).collect();
    assert!(missing.is_empty(), "no `//!` first line: {missing:?}");
}

#[test]
fn versions_live_in_one_place() {
    let versions = [
        (xtask::selftest::SERVER_VERSION, "xtask/src/selftest.rs"),
        (xtask::selftest::SERVER_VERSION_ARM64, "xtask/src/selftest.rs"),
        (xtask::testbed::HELM3, "xtask/src/testbed.rs"),
        (xtask::testbed::HELM4, "xtask/src/testbed.rs"),
    ];
    for (version, home) in versions {
        let quoted = format!("\"{}\"", version.trim_start_matches('v'));
        let quoted_v = format!("\"v{}\"", version.trim_start_matches('v'));
        let elsewhere: Vec<_> = sources()
            .into_iter()
            .filter(|(f, t)| !f.ends_with(home) && (t.contains(&quoted) || t.contains(&quoted_v)))
            .map(|(f, _)| f)
            .collect();
        assert!(elsewhere.is_empty(), "{version} is written outside {home}: {elsewhere:?}");
    }
}
