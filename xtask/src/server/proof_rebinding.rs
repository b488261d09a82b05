//! DNS rebinding, tried as a web page in the laptop's browser would: `initialize` with a foreign
//! `Host` and `Origin`, from an address the door admits. Refused: PASS; answered: a warning that
//! says what such a page could do and what protects against it (docs/security.md).

use crate::server::check::Check;
use crate::server::mcp;

pub const FOREIGN_HOST: &str = "rebind.example";

pub(crate) async fn check_rebinding(url: &str, checks: &mut Vec<Check>) {
    let name = "foreign Host and Origin (DNS rebinding)".to_string();
    let origin = format!("http://{FOREIGN_HOST}");
    let (passed, warning, detail) = match mcp::initialize_as(url, FOREIGN_HOST, &origin).await {
        Ok(status) if (200..300).contains(&status) => (
            true,
            true,
            format!(
                "answered (HTTP {status} to initialize with Host: {FOREIGN_HOST}, Origin: {origin}): the server checks neither, so a web page the laptop's browser opens can rebind its own name to this address and call every tool from the browser, reading what the agent reads; --allow-from does not stop it (the browser is on an allowed machine); what protects: the read-only mode, the disabled credential tools and the denied Secrets limit what it reads; see docs/security.md"
            ),
        ),
        Ok(status) => (true, false, format!("refused (HTTP {status})")),
        Err(e) => (false, false, crate::common::error_text::one_line(&e)),
    };
    checks.push(Check { name, passed, skipped: false, warning, detail });
}
