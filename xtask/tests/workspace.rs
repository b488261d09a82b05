//! The workspace's promises: the `cargo xtask` alias, help listing every task, a dependency tree
//! without OpenSSL or aws-lc, and a guard that builds from what is committed.

extern crate kmcp_test_support as support;

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

/// The guard builds from what is committed, on a machine with an empty module cache: it imports
/// the standard library only, so its go.mod requires nothing and Go has no go.sum to write; a
/// module it came to need would have to bring its go.sum along.
#[test]
fn the_guard_needs_no_module_beyond_what_is_committed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../guard");
    let go_mod = std::fs::read_to_string(format!("{dir}/go.mod")).unwrap();
    let main = std::fs::read_to_string(format!("{dir}/main.go")).unwrap();
    let imports = main.split("import (").nth(1).and_then(|r| r.split(')').next()).expect("main.go: import ( ... )");
    let outside_std: Vec<&str> = imports
        .lines()
        .filter_map(|l| l.trim().split('"').nth(1))
        .filter(|path| path.split('/').next().is_some_and(|first| first.contains('.')))
        .collect();
    let requires = go_mod.lines().any(|l| l.trim_start().starts_with("require"));
    let has_sum = std::path::Path::new(&format!("{dir}/go.sum")).is_file();
    assert!(
        (outside_std.is_empty() && !requires) || has_sum,
        "guard/ needs modules {outside_std:?} (require in go.mod: {requires}) without a go.sum: run `go mod tidy` in guard/ and commit go.sum"
    );
    // And for real, as a fresh machine builds it: no module cache, no module proxy, go.mod and
    // go.sum (when there is one) taken as they are; the compiled packages from the tests' own cache.
    let empty = tempfile::tempdir().unwrap();
    let build_cache = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/go/cache");
    let out = std::process::Command::new("go")
        .args(["build", "-o", "/dev/null", "."])
        .current_dir(dir)
        .env("GOCACHE", build_cache)
        .env("CGO_ENABLED", "0")
        .env("GOMODCACHE", empty.path().join("mod"))
        .env("GOPATH", empty.path().join("path"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("go: the tests need Go");
    assert!(
        out.status.success(),
        "guard/ does not build from what is committed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
