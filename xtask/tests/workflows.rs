//! The GitHub workflows run the same tasks as people do (actionlint checks their syntax in
//! `cargo xtask test`; this checks what they do).

use serde_json::Value;

fn workflow(name: &str) -> Value {
    let path = format!("{}/../.github/workflows/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn runs(job: &Value) -> Vec<String> {
    job["steps"].as_array().unwrap().iter().filter_map(|s| s["run"].as_str()).map(str::to_string).collect()
}

#[test]
fn ci_runs_fmt_clippy_and_the_readme_test_command() {
    let ci = workflow("ci.yml");
    assert!(ci["on"].get("push").is_some() && ci["on"].get("pull_request").is_some());
    let steps = runs(&ci["jobs"]["test"]).join("\n");
    for cmd in ["cargo fmt --check", "cargo clippy --all-targets -- -D warnings", "cargo xtask test"] {
        assert!(steps.contains(cmd), "{cmd} missing");
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(readme.contains("```sh\ncargo xtask test\n```"));
    let ci_run = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/run")).unwrap();
    assert!(ci_run.lines().any(|l| l == "cargo xtask test"));
    let mac = &ci["jobs"]["macos"];
    assert_eq!(mac["runs-on"], "macos-latest");
    let steps = runs(mac).join("\n");
    for cmd in ["cargo build -p xtask", "cargo test -p xtask --lib", "cargo xtask image --fork \"$fork\" --dry-run"] {
        assert!(steps.contains(cmd), "macos: {cmd} missing");
    }
}

#[test]
fn image_builds_on_main_and_on_demand_with_package_write() {
    let image = workflow("image.yml");
    assert_eq!(image["on"]["push"]["branches"][0], "main");
    let inputs = &image["on"]["workflow_dispatch"]["inputs"];
    assert!(inputs.get("fork_repository").is_some() && inputs.get("fork_ref").is_some());
    assert!(inputs.get("registry").is_some(), "the workflow can push to another registry");
    assert!(image["jobs"]["image"]["env"]["MCP_REGISTRY"].as_str().unwrap().contains("inputs.registry"));
    assert_eq!(image["permissions"]["packages"], "write");
    let job = &image["jobs"]["image"];
    let steps = job["steps"].as_array().unwrap();
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert!(uses.iter().any(|u| u.starts_with("docker/setup-buildx-action@")));
    let qemu =
        steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("docker/setup-qemu-action@"))).unwrap();
    assert!(qemu["if"].as_str().unwrap().contains("cross"), "QEMU only when the Dockerfile does not cross-compile");
    let build = steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("cargo xtask image"))).unwrap();
    assert_eq!(build["env"]["GITHUB_TOKEN"], "${{ secrets.GITHUB_TOKEN }}");
    assert!(build["run"].as_str().unwrap().contains("GITHUB_STEP_SUMMARY"));
}

#[test]
fn e2e_runs_up_verify_up_down_down_on_k0s() {
    let e2e = workflow("e2e.yml");
    assert!(e2e["on"].get("workflow_dispatch").is_some());
    assert_eq!(e2e["on"]["workflow_run"]["workflows"][0], "image");
    let job = &e2e["jobs"]["e2e"];
    assert!(job["env"].get("KMCP_CHART_DIGEST").is_none(), "the chart comes with the image: no variable to set");
    // The runner's own k0s node by default; a given cluster's address and network from variables.
    assert_eq!(job["env"]["MCP_NODE_IP"], "${{ vars.MCP_NODE_IP || '127.0.0.1' }}");
    assert_eq!(job["env"]["MCP_ALLOW_FROM"], "${{ vars.MCP_ALLOW_FROM || '127.0.0.0/8' }}");
    let steps = runs(job);
    let order = [
        "k0s install controller --single",
        "cargo xtask up --verify",
        "cargo xtask up |",
        "grep -q '^up to date: nothing changed'",
        "cargo xtask down\n",
        "grep -q '^nothing to do'",
    ];
    let all = steps.join("\n") + "\n";
    let mut at = 0;
    for part in order {
        let found = all[at..].find(part).unwrap_or_else(|| panic!("{part:?} missing or out of order"));
        at += found + part.len();
    }
    let upload = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact@")))
        .unwrap();
    assert_eq!(upload["if"], "failure()");
}
