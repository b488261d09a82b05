//! What only looks like the tool's, on the real control plane with helm 3 and 4: a release a user
//! installed with plain helm, a ConfigMap with the record's name and a Lease with the lock's name,
//! none with the instance's mark. Refused before any write (the audit log holds reads only), left
//! alone by `down`, taken over only with `--adopt`.

#[macro_use]
extern crate kmcp_test_support as support;

use serde_json::json;
use support::deploy::{chart_version, Deploy, Helm};

/// The writes this test's user made since `from` audit events.
fn writes_since(d: &Deploy, from: Option<usize>) -> Vec<String> {
    let (Some(from), Some(all)) = (from, d.audit()) else { return Vec::new() };
    all[from..].iter().filter(|e| e.is_write()).map(|e| format!("{} {} {}", e.verb, e.resource, e.name)).collect()
}

fn helm(d: &Deploy, args: &[&str]) -> String {
    let out = std::process::Command::new(d.helm.binary())
        .args(args)
        .args(["--namespace", &d.ns, "--kubeconfig", d.kubeconfig.to_str().unwrap()])
        .env("HOME", d.cache_dir())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "helm {args:?}:\n{text}");
    text
}

fn a_plain_helm_release_is_not_taken_over(helm_major: Helm) {
    let d = Deploy::new("plainhelm", helm_major);
    let version = chart_version();
    // The chart's own ServiceAccount off: the one up applies would be refused first.
    let off = ["--set", "ingress.enabled=false", "--set", "serviceAccount.create=false"];
    helm(
        &d,
        &[&["install", &d.release, &d.chart, "--version", &version, "--plain-http", "--create-namespace"][..], &off]
            .concat(),
    );
    helm(&d, &["upgrade", &d.release, &d.chart, "--version", &version, "--plain-http", "--reuse-values"]);
    let before = d.audit().map(|a| a.len());
    let err = d.run("up", &[]).error_line();
    assert!(err.contains("was not installed by `cargo xtask up`") && err.contains("--adopt"), "{err}");
    assert_eq!(writes_since(&d, before), Vec::<String>::new(), "a refused up wrote");
    assert!(helm(&d, &["history", &d.release]).lines().count() == 3, "the user's release is at revision 2");
    // down leaves the user's release alone.
    let out = d.run("down", &[]);
    assert!(out.assert_ok().stderr.contains("was not installed by `cargo xtask up`"), "{}", out.stderr);
    assert!(d.deployment().is_some());
    // Told to, up makes it this deployment's.
    d.run("up", &["--adopt"]).assert_ok();
    assert!(d.state().is_some());
    d.run("down", &[]).assert_ok();
    assert!(d.deployment().is_none(), "the adopted release went with down");
    d.send("DELETE", &format!("/api/v1/namespaces/{}", d.ns), "application/json", json!({}));
}

fn a_record_or_lock_without_the_mark_is_not_taken_over(helm_major: Helm) {
    let d = Deploy::new("namesonly", helm_major);
    d.send("POST", "/api/v1/namespaces", "application/json", json!({"metadata": {"name": d.ns}}));
    let cms = format!("/api/v1/namespaces/{}/configmaps", d.ns);
    let record = json!({"metadata": {"name": "kubernetes-mcp-server-xtask-state"}, "data": {"mine": "yes"}});
    d.send("POST", &cms, "application/json", record);
    let before = d.audit().map(|a| a.len());
    let err = d.run("up", &[]).error_line();
    assert!(err.contains("configmap/kubernetes-mcp-server-xtask-state") && err.contains("without the"), "{err}");
    assert_eq!(writes_since(&d, before), Vec::<String>::new(), "a refused up wrote");
    d.run("down", &[]).assert_ok();
    let kept = d.get(&format!("{cms}/kubernetes-mcp-server-xtask-state")).expect("down left the user's ConfigMap");
    assert_eq!(kept["data"]["mine"], "yes");
    d.send("DELETE", &format!("{cms}/kubernetes-mcp-server-xtask-state"), "application/json", json!({}));

    let leases = format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", d.ns);
    d.send("POST", &leases, "application/json", json!({"metadata": {"name": "kubernetes-mcp-server-xtask-lock"}}));
    let before = d.audit().map(|a| a.len());
    let err = d.run("up", &[]).error_line();
    assert!(err.contains("lease/kubernetes-mcp-server-xtask-lock") && err.contains("without the"), "{err}");
    assert!(d.run("down", &[]).assert_ok().stdout.contains("nothing to do"), "down has nothing of its own here");
    assert_eq!(writes_since(&d, before), Vec::<String>::new(), "a refused run wrote");
    assert!(d.get(&format!("{leases}/kubernetes-mcp-server-xtask-lock")).is_some(), "the user's Lease stays");
    d.send("DELETE", &format!("/api/v1/namespaces/{}", d.ns), "application/json", json!({}));
}

/// Objects of kinds the old list of thirteen never looked at, labelled as the release's objects
/// are: a label proves nothing, so `down --delete-namespace` names each and deletes none of them
/// without `--force`; `--dry-run` shows the same list.
fn delete_namespace_names_every_object_that_is_not_ours(helm_major: Helm) {
    let d = Deploy::new("nsobjects", helm_major);
    d.run("up", &[]).assert_ok();
    let ns = d.ns.clone();
    let meta = |name: &str| json!({"name": name, "labels": {"app.kubernetes.io/instance": d.release}});
    let made = [
        (
            "/apis/networking.k8s.io/v1",
            "networkpolicies",
            json!({"metadata": meta("user-np"), "spec": {"podSelector": {}}}),
        ),
        ("/apis/coordination.k8s.io/v1", "leases", json!({"metadata": meta("user-lease")})),
        ("/api/v1", "resourcequotas", json!({"metadata": meta("user-quota"), "spec": {"hard": {"pods": "50"}}})),
        (
            "/apis/policy/v1",
            "poddisruptionbudgets",
            json!({"metadata": meta("user-pdb"), "spec": {"maxUnavailable": 1}}),
        ),
        (
            "/apis/networking.k8s.io/v1",
            "ingresses",
            json!({"metadata": meta("user-ing"), "spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}}}),
        ),
        ("/api/v1", "secrets", json!({"metadata": meta("user-secret"), "stringData": {"k": "v"}})),
    ];
    for (api, plural, body) in made {
        d.send("POST", &format!("{api}/namespaces/{ns}/{plural}"), "application/json", body);
    }
    let names = [
        "networkpolicy/user-np",
        "lease/user-lease",
        "resourcequota/user-quota",
        "poddisruptionbudget/user-pdb",
        "ingress/user-ing",
        "secret/user-secret",
    ];
    let before = d.audit().map(|a| a.len());
    let err = d.run("down", &["--delete-namespace"]).error_line();
    for n in names {
        assert!(err.contains(n), "{n}: {err}");
    }
    for ours in ["deployment/", "replicaset/", "pod/", "service/", "kube-root-ca.crt", "xtask-state", "endpointslice/"]
    {
        assert!(!err.contains(ours), "{ours} is the instance's: {err}");
    }
    assert_eq!(writes_since(&d, before), Vec::<String>::new(), "a refused down wrote");
    let out = d.run("down", &["--delete-namespace", "--force", "--dry-run"]);
    for n in names {
        assert!(out.assert_ok().stdout.contains(&format!("would delete with it: {n}")), "{n}: {}", out.stdout);
    }
    d.run("down", &["--delete-namespace", "--force"]).assert_ok();
    assert!(d.get(&format!("/api/v1/namespaces/{ns}")).is_none());
}

/// Two releases in one namespace share the ServiceAccount's name: `--adopt` does not take the
/// other deployment's, `--adopt-from` names whose it was.
fn adopt_takes_another_deployments_objects_only_when_told_whose(helm_major: Helm) {
    let a = Deploy::new("twoinone", helm_major);
    a.run("up", &[]).assert_ok();
    let mut b = Deploy::new("twoinone-b", helm_major);
    (b.ns, b.release) = (a.ns.clone(), "second".into());
    let theirs = format!("{}/kubernetes-mcp-server", a.ns);
    let before = b.audit().map(|x| x.len());
    for flags in [&[][..], &["--adopt"][..]] {
        let err = b.run("up", flags).error_line();
        assert!(err.contains(&format!("belongs to the deployment {theirs}")), "{flags:?}: {err}");
        assert!(err.contains(&format!("--adopt-from {theirs}")), "{flags:?}: {err}");
    }
    assert_eq!(writes_since(&b, before), Vec::<String>::new(), "a refused up wrote");
    b.run("up", &["--adopt-from", &theirs]).assert_ok();
    let sa = b.get(&format!("/api/v1/namespaces/{}/serviceaccounts/kubernetes-mcp-server", a.ns)).unwrap();
    assert_eq!(sa["metadata"]["annotations"]["kmcp-xtask/instance"], format!("{}/second", a.ns));
    let out = a.run("down", &[]);
    assert!(out.assert_ok().stderr.contains("belongs to"), "{}", out.stderr);
    assert!(b.get(&format!("/api/v1/namespaces/{}/serviceaccounts/kubernetes-mcp-server", a.ns)).is_some());
    b.run("down", &[]).assert_ok();
    a.run("down", &["--delete-namespace"]).assert_ok();
}

/// The record deleted by hand: the release's own mark still says whose it is, so `up` records it
/// again and `down` takes the server with it.
fn a_lost_record_is_made_good_by_the_release_mark(helm_major: Helm) {
    let d = Deploy::new("lostrecord", helm_major);
    d.run("up", &[]).assert_ok();
    let record = format!("/api/v1/namespaces/{}/configmaps/kubernetes-mcp-server-xtask-state", d.ns);
    d.send("DELETE", &record, "application/json", json!({}));
    d.run("up", &[]).assert_ok();
    assert!(d.state().is_some(), "recorded again");
    d.send("DELETE", &record, "application/json", json!({}));
    let out = d.run("down", &[]);
    assert!(out.assert_ok().stderr.contains("carries the mark of"), "{}", out.stderr);
    assert!(d.deployment().is_none(), "the server went with its release");
    d.run("down", &["--delete-namespace"]).assert_ok();
}

both_helms!(
    a_lost_record_is_made_good_by_the_release_mark,
    adopt_takes_another_deployments_objects_only_when_told_whose,
    a_plain_helm_release_is_not_taken_over,
);

one_helm!(
    delete_namespace_names_every_object_that_is_not_ours: V3,
    a_record_or_lock_without_the_mark_is_not_taken_over: V4,
);
