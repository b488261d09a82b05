//! The test support (a crate of its own) exposes only what the tests use: no dead code hides there.

#[test]
fn the_test_support_exposes_only_what_the_tests_use() {
    let support = super::root().join("xtask/tests/support");
    let outside: String = super::sources()
        .into_iter()
        .filter(|(f, _)| !f.starts_with(&support) && !f.starts_with(super::root().join("xtask/src")))
        .map(|(_, t)| t)
        .collect();
    let mut files = Vec::new();
    super::files_with(&support, "rs", &mut files);
    let items: Vec<(String, String)> =
        files.iter().flat_map(|f| super::public_items(&std::fs::read_to_string(f).unwrap())).collect();
    assert!(items.len() > 20, "{items:?}");
    let mut used: Vec<&str> = items.iter().filter(|i| super::has_word(&outside, &i.0)).map(|i| i.0.as_str()).collect();
    let signatures: String = items.iter().filter(|i| used.contains(&i.0.as_str())).map(|i| i.1.as_str()).collect();
    used.extend(items.iter().filter(|i| super::has_word(&signatures, &i.0)).map(|i| i.0.as_str()));
    let unused: Vec<&str> = items.iter().filter(|i| !used.contains(&i.0.as_str())).map(|i| i.0.as_str()).collect();
    assert!(
        unused.is_empty(),
        "public in the test support, but no test uses them: {unused:?}; make them pub(crate) or remove them"
    );
}
