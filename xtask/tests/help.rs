//! Every task's `--help` says what it does (the chart default, `--node-ip`, root and Linux for
//! `dev` and `test`), every flag has a description, and `--version` names the commit.

extern crate kmcp_test_support as support;

fn help(args: &[&str]) -> String {
    let out = support::Xtask::new(None).run(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(out.code, 0, "{args:?}: {}", out.all());
    out.stdout
}

/// Every `--flag` in a help text has a description: on its line, or on the next, indented deeper.
fn every_flag_described(task: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let flag = line.trim_start();
        if !(flag.starts_with("--") || flag.starts_with("-h") || flag.starts_with("-V")) {
            continue;
        }
        let inline = flag.split_whitespace().skip_while(|w| w.starts_with('-') || w.starts_with('<')).count() > 1;
        let indent = |l: &str| l.len() - l.trim_start().len();
        let next = lines.get(i + 1).filter(|n| !n.trim().is_empty() && indent(n) > indent(line));
        assert!(inline || next.is_some(), "{task}: {line:?} has no description");
    }
}

#[test]
fn every_task_says_what_it_does() {
    let top = help(&["--help"]);
    for (task, says) in [
        ("up", "the fork's chart"),
        ("dev", "(Linux, root)"),
        ("test", "(Linux, root)"),
        ("image", "linux/arm64"),
        ("down", "Remove the release"),
        ("status", "nodePort"),
        ("verify", "Prove a deployment"),
    ] {
        let line = top.lines().find(|l| l.trim_start().starts_with(&format!("{task} "))).unwrap();
        assert!(line.contains(says), "{task}: {line}");
        let text = help(&[task, "--help"]);
        every_flag_described(task, &text);
    }
    let up = help(&["up", "--help"]);
    assert!(up.contains("the fork's chart that `image` pushed beside the image"), "{up}");
    assert!(!up.contains("the upstream chart") && !up.contains("[default: pinned in deploy/chart.yaml]"), "{up}");
    assert!(up.contains("without it, --allow-from is needed"), "{up}");
    for flag in ["--enable-tool <NAME>", "--client <claude|vscode|cursor|inspector>", "--verify"] {
        assert!(up.contains(flag), "{flag}: {up}");
    }
    assert!(!up.contains("--local-environment"), "dev's own flag stays hidden");
    assert!(help(&["dev", "--help"]).starts_with("Try the fork on this machine (Linux, root)"));
    let test = help(&["test", "--help"]);
    assert!(test.starts_with("Run the test suite on real parts (Linux, root)") && test.contains("Go parts"), "{test}");
    assert!(help(&["image", "--help"]).contains("--no-build-cache"));
    assert!(help(&["status", "--help"]).contains("the URL is shown with <node-ip>"));
}

#[test]
fn version_names_the_commit() {
    let out = help(&["--version"]);
    let commit = out.trim().strip_prefix(&format!("cargo xtask {} (commit ", env!("CARGO_PKG_VERSION"))).unwrap();
    let commit = commit.strip_suffix(')').unwrap();
    assert!(commit == "unknown" || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())), "{out}");
}
