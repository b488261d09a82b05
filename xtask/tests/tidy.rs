//! House rules, checked: every Rust source opens with a `//!` line saying what it is for; the
//! versions that several places need (the server binary's, helm's, the charts') are written in one
//! place; no task module imports another; the library exposes only what the binary and the tests
//! use.

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
        (xtask::tasks::selftest::SERVER_VERSION, "xtask/src/tasks/selftest.rs"),
        (xtask::tasks::selftest::SERVER_VERSION_ARM64, "xtask/src/tasks/selftest.rs"),
        (xtask::testbed::parts::HELM3, "xtask/src/testbed/parts.rs"),
        (xtask::testbed::parts::HELM4, "xtask/src/testbed/parts.rs"),
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

/// The modules a source names through `crate::` (`crate::a::b`, `use crate::{a, b::C}`).
fn crate_modules(text: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        let (mut depth, mut start) = (1, true);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => start = true,
                c if start && (c.is_alphanumeric() || c == '_') => {
                    out.push(ident(&group[j..]));
                    start = false;
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn no_task_module_imports_another() {
    let tasks = task_modules();
    assert!(tasks.len() >= 5 && tasks.contains(&"up".to_string()), "{tasks:?}");
    for (file, text) in sources().into_iter().filter(|(f, _)| f.starts_with(root().join("xtask/src"))) {
        let me = file.file_stem().unwrap().to_string_lossy().to_string();
        let others: Vec<String> = crate_modules(&text).into_iter().filter(|m| tasks.contains(m) && *m != me).collect();
        assert!(
            others.is_empty(),
            "{} imports the task module(s) {others:?}: move what they share to a module of its own",
            file.display()
        );
    }
    assert_eq!(crate_modules("use crate::{a, b::{C, D}};\nx(crate::e::f)"), ["a", "b", "e"]);
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

#[test]
fn the_library_exposes_only_what_the_binary_and_the_tests_use() {
    let lib = std::fs::read_to_string(root().join("xtask/src/lib.rs")).unwrap();
    let outside: String = sources()
        .into_iter()
        .filter(|(f, _)| !f.starts_with(root().join("xtask/src")) || f.ends_with("main.rs"))
        .map(|(_, t)| t)
        .collect();
    let modules: Vec<&str> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';')).collect();
    for m in &modules {
        assert!(has_word(&outside, m), "pub mod {m} is used by neither main.rs nor the tests: make it `mod {m}`");
    }
    let items: Vec<(String, String, String)> = modules
        .iter()
        .flat_map(|m| {
            let text = std::fs::read_to_string(module_file(&root().join("xtask/src"), m)).unwrap();
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
