//! The house's shape as data: the layers of `xtask/src` (declared once, here), the import edges
//! between its files (from their `crate::`, `super::` and child-module paths), and what breaks the
//! shape: an import against the layer order, an import of a task from outside it, a circle.

use std::collections::{BTreeMap, BTreeSet};

/// The folders of `xtask/src`, lowest first: a file may import files of its own layer and of the
/// layers under it; a task's files are imported only by that task's own files.
pub const LAYERS: [&str; 8] = ["common", "programs", "oci", "cluster", "server", "plan", "local", "tasks"];

/// The module a file under `src` holds: `tasks/up/read.rs` is tasks::up::read, `tasks/up/mod.rs`
/// is tasks::up, `lib.rs` and `main.rs` the crate's root.
fn module_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// Expands `a::b::{c, d::{e, f}}` (the text after a path's first `::`) into full paths.
fn expand(prefix: &[String], text: &str, out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(&path, group[start..i].trim(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&path, group[start..i].trim(), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let name = ident(rest);
        if name.is_empty() || name == "self" {
            out.push(path);
            return;
        }
        path.push(name.to_string());
        match rest[name.len()..].strip_prefix("::") {
            Some(more) => rest = more,
            None => {
                out.push(path);
                return;
            }
        }
    }
}

/// The module paths a file names outside its tests: `crate::...`, `super::...`, and `use x::...`
/// of a child module `x` it declares.
fn named(path: &str, text: &str) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let me = module_of(path);
    let children: Vec<&str> = code
        .lines()
        .filter_map(|l| {
            l.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ").strip_prefix("mod ")
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let mut out = Vec::new();
    for (i, _) in code.match_indices("::") {
        let before = &code[..i];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
        let head = &before[start..];
        let after = &code[i + 2..];
        if before[..start].ends_with("::") {
            continue;
        }
        let base = match head {
            "crate" => Vec::new(),
            "super" => me[..me.len().saturating_sub(1)].to_vec(),
            h if children.contains(&h) && before[..start].trim_end().ends_with("use") => {
                let mut p = me.clone();
                p.push(h.to_string());
                p
            }
            _ => continue,
        };
        let text_end = after.find(';').unwrap_or(after.len());
        expand(&base, &after[..text_end], &mut out);
    }
    out
}

/// The file a module path lands in: the longest prefix that is a file's module.
fn resolve<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

/// Which file imports which (each edge once), for the files given as (path under src, text).
pub fn edges(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> =
        files.iter().filter(|(p, _)| p != "main.rs").map(|(p, _)| (module_of(p), p.clone())).collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let to: BTreeSet<String> =
            named(path, text).iter().filter_map(|n| resolve(n, &modules)).filter(|t| *t != path).cloned().collect();
        out.insert(path.clone(), to);
    }
    out
}

fn layer(path: &str) -> Option<usize> {
    let first = path.split('/').next()?;
    LAYERS.iter().position(|l| *l == first).filter(|_| path.contains('/'))
}

/// `tasks/up/read.rs` → `tasks/up`; `tasks/down.rs` → `tasks/down`.
fn task_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("tasks/")?;
    Some(format!("tasks/{}", rest.split('/').next()?.trim_end_matches(".rs")))
}

/// Every break of the house's shape among `files`, one line each.
pub fn violations(files: &[(String, String)]) -> Vec<String> {
    let graph = edges(files);
    let mut out = Vec::new();
    for (from, tos) in &graph {
        for to in tos {
            match (layer(from), layer(to)) {
                (Some(a), Some(b)) if b > a => {
                    out.push(format!("{from} imports {to}: {} is above {}", LAYERS[b], LAYERS[a]))
                }
                _ => {}
            }
            if from != "main.rs" && task_of(to).is_some() && task_of(from) != task_of(to) {
                out.push(format!("{from} imports the task file {to}: nothing imports a task"));
            }
        }
    }
    out.extend(circles(&graph).into_iter().map(|c| format!("import circle: {}", c.join(" -> "))));
    out
}

/// The circles of a graph, each as its files from its smallest back to it.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn walk(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == node) {
            let mut circle = stack[i..].to_vec();
            let least = (0..circle.len()).min_by_key(|&j| &circle[j]).unwrap_or(0);
            circle.rotate_left(least);
            circle.push(circle[0].clone());
            found.insert(circle);
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            walk(next, graph, stack, done, found);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let (mut done, mut found) = (BTreeSet::new(), BTreeSet::new());
    for node in graph.keys() {
        walk(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found.into_iter().collect()
}
