//! Errors as the one line a person reads: a Kubernetes refusal names the user, the verb, the
//! resource and the namespace and says what to do; any other API error is its message, never the
//! client's debug form of the API's `Status`.

/// What to do about a refusal.
const ADVICE: &str = "use an admin kubeconfig (on the k0s node: k0s kubeconfig admin)";

/// `e` with its causes, as `{e:#}` would print it, but with Kubernetes API errors in words.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            if status.code == 403 {
                return refusal(&status.message);
            }
            let said = match status.code == 401 {
                true => format!(
                    "the API server did not accept the kubeconfig's credentials (401 {}): {ADVICE}",
                    status.reason
                ),
                false => format!("the API server answered {} {}: {}", status.code, status.reason, status.message),
            };
            parts.push(said);
            break;
        }
        parts.push(cause.to_string());
    }
    parts.dedup();
    parts.join(": ")
}

/// The API server's 403 message (`... is forbidden: User "alice" cannot get resource "configmaps"
/// in API group "" in the namespace "mcp-system"`) as one line that says what to do.
fn refusal(message: &str) -> String {
    let quoted = |after: &str| -> Option<String> {
        let rest = &message[message.find(after)? + after.len()..];
        Some(rest.split('"').next()?.to_string())
    };
    let user = quoted("User \"");
    let verb = user.as_ref().and_then(|_| {
        let rest = &message[message.find("\" cannot ")? + 9..];
        rest.split_whitespace().next().map(String::from)
    });
    let (Some(user), Some(verb), Some(resource)) = (user, verb, quoted("resource \"")) else {
        return format!("the Kubernetes API refused the request ({message}): {ADVICE}");
    };
    let resource = match quoted("in API group \"").filter(|g| !g.is_empty()) {
        Some(group) => format!("{resource}.{group}"),
        None => resource,
    };
    let place = match quoted("in the namespace \"") {
        Some(ns) => format!("in {ns}"),
        None => "cluster-wide".to_string(),
    };
    format!("the kubeconfig's user {user} may not {verb} {resource} {place}: {ADVICE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_user_verb_resource_and_place() {
        let ns = r#"configmaps "x" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "mcp-system""#;
        assert_eq!(
            refusal(ns),
            "the kubeconfig's user alice may not get configmaps in mcp-system: use an admin kubeconfig (on the k0s node: k0s kubeconfig admin)"
        );
        let cluster = r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "bob" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#;
        assert!(refusal(cluster).starts_with(
            "the kubeconfig's user bob may not list clusterroles.rbac.authorization.k8s.io cluster-wide: use"
        ));
        assert!(refusal("admission webhook denied it").starts_with("the Kubernetes API refused the request (admission"));
    }

    #[test]
    fn api_errors_lose_the_debug_form() {
        let status = kube::core::Status::failure(
            r#"pods is forbidden: User "carol" cannot list resource "pods" in API group "" in the namespace "a""#,
            "Forbidden",
        )
        .with_code(403);
        let e = anyhow::Error::from(kube::Error::Api(Box::new(status))).context("reading the release");
        let line = one_line(&e);
        assert_eq!(line, "the kubeconfig's user carol may not list pods in a: use an admin kubeconfig (on the k0s node: k0s kubeconfig admin)");
        let other = kube::core::Status::failure("the server is busy", "TooManyRequests").with_code(429);
        let line = one_line(&anyhow::Error::from(kube::Error::Api(Box::new(other))).context("reading"));
        assert_eq!(line, "reading: the API server answered 429 TooManyRequests: the server is busy");
        assert!(!line.contains("Status {") && !line.contains("Some("));
    }
}
