//! One checked claim about a deployment and the server's mode as the checks saw it: what every
//! proof (verify's MCP, RBAC, door and Secret checks) records, and the SubjectAccessReview they ask.

use anyhow::Result;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use serde::Serialize;

#[derive(Serialize, Debug)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// The check could not run here (never a pass).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Passed, with something the operator should know (printed as WARN).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub detail: String,
}

#[derive(Serialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Mode {
    pub read_only: bool,
    pub stateless: bool,
    pub tools: usize,
    pub write_tools: Vec<String>,
    /// The server offers the helm toolset's tools (`helm_*`), which read Helm's release Secrets.
    pub helm_toolset: bool,
    /// The tools offered that hand out a credential (configuration_view unless disabled).
    pub credential_tools: Vec<String>,
}

pub(crate) fn check(checks: &mut Vec<Check>, name: &str, result: Result<String>) -> bool {
    let (passed, detail) = match result {
        Ok(d) => (true, d),
        Err(e) => (false, crate::common::error_text::one_line(&e)),
    };
    checks.push(Check { name: name.into(), passed, skipped: false, warning: false, detail });
    passed
}

/// A check that could not run here (`SKIP`, never a pass).
pub(crate) fn skip(checks: &mut Vec<Check>, name: &str, detail: String) {
    checks.push(Check { name: name.into(), passed: false, skipped: true, warning: false, detail });
}

/// A SubjectAccessReview of `user` doing `verb` on `group`/`resource` (in `namespace`, or all).
pub(crate) fn access_review(
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                namespace: namespace.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}
