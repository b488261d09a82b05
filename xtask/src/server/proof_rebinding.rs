//! DNS rebinding, tried as a web page in the laptop's browser would: `initialize` with a foreign
//! `Host` and `Origin`, and then with the URL's own `Host` but a foreign `Origin` (a page of
//! another site calling the real address), from an address the door admits. Both refused: PASS;
//! either answered: a warning that says what such a page could do and what protects against it
//! (docs/security.md).

use crate::server::check::Check;
use crate::server::mcp;

pub const FOREIGN_HOST: &str = "rebind.example";

pub(crate) async fn check_rebinding(url: &str, checks: &mut Vec<Check>) {
    let name = "foreign Host and Origin (DNS rebinding)".to_string();
    let origin = format!("http://{FOREIGN_HOST}");
    let own_host = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default();
    let tried = match mcp::initialize_as(url, FOREIGN_HOST, &origin).await {
        Ok(status) if !(200..300).contains(&status) => match mcp::initialize_as(url, own_host, &origin).await {
            Ok(s) if (200..300).contains(&s) => Err(anyhow::anyhow!("Host: {own_host} with Origin: {origin} answered (HTTP {s}) though the foreign Host was refused (HTTP {status}): the guard does not check Origin")),
            Ok(s) => Ok((status, s)),
            Err(e) => Err(e),
        },
        Ok(status) => Ok((status, status)),
        Err(e) => Err(e),
    };
    let (passed, warning, detail) = match tried {
        Ok((status, _)) if (200..300).contains(&status) => (
            true,
            true,
            format!(
                "answered (HTTP {status} to initialize with Host: {FOREIGN_HOST}, Origin: {origin}): the server checks neither, so a web page the laptop's browser opens can rebind its own name to this address and call every tool from the browser, reading what the agent reads; --allow-from does not stop it (the browser is on an allowed machine); what protects: the read-only mode, the disabled credential tools and the denied Secrets limit what it reads, and `up` without --no-guard puts a guard in front of the server that refuses it; see docs/security.md"
            ),
        ),
        Ok((status, with_origin)) => (true, false, format!("refused (HTTP {status}; with the URL's own Host and Origin: {origin}, HTTP {with_origin})")),
        Err(e) => (false, false, crate::common::error_text::one_line(&e)),
    };
    checks.push(Check { name, passed, skipped: false, warning, detail });
}
