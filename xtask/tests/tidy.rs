//! House rules, checked: every Rust source opens with a `//!` line saying what it is for; the
//! versions that several places need (the server binary's, helm's, the charts') are written in one
//! place; imports run down the layers of `xtask/src` (declared in `tidy/house.rs`), with no circle
//! and no task importing another; no source is over 300 lines; the library exposes only what the
//! binary and the tests use; Linux-only calls (`prctl`, `/proc/`, `ip`) only in Linux-only modules.

#[path = "tidy/house.rs"]
mod house;
#[path = "tidy/linux_only.rs"]
mod linux_only;
#[path = "tidy/support_exposure.rs"]
mod support_exposure;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The files under `dir` whose extension is `ext`.
fn files_with(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_with(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for d in ["xtask/src", "xtask/tests", "xtask/benches"] {
        files_with(&root().join(d), "rs", &mut files);
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
        (xtask::tasks::selftest::SERVER_VERSION, "xtask/src/tasks/selftest/mod.rs"),
        (xtask::tasks::selftest::SERVER_VERSION_ARM64, "xtask/src/tasks/selftest/mod.rs"),
        (xtask::tasks::selftest::SERVER_VERSION_OLDEST, "xtask/src/tasks/selftest/mod.rs"),
        (xtask::local::helm::HELM3, "xtask/src/local/helm.rs"),
        (xtask::local::helm::HELM4, "xtask/src/local/helm.rs"),
    ];
    for (version, home) in versions {
        let yaml = format!("{}\"", version.trim_start_matches('v'));
        let in_yaml: Vec<_> = files_ending(&[".yaml", ".yml"]).into_iter().filter(|(_, t)| t.contains(&yaml)).collect();
        assert!(
            in_yaml.is_empty(),
            "{version} is written in {:?}: take it from {home}",
            in_yaml.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
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

/// Files under `xtask/` and `deploy/` whose names end with one of `endings`, with their text.
fn files_ending(endings: &[&str]) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, endings: &[&str], out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, endings, out);
            } else if endings.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for d in ["xtask", "deploy"] {
        walk(&root().join(d), endings, &mut files);
    }
    files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
}

#[test]
fn chart_versions_live_in_one_place() {
    // The production pin: deploy/chart.yaml, read by chart.rs (include_str). The test chart's:
    // its Chart.yaml, read by the tests' support.
    let pin = std::fs::read_to_string(root().join("deploy/chart.yaml")).unwrap();
    let test_chart = std::fs::read_to_string(root().join("xtask/tests/support/chart/Chart.yaml")).unwrap();
    for meta in [pin, test_chart] {
        let version = meta.lines().find_map(|l| l.strip_prefix("version: ")).unwrap().trim().to_string();
        let quoted = format!("\"{version}\"");
        for (file, text) in sources() {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            assert!(!code.contains(&quoted), "chart version {version} written in {}", file.display());
        }
    }
}

/// The modules `main.rs` hands a task to.
fn task_modules() -> Vec<String> {
    let main = std::fs::read_to_string(root().join("xtask/src/main.rs")).unwrap();
    let line = main.lines().find(|l| l.starts_with("use xtask::tasks::{")).expect("main.rs: use xtask::tasks::{...}");
    line.trim_start_matches("use xtask::tasks::{")
        .trim_end_matches("};")
        .split(',')
        .map(|t| t.trim().to_string())
        .collect()
}

/// The sources of `xtask/src`, each with its path under `src`.
fn src_files() -> Vec<(String, String)> {
    let src = root().join("xtask/src");
    let mut files = Vec::new();
    files_with(&src, "rs", &mut files);
    files
        .into_iter()
        .map(|f| (f.strip_prefix(&src).unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&f).unwrap()))
        .collect()
}

#[test]
fn imports_run_down_the_layers_with_no_circle_and_no_task_imports_another() {
    let tasks = task_modules();
    assert!(tasks.len() >= 5 && tasks.contains(&"up".to_string()), "{tasks:?}");
    let files = src_files();
    let folders: BTreeSet<String> =
        files.iter().filter_map(|(p, _)| p.split_once('/').map(|(d, _)| d.to_string())).collect();
    assert_eq!(
        folders,
        house::LAYERS.iter().map(|l| l.to_string()).collect(),
        "the folders of xtask/src are the layers"
    );
    let broken = house::violations(&files);
    assert!(broken.is_empty(), "the house is out of shape:\n{}", broken.join("\n"));
    let edges = house::edges(&files);
    assert!(edges["tasks/up/mod.rs"].contains("plan/execute.rs"), "the edges are read: {edges:?}");
}

#[test]
fn the_house_check_fails_on_a_circle_an_upward_import_and_a_task_import() {
    let files: Vec<(String, String)> = [
        ("cluster/lock.rs", "use crate::plan::data::{Action, Step};\nuse crate::oci::a::X;"),
        ("oci/a.rs", "use crate::{oci::b::Y, programs::shell::Shell};"),
        ("oci/b.rs", "pub fn y() { crate::oci::a::x() }"),
        ("plan/data.rs", ""),
        ("programs/shell.rs", ""),
        ("server/proof.rs", "use crate::tasks::up::Args;"),
        ("tasks/up/mod.rs", "mod read;\nuse read::Planner;"),
        ("tasks/up/read.rs", "use super::Args;"),
        ("tasks/down.rs", "use crate::tasks::up::read::Planner;"),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    let broken = house::violations(&files);
    let expected = [
        "cluster/lock.rs imports plan/data.rs: plan is above cluster",
        "server/proof.rs imports tasks/up/mod.rs: tasks is above server",
        "server/proof.rs imports the task file tasks/up/mod.rs: nothing imports a task",
        "tasks/down.rs imports the task file tasks/up/read.rs: nothing imports a task",
        "import circle: oci/a.rs -> oci/b.rs -> oci/a.rs",
        "import circle: tasks/up/mod.rs -> tasks/up/read.rs -> tasks/up/mod.rs",
    ];
    for e in expected {
        assert!(broken.iter().any(|b| b == e), "missed: {e}\nfound:\n{}", broken.join("\n"));
    }
    assert_eq!(broken.len(), expected.len(), "{}", broken.join("\n"));
}

#[test]
fn linux_only_calls_live_in_linux_only_modules() {
    let files = src_files();
    let found = linux_only::unguarded(&files);
    assert!(found.is_empty(), "Linux-only calls outside a #[cfg(target_os = \"linux\")] module: {found:?}");
    // The check itself: it flags each mark outside, and none inside, a Linux-only module.
    let fake: Vec<(String, String)> = [
        ("lib.rs", "pub mod a;\n#[cfg(target_os = \"linux\")]\npub mod b;"),
        ("a/mod.rs", "mod c;\n#[cfg(target_os = \"linux\")]\nmod d;\nfn f() { unsafe { libc::prctl(1) }; }"),
        ("a/c.rs", "fn g() { std::fs::read(\"/proc/self/stat\"); cmd!(sh, \"ip -o addr\"); }"),
        ("a/d.rs", "fn h() { libc::gettid(); }"),
        ("b/mod.rs", "mod e;"),
        ("b/e.rs", "fn i() { std::fs::read(\"/proc/mounts\"); }"),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    assert_eq!(linux_only::unguarded(&fake), ["a/mod.rs: libc::prctl", "a/c.rs: \"/proc/", "a/c.rs: \"ip "]);
}

#[test]
fn no_source_is_over_300_lines() {
    let mut files = sources();
    let mut go = Vec::new();
    files_with(&root().join("testcluster"), "go", &mut go);
    files.extend(go.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())));
    let long: Vec<_> = files
        .iter()
        .filter(|(_, text)| text.lines().count() > 300)
        .map(|(f, text)| format!("{}: {} lines", f.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these by what each part does: {long:?}");
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `name` as a whole word of `text`.
fn has_word(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_ident_char)
            && !text[i + name.len()..].chars().next().is_some_and(is_ident_char)
    })
}

/// The `pub` (not `pub(crate)`) items and fields of a source, outside its tests: name and line.
fn public_items(text: &str) -> Vec<(String, String)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = Vec::new();
    for line in code.lines() {
        let Some(rest) = line.trim_start().strip_prefix("pub ") else { continue };
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let kinds = ["fn ", "struct ", "enum ", "const ", "static ", "trait ", "type ", "mod "];
        let name = match kinds.iter().find_map(|k| rest.strip_prefix(k)) {
            Some(after) => after.chars().take_while(|c| is_ident_char(*c)).collect::<String>(),
            None => {
                let field: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
                if !rest[field.len()..].starts_with(':') {
                    continue;
                }
                field
            }
        };
        out.push((name, line.to_string()));
    }
    out
}

/// The file of module `m` declared in `dir`: `m.rs`, or `m/mod.rs`.
fn module_file(dir: &Path, m: &str) -> PathBuf {
    let file = dir.join(format!("{m}.rs"));
    if file.exists() {
        file
    } else {
        dir.join(m).join("mod.rs")
    }
}

/// The modules reachable from outside the crate: `pub mod` lines, followed from `lib.rs` down; each
/// with the file that holds it.
fn public_modules(file: &Path, children: &Path, out: &mut Vec<(String, PathBuf)>) {
    let text = std::fs::read_to_string(file).unwrap();
    for m in text.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';')) {
        let path = module_file(children, m);
        out.push((m.to_string(), path.clone()));
        public_modules(&path, &children.join(m), out);
    }
}

#[test]
fn the_library_exposes_only_what_the_binary_and_the_tests_use() {
    let src = root().join("xtask/src");
    let outside: String =
        sources().into_iter().filter(|(f, _)| !f.starts_with(&src) || f.ends_with("main.rs")).map(|(_, t)| t).collect();
    let mut modules = Vec::new();
    public_modules(&src.join("lib.rs"), &src, &mut modules);
    assert!(modules.len() > 10, "{modules:?}");
    for (m, _) in &modules {
        assert!(
            has_word(&outside, m),
            "pub mod {m} is used by neither main.rs nor the tests: make it `pub(crate) mod {m}`"
        );
    }
    let items: Vec<(String, String, String)> = modules
        .iter()
        .flat_map(|(m, path)| {
            let text = std::fs::read_to_string(path).unwrap();
            public_items(&text).into_iter().map(move |(name, line)| (m.to_string(), name, line))
        })
        .collect();
    // Used: named outside, or named in the declaration of something used (a method's return type).
    let mut used: Vec<&str> = items.iter().filter(|i| has_word(&outside, &i.1)).map(|i| i.1.as_str()).collect();
    let signatures: String = items.iter().filter(|i| used.contains(&i.1.as_str())).map(|i| i.2.as_str()).collect();
    used.extend(items.iter().filter(|i| has_word(&signatures, &i.1)).map(|i| i.1.as_str()));
    let unused: Vec<String> =
        items.iter().filter(|i| !used.contains(&i.1.as_str())).map(|i| format!("{}::{}", i.0, i.1)).collect();
    assert!(unused.is_empty(), "public, but neither main.rs nor the tests use them: {unused:?}; make them pub(crate)");
    assert!(has_word("a b_c", "b_c") && !has_word("ab_c", "b_c"));
}
