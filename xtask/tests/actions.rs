//! The GitHub workflows, run for real by act (nektos/act) on this host: ci.yml's checks with its
//! test step recorded, image.yml building a fork for the tests' registry on a push and on demand,
//! and e2e.yml deploying that image to the tests' cluster on demand and after a successful image
//! run, and not at all after a failed one. The third-party actions are stand-ins (`support/act.rs`).

extern crate kmcp_test_support as support;

use serde_json::json;
use support::act::{Act, REPOSITORY};
use support::buildkit::{fork, Buildx, Fork};
use support::cluster::cluster;
use support::deploy::registry;

fn step_results(run: &support::act::ActRun) -> String {
    run.steps().iter().map(|(s, r)| format!("{s}: {r}")).collect::<Vec<_>>().join("\n")
}

fn assert_step(run: &support::act::ActRun, name: &str, result: &str) {
    assert!(
        run.steps().iter().any(|(s, r)| s.contains(name) && r == result),
        "no step {name:?} with {result}:\n{}\n{}",
        step_results(run),
        run.all
    );
}

/// The step's `if:` was false: act did not run its main part.
fn assert_not_run(run: &support::act::ActRun, name: &str) {
    assert!(run.steps().iter().all(|(s, _)| !s.contains(name)), "{name:?} ran:\n{}", step_results(run));
}

#[test]
fn ci_runs_fmt_and_clippy_and_reaches_the_readme_test_command() {
    let act = Act::new();
    let run = act.run("push", "ci.yml", "test", &[], &[], &json!({"ref": "refs/heads/main"}));
    run.assert_succeeded();
    for step in ["cargo fmt --check", "cargo clippy -- -D warnings", "The README's test command"] {
        assert_step(&run, step, "success");
    }
    let recorded = std::fs::read_to_string(&act.marker).expect("the test step ran the sudo stand-in");
    assert!(recorded.contains("cargo xtask test"), "{recorded}");
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");
}

#[test]
fn image_pushes_the_fork_and_e2e_deploys_it_to_the_test_cluster() {
    let act = Act::new();
    let buildx = Buildx::plugin_only();
    let (fork, sha) = fork(Fork::Deployable, None);
    let owner = REPOSITORY.split('/').next().unwrap();
    act.add_repository(&format!("{owner}/kubernetes-mcp-server"), fork.path());
    act.add_repository("bob/kubernetes-mcp-server", fork.path());
    let kubeconfig = cluster().kubeconfig.to_str().unwrap().to_string();
    let env = [("DOCKER_CONFIG", buildx.path().to_str().unwrap()), ("KUBECONFIG", kubeconfig.as_str())];
    let var = |k: &str, v: &str| ["--var".to_string(), format!("{k}={v}")];

    // A push to main: the default fork, <owner>/kubernetes-mcp-server@main, to the registry the
    // repository variable names.
    let registry_var = var("MCP_REGISTRY", &registry());
    let run = act.run("push", "image.yml", "image", &registry_var, &env, &json!({"ref": "refs/heads/main"}));
    run.assert_succeeded();
    let image = format!("{}/{owner}/kubernetes-mcp-server", registry());
    assert!(run.output().contains(&format!("{image}@sha256:")), "{}", run.output());
    let summary = std::fs::read_to_string(&act.summary).expect("the image step wrote its summary");
    assert!(summary.contains("### Image") && summary.contains(&format!("{image}@sha256:")), "{summary}");
    assert!(
        summary.contains(&format!(
            "chart oci://{}/{owner}/charts/kubernetes-mcp-server:0.0.0-dev-{}",
            registry(),
            &sha[..7]
        )),
        "{summary}"
    );
    assert_not_run(&run, "Set up QEMU");
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");

    // On demand, with inputs: another fork and ref, and the registry as an input (no variable).
    // The image goes to the workflow's owner, whose packages its token may write, whoever's fork
    // it builds; this fork's commit is the same, so the image is already there.
    // (GitHub sends the inputs in the event's payload, and act reads them from there.)
    let inputs =
        json!({"inputs": {"fork_repository": "bob/kubernetes-mcp-server", "fork_ref": "main", "registry": registry()}});
    let run = act.run("workflow_dispatch", "image.yml", "image", &[], &env, &inputs);
    run.assert_succeeded();
    assert!(run.output().contains(&format!("up to date: {image}:dev-{}", &sha[..7])), "{}", run.output());
    let summary = std::fs::read_to_string(&act.summary).unwrap();
    let fork_line = format!("Fork: `bob/kubernetes-mcp-server@main`, registry `{}`", registry());
    assert!(summary.contains(&fork_line), "{summary}");
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");

    // e2e after image succeeded: the given cluster (the k0s step skipped by the workflow's own
    // condition), every step passing, the test step recorded.
    let mut vars = registry_var.to_vec();
    vars.extend(var("KMCP_CLUSTER", "given"));
    vars.extend(var("MCP_NODE_IP", &cluster().node_ip));
    vars.extend(var("MCP_ALLOW_FROM", &cluster().allow_from));
    let finished =
        |conclusion: &str| json!({"workflow_run": {"name": "image", "conclusion": conclusion, "head_branch": "main"}});
    let run = act.run("workflow_run", "e2e.yml", "e2e", &vars, &env, &finished("success"));
    run.assert_succeeded();
    assert_not_run(&run, "Start a single-node k0s cluster");
    for step in
        ["up --verify", "up again reports no change", "the plan of another up is empty", "down again has nothing to do"]
    {
        assert_step(&run, step, "success");
    }
    assert!(run.output().contains("PASS") && !run.output().contains("FAIL"), "{}", run.output());
    assert!(std::fs::read_to_string(&act.marker).unwrap().contains("cargo xtask test"));
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");

    // After a failed image run the job does not run at all.
    let run = act.run("workflow_run", "e2e.yml", "e2e", &vars, &env, &finished("failure"));
    assert!(run.ok, "{}", run.all);
    assert!(run.steps().is_empty(), "a step ran after a failed image run:\n{}", step_results(&run));
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");

    // On demand.
    let run = act.run("workflow_dispatch", "e2e.yml", "e2e", &vars, &env, &json!({"inputs": {}}));
    run.assert_succeeded();
    assert_step(&run, "down again has nothing to do", "success");
    assert!(!run.all.contains(&act.secret), "the secret appeared in act's output");
}
