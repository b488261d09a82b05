//! The checks that prove a deployment: the MCP handshake over its URL, the health endpoint, the
//! server's mode, and what the ServiceAccount may and may not do (SubjectAccessReview).

use crate::cluster::client::{Cluster, ClusterArgs};
use crate::cluster::manifests::SERVICE_ACCOUNT;
use crate::server::check::{access_review, check, Check, Mode};
use crate::server::mcp::{self, Session};
use anyhow::{bail, Result};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{Api, PostParams};
use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct Report {
    pub url: String,
    pub passed: bool,
    pub checks: Vec<Check>,
    pub mode: Option<Mode>,
}

/// (verb, API group, resource)
const MUST_ALLOW: &[(&str, &str, &str)] = &[
    ("list", "", "pods"),
    ("list", "", "events"),
    ("list", "apps", "deployments"),
    ("get", "", "nodes"),
    ("list", "", "nodes"),
    ("get", "", "configmaps"),
    ("list", "", "configmaps"),
];
const MUST_DENY: &[(&str, &str, &str)] = &[
    ("delete", "", "pods"),
    ("create", "", "pods"),
    ("patch", "apps", "deployments"),
    ("create", "", "secrets"),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ("bind", "rbac.authorization.k8s.io", "clusterroles"),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles"),
];

pub fn print(report: &Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
        return;
    }
    println!("verifying {}", report.url);
    for c in &report.checks {
        let word = match (c.passed, c.skipped) {
            (true, _) if c.warning => "WARN",
            (true, _) => "PASS",
            (false, true) => "SKIP",
            (false, false) => "FAIL",
        };
        println!("{word} {:<40} {}", c.name, c.detail);
    }
    if let Some(m) = &report.mode {
        println!(
            "mode: {}, {}, {} tools",
            if m.read_only { "read-only" } else { "write tools enabled" },
            if m.stateless { "stateless" } else { "stateful (SSE sessions)" },
            m.tools
        );
        println!(
            "toolsets: {}",
            if m.helm_toolset {
                "helm on (the server can read every Secret)"
            } else {
                "no helm toolset (Secrets denied)"
            }
        );
        if !m.write_tools.is_empty() {
            println!("write-capable tools exposed (RBAC must deny them): {}", m.write_tools.join(", "));
        }
    }
}

/// `expected`: the networks that should be the only ones admitted (else the live policy's).
pub async fn verify(
    url: &str,
    cluster: Result<&Cluster, String>,
    args: &ClusterArgs,
    expected: Option<&crate::cluster::allow_from::AllowFrom>,
    local_environment: bool,
) -> Report {
    let mut checks = Vec::new();
    let mut mode = check_mcp(url, &mut checks).await;
    let helm = mode.as_ref().is_some_and(|m| m.helm_toolset);
    if let Some(m) = mode.as_mut() {
        crate::server::proof_secrets::check_secret_tool(url, &args.namespace, m, &mut checks).await;
        let admin = cluster.as_ref().map(|c| *c);
        crate::server::proof_credentials::check_credential_tools(url, admin, &args.namespace, m, &mut checks).await;
        crate::server::proof_rebinding::check_rebinding(url, &mut checks).await;
    }
    match cluster {
        Ok(c) => {
            // The door's outside probe waits seconds for a silence; the API's checks go on meanwhile.
            let (mut door, mut rest) = (Vec::new(), Vec::new());
            let door_checks =
                crate::server::proof_door::check_door(url, c, args, expected, local_environment, &mut door);
            let api_checks = async {
                crate::server::proof_ways_in::check_ways_in(c, args, &mut rest).await;
                check_rbac(c, args, &mut rest).await;
                crate::server::proof_rights::check_write_rights(c, &args.namespace, SERVICE_ACCOUNT, &mut rest).await;
                if let Some(m) = mode.as_ref() {
                    crate::server::proof_mode::check_meant_mode(c, args, m, &mut rest).await;
                }
                crate::server::proof_secrets::check_secret_access(c, args, helm, &mut rest).await;
                if let Some(node) = crate::server::proof_door::target(url) {
                    crate::server::proof_nodes::check_serving_node(c, args, node.ip(), &mut rest).await;
                }
            };
            tokio::join!(door_checks, api_checks);
            checks.append(&mut door);
            checks.append(&mut rest);
        }
        Err(e) => checks.push(Check {
            name: "ServiceAccount permissions".into(),
            passed: false,
            skipped: false,
            warning: false,
            detail: e,
        }),
    }
    let passed = checks.iter().all(|c| c.passed || c.skipped);
    Report { url: url.to_string(), passed, checks, mode }
}

async fn check_mcp(url: &str, checks: &mut Vec<Check>) -> Option<Mode> {
    let health =
        mcp::health(url).await.and_then(|s| if s == 200 { Ok("200 OK".to_string()) } else { bail!("HTTP {s}") });
    check(checks, "health endpoint /healthz", health);
    let mut session = match Session::initialize(url).await {
        Ok(s) => s,
        Err(e) => {
            check(checks, "MCP initialize", Err(e));
            return None;
        }
    };
    let version = match session.server_version.as_str() {
        "" => "(it reports no version: a build without git, e.g. upstream's .dockerignore leaves .git out, so its Makefile's `git describe` is empty)",
        v => v,
    };
    let detail = format!("protocol {}, server {} {version}", session.protocol_version, session.server_name);
    check(checks, "MCP initialize", Ok(detail));
    let initialized = session.initialized().await.and_then(|s| {
        if (200..300).contains(&s) {
            Ok(format!("HTTP {s}"))
        } else {
            bail!("HTTP {s}")
        }
    });
    check(checks, "MCP notifications/initialized", initialized);
    let tools = match session.list_tools().await {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            check(checks, "MCP tools/list", Err(anyhow::anyhow!("the server lists no tools")));
            return None;
        }
        Err(e) => {
            check(checks, "MCP tools/list", Err(e));
            return None;
        }
    };
    let write_tools: Vec<String> = tools.iter().filter(|t| !t.read_only).map(|t| t.name.clone()).collect();
    let session_note = if session.session_id.is_some() { " (with the server's Mcp-Session-Id)" } else { "" };
    check(checks, "MCP tools/list", Ok(format!("{} tools{session_note}", tools.len())));
    // Stateless servers refuse the standalone SSE stream (405): no stream, no 409 Conflict.
    let stateless = matches!(session.open_stream().await, Ok((405, _)));
    let helm_toolset = tools.iter().any(|t| t.name.starts_with("helm_"));
    let credential_tools = crate::server::credential_tools::names()
        .filter(|name| tools.iter().any(|t| t.name == *name))
        .map(str::to_string)
        .collect();
    Some(Mode {
        read_only: write_tools.is_empty(),
        stateless,
        tools: tools.len(),
        write_tools,
        helm_toolset,
        credential_tools,
    })
}

async fn check_rbac(cluster: &Cluster, args: &ClusterArgs, checks: &mut Vec<Check>) {
    let user = format!("system:serviceaccount:{}:{SERVICE_ACCOUNT}", args.namespace);
    let reviews: Api<SubjectAccessReview> = Api::all(cluster.client.clone());
    let everywhere = [None];
    let both = [None, Some(args.namespace.as_str())];
    for (expect, list, scopes) in [(true, MUST_ALLOW, &everywhere[..]), (false, MUST_DENY, &both[..])] {
        for (verb, group, resource) in list {
            for namespace in scopes {
                let review = access_review(&user, verb, group, resource, *namespace);
                let scope = match namespace {
                    Some(ns) => format!(" (in {ns})"),
                    None if *resource == "nodes" || resource.starts_with("cluster") => String::new(),
                    None => " (all namespaces)".to_string(),
                };
                let what = format!("{} {verb} {resource}{scope}", if expect { "may" } else { "may not" });
                let result = match reviews.create(&PostParams::default(), &review).await {
                    Ok(r) => match (expect, r.status.map(|s| s.allowed).unwrap_or(false)) {
                        (true, true) => Ok("allowed".to_string()),
                        (false, false) => Ok("denied".to_string()),
                        (true, false) => Err(anyhow::anyhow!("denied, but the triage agent needs it: check deploy/rbac.yaml was applied")),
                        (false, true) => Err(anyhow::anyhow!("ALLOWED: the ServiceAccount can write; find the binding that grants it (kubectl get rolebindings,clusterrolebindings -A -o wide)")),
                    },
                    Err(e) => Err(anyhow::anyhow!("SubjectAccessReview failed: {}", crate::cluster::client::root_cause(&e))),
                };
                check(checks, &what, result);
            }
        }
    }
}
