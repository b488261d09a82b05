//! A dry run that cannot lie: for each scenario, `--dry-run --json` prints the plan (and writes
//! nothing), then the real run carries it out, and the API server's audit log holds exactly the
//! writes the plan named (same verbs, same objects, as often), and helm ran exactly the commands
//! the plan named. And input `up` cannot carry out is refused before any plan is carried out: the
//! audit log holds no write. With helm 3 and helm 4, on the real control plane.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::cluster::AuditEvent;
use support::deploy::{registry, repo, server_image, Deploy, Helm};
use support::registry::Entrypoint;

/// `(verb, resource, namespace, name)`; cluster-scoped objects have no namespace.
type Key = (String, String, String, String);

const CLUSTER_SCOPED: [&str; 3] = ["namespaces", "clusterroles", "clusterrolebindings"];

fn key(verb: &str, resource: &str, namespace: &str, name: &str) -> Key {
    let namespace = if CLUSTER_SCOPED.contains(&resource) { "" } else { namespace };
    (verb.into(), resource.into(), namespace.into(), name.into())
}

/// The plan `task` prints under `--dry-run --json`; checks that printing it wrote nothing.
fn dry_plan(d: &Deploy, task: &str, extra: &[&str]) -> Value {
    let before = d.audit().map(|a| a.len());
    let mut args = extra.to_vec();
    args.extend(["--dry-run", "--json"]);
    let out = d.run(task, &args);
    out.assert_ok();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.stdout));
    if let (Some(n), Some(after)) = (before, d.audit()) {
        let writes: Vec<&AuditEvent> = after[n..].iter().filter(|e| e.is_write()).collect();
        assert!(writes.is_empty(), "the dry run wrote: {writes:?}");
    }
    assert_eq!(plan["task"], task);
    plan
}

/// The helm commands that change something, as the plan names them (the values file's path
/// left out: a private temp file only the real run makes).
fn planned_helm(plan: &Value) -> Vec<String> {
    steps(plan)
        .iter()
        .filter(|s| matches!(s["action"].as_str(), Some("helm" | "uninstall" | "recoverRelease")))
        .map(|s| {
            let words: Vec<&str> = s["command"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
            without_values_path(&words)
        })
        .collect()
}

/// The helm commands that changed something, as the xtask echoed them before running them.
fn ran_helm(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .filter(|l| ["helm upgrade ", "helm uninstall ", "helm rollback "].iter().any(|p| l.starts_with(p)))
        .map(|l| without_values_path(&l.split(' ').collect::<Vec<_>>()))
        .collect()
}

fn without_values_path(words: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        out.push(if i > 0 && words[i - 1] == "-f" { "<values>" } else { w });
    }
    out.join(" ")
}

fn steps(plan: &Value) -> Vec<Value> {
    plan["steps"].as_array().unwrap().clone()
}

/// The steps of the plan as text: `would X` then `    because R`, as `X: R`.
fn text_steps(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| Some(format!("{}: {}", w[0].strip_prefix("would ")?, w[1].strip_prefix("    because ")?)))
        .collect()
}

/// The steps a real run announced: `step i/N: X: R`, as `X: R`.
fn executed_steps(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(|l| l.strip_prefix("step ")?.split_once(": ").map(|(_, rest)| rest.to_string())).collect()
}

/// Runs `task` for real after its dry runs (JSON and text), and checks the audit log and helm
/// against the plan, and the steps it announced against the printed ones.
fn carried_out_as_planned(d: &Deploy, task: &str, extra: &[&str]) -> Value {
    let plan = dry_plan(d, task, extra);
    let mut text_args = extra.to_vec();
    text_args.push("--dry-run");
    let text = d.run(task, &text_args);
    let printed = text_steps(&text.assert_ok().stdout);
    assert_eq!(printed.len(), steps(&plan).len(), "the text and the JSON are one plan:\n{}", text.stdout);
    let before = d.audit().map(|a| a.len());
    let out = d.run(task, extra);
    out.assert_ok();
    let shown = format!("plan:\n{}\n--- stderr\n{}", serde_json::to_string_pretty(&plan).unwrap(), out.stderr);
    assert_eq!(executed_steps(&out.stderr), printed, "the real run carried out the printed plan\n{shown}");

    assert_eq!(ran_helm(&out.stderr), planned_helm(&plan), "helm ran what the plan named\n{shown}");

    let Some(n) = before else { return plan };
    let events = d.audit().unwrap()[n..].to_vec();
    let helm_wrote = events.iter().any(|e| e.is_write() && e.by_helm());
    assert_eq!(helm_wrote, !planned_helm(&plan).is_empty(), "helm writes only when the plan runs helm\n{shown}");

    // How often each write happened, against how often the plan names it (`repeated`: any number).
    let mut done: BTreeMap<Key, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.is_write() && !e.by_helm()) {
        assert!(e.subresource.is_empty(), "a write to a subresource: {e:?}\n{shown}");
        *done.entry(key(&e.verb, &e.resource, &e.namespace, &e.name)).or_default() += 1;
    }
    let mut planned: BTreeMap<Key, (usize, bool)> = BTreeMap::new();
    for s in steps(&plan) {
        for w in s["writes"].as_array().unwrap() {
            let k = key(
                w["verb"].as_str().unwrap(),
                w["resource"].as_str().unwrap(),
                w["namespace"].as_str().unwrap_or_default(),
                w["name"].as_str().unwrap(),
            );
            let entry = planned.entry(k).or_default();
            if w["repeated"] == true {
                entry.1 = true;
            } else {
                entry.0 += 1;
            }
        }
    }
    for (k, n) in &done {
        let Some((once, repeated)) = planned.get(k) else { panic!("an unplanned write {k:?}\n{shown}") };
        assert!(if *repeated { n >= once } else { n == once }, "{k:?}: {n} writes, planned {once}\n{shown}");
    }
    for (k, (once, _)) in &planned {
        assert!(done.get(k).copied().unwrap_or(0) >= *once, "a planned write that did not happen: {k:?}\n{shown}");
    }
    plan
}

fn actions(plan: &Value) -> Vec<String> {
    steps(plan).iter().map(|s| s["action"].as_str().unwrap().to_string()).collect()
}

fn up_scenarios(helm: Helm) {
    let mut d = Deploy::new("planup", helm);
    let repo = format!("alice/plan-{}", d.ns);
    d.image = server_image(&repo, Entrypoint::Current).0;

    // First deploy.
    let plan = carried_out_as_planned(&d, "up", &[]);
    let first = actions(&plan);
    for a in ["apply", "lock", "recordOwner", "pullChart", "helm", "waitRollout", "recordState"] {
        assert!(first.contains(&a.to_string()), "{a} in {first:?}");
    }
    assert_eq!(steps(&plan)[0]["object"], format!("namespace/{}", d.ns), "the namespace first, then the lock");
    assert_eq!(steps(&plan)[0]["change"], "create");
    let at = |a: &str| first.iter().position(|x| x == a).unwrap_or_else(|| panic!("{a} in {first:?}"));
    assert!(at("setTrafficPolicy") < at("waitRollout"), "the Service is Local before its pod can be ready: {first:?}");

    // No-op: an empty plan that says so, and no write.
    let plan = carried_out_as_planned(&d, "up", &[]);
    assert_eq!(plan["steps"], json!([]), "{plan}");
    let text = d.run("up", &["--dry-run"]);
    assert!(
        text.assert_ok().stdout.contains("nothing to do: release kubernetes-mcp-server is up to date"),
        "{}",
        text.stdout
    );

    // Drifted RBAC: the one object is updated, and why; no helm.
    let role =
        format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/kmcp:{}:kubernetes-mcp-server-nodes-read", d.ns);
    d.send(
        "PATCH",
        &role,
        "application/merge-patch+json",
        json!({"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]}]}),
    );
    let plan = carried_out_as_planned(&d, "up", &[]);
    assert_eq!(actions(&plan), ["lock", "apply"], "{plan}");
    assert_eq!(steps(&plan)[1]["change"], "update");
    assert!(steps(&plan)[1]["reason"].as_str().unwrap().contains("rules drifted"), "{plan}");

    // A new image under the same tag.
    server_image(&repo, Entrypoint::OldPort8080);
    let plan = carried_out_as_planned(&d, "up", &[]);
    assert_eq!(actions(&plan), ["lock", "helm", "waitRollout", "recordState"], "{plan}");
    assert!(plan["summary"].as_str().unwrap().contains(&format!("{}/{repo}@sha256:", registry())), "{plan}");

    // A changed --port: the NetworkPolicy admits the new port, helm re-renders; the nodePort stays
    // the recorded one.
    let port = d.node_port();
    let plan = carried_out_as_planned(&d, "up", &["--port", "8686"]);
    let changed = actions(&plan);
    let expected = ["lock", "apply", "helm", "setNodePort", "waitRollout"].map(String::from);
    assert!(changed.starts_with(&expected), "{plan}");
    assert!(steps(&plan)[1]["object"].as_str().unwrap().starts_with("networkpolicy/"), "{plan}");
    assert_eq!(d.node_port(), port);

    let plan = carried_out_as_planned(&d, "down", &["--delete-namespace"]);
    assert!(actions(&plan).contains(&"deleteNamespace".to_string()), "{plan}");
}

fn down_scenarios(helm: Helm) {
    let d = Deploy::new("plandown", helm);
    assert_eq!(carried_out_as_planned(&d, "down", &[])["steps"], json!([]), "down on nothing: an empty plan");
    d.run("up", &["--node-port", &support::deploy::reserved_node_port(1, helm)]).assert_ok();
    let port = d.node_port();

    let plan = carried_out_as_planned(&d, "down", &["--keep-port"]);
    let kept = actions(&plan);
    assert_eq!(kept.first().map(String::as_str), Some("lock"));
    assert!(kept.contains(&"uninstall".into()) && kept.contains(&"delete".into()), "{plan}");
    assert_eq!(kept.last().map(String::as_str), Some("forgetDeployment"), "{plan}");

    let plan = carried_out_as_planned(&d, "up", &[]);
    assert!(!actions(&plan).contains(&"setNodePort".to_string()) || d.node_port() == port, "{plan}");
    assert_eq!(d.node_port(), port, "the kept nodePort");

    let plan = carried_out_as_planned(&d, "down", &[]);
    assert_eq!(actions(&plan).last().map(String::as_str), Some("forgetState"), "{plan}");
    assert_eq!(carried_out_as_planned(&d, "down", &[])["steps"], json!([]), "a second down: an empty plan");

    carried_out_as_planned(&d, "up", &[]);
    let plan = carried_out_as_planned(&d, "down", &["--delete-namespace"]);
    let gone = actions(&plan);
    assert_eq!(gone.last().map(String::as_str), Some("deleteNamespace"), "{plan}");
    assert_eq!(steps(&plan)[0]["keep"], true, "the namespace takes the lease along: {plan}");
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none());
}

/// Each input `up` cannot carry out gets one line naming what is wrong, and nothing is written:
/// no API write by this test's user (helm may read the release's status), no helm upgrade, no namespace.
fn refused_input_writes_nothing(helm: Helm) {
    let d = Deploy::new("refused", helm);
    // A Service somebody else made holds a nodePort (made by the cluster's admin, not this user).
    let other = format!("{}-other", d.ns);
    d.send("POST", "/api/v1/namespaces", "application/json", json!({"metadata": {"name": other}}));
    let holder = json!({"metadata": {"name": "holder"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let holder = d.send("POST", &format!("/api/v1/namespaces/{other}/services"), "application/json", holder);
    let taken = holder["spec"]["ports"][0]["nodePort"].as_i64().unwrap().to_string();
    let garbage = tempfile::Builder::new().suffix(".tgz").tempfile().unwrap();
    std::fs::write(garbage.path(), b"not a chart").unwrap();
    let garbage = garbage.path().to_str().unwrap().to_string();
    let absent = format!("{}/{}@sha256:{}", registry(), repo(), "0".repeat(64));
    let local = ["--chart-version", "--chart-digest"];
    let cases: Vec<(Vec<&str>, &[&str], String)> = vec![
        (vec!["--chart", &garbage], &local, format!("--chart {garbage} is not a helm chart")),
        (vec!["--chart", "http://charts.invalid/mcp.tgz"], &local, "is a chart repository URL".into()),
        (vec!["--chart-version", "9.9.9"], &[], "is not in the registry: check --chart-version".into()),
        (vec!["--image", &absent], &[], format!("image {absent} is not in the registry")),
        (
            vec!["--node-port", &taken],
            &[],
            format!("nodePort {taken} (--node-port) is taken by service {other}/holder"),
        ),
        (vec!["--toolsets", "core,bogus"], &[], "unknown toolset 'bogus'".into()),
        (vec!["--node-ip", "::ffff:0.0.0.0"], &[], "unspecified or multicast".into()),
        (vec!["--node-ip", "::ffff:224.0.0.1"], &[], "unspecified or multicast".into()),
        (vec!["--node-ip", "255.255.255.255"], &[], "unspecified or multicast".into()),
    ];
    let mut runs: Vec<Vec<String>> = cases.iter().map(|(extra, omit, _)| d.args_without("up", omit, extra)).collect();
    let mut says: Vec<String> = cases.into_iter().map(|c| c.2).collect();
    // The release names the Service: a DNS-1035 label.
    let mut bad_release = d.args("up", &[]);
    let at = bad_release.iter().position(|a| a == "--release").unwrap();
    bad_release[at + 1] = "1abc".into();
    runs.push(bad_release);
    says.push("invalid --release '1abc'".into());
    for (args, says) in runs.iter().zip(says) {
        let before = d.audit().map_or(0, |a| a.len());
        let out = d.xtask().run(args);
        assert!(matches!(out.code, 1 | 2), "{args:?}: refused, not a panic:\n{}", out.stderr);
        assert!(out.error_line().contains(&says), "{args:?}: wanted `{says}` in:\n{}", out.stderr);
        let wrote: Vec<_> = d.audit().map(|a| a[before..].to_vec()).unwrap_or_default();
        assert!(wrote.iter().all(|e| !e.is_write()), "{args:?} wrote: {wrote:?}");
        assert!(!out.stderr.contains("$ helm upgrade"), "{args:?} ran helm:\n{}", out.stderr);
    }
    assert!(d.get(&format!("/api/v1/namespaces/{}", d.ns)).is_none(), "nothing was created");
    d.send("DELETE", &format!("/api/v1/namespaces/{other}"), "application/json", json!({}));
}

both_helms!(up_scenarios, down_scenarios,);

one_helm!(
    refused_input_writes_nothing: V4,
);
