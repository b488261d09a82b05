//! The workspace's promises: the `cargo xtask` alias, help listing every task, and a dependency
//! tree without OpenSSL or aws-lc.

mod support;

#[test]
fn no_arguments_prints_help_listing_every_task() {
    let out = support::Xtask::new(None).run(Vec::<String>::new());
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Usage: cargo xtask <COMMAND>"), "{}", out.stderr);
    for task in ["image", "up", "down", "status", "verify", "test"] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{task} ")))
            .unwrap_or_else(|| panic!("{task} not listed:\n{}", out.stderr));
        assert!(line.split_whitespace().count() > 3, "{task} has no description: {line}");
    }
}

#[test]
fn cargo_alias_runs_the_xtask_package() {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.cargo/config.toml")).unwrap();
    assert!(config.lines().any(|l| l.trim() == r#"xtask = "run --package xtask --""#), "{config}");
}

#[test]
fn lockfile_has_no_openssl_and_no_aws_lc() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    let names: Vec<&str> =
        lock.lines().filter_map(|l| l.strip_prefix("name = \"")).map(|n| n.trim_end_matches('"')).collect();
    assert!(names.contains(&"ring"));
    for banned in ["openssl", "openssl-sys", "native-tls", "aws-lc-rs", "aws-lc-sys"] {
        assert!(!names.contains(&banned), "{banned} is in Cargo.lock");
    }
}
