//! The real helm 3 and helm 4 CLIs the local parts carry (`up` deploys with helm): helm 4 is built
//! with BuildKit and buildx (`buildkit.rs`), helm 3 here, in the cluster's module.

use super::go_build::{go_env, require_go, source_key};
use crate::programs::shell::Shell;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// The helm releases the tests deploy with: the newest 3.x that matches the control plane's
/// client-go line (built in its module), and the newest 4.x (built with BuildKit and buildx).
pub const HELM3: &str = "v3.19.5";
pub const HELM4: &str = "v4.3.1";

/// helm 3, built in `testcluster/` (its `tools.go` pins it), after the cluster when there is one:
/// the Kubernetes libraries they share are compiled by then. Rebuilt when the module changes.
pub(crate) fn build_helm3(sh: &Shell, root: &Path) -> Result<PathBuf> {
    let src = root.join("testcluster");
    let bin = root.join(format!("target/tools/helm-{HELM3}-{}/helm", source_key(&src)?));
    if bin.is_file() {
        return Ok(bin);
    }
    require_go()?;
    eprintln!("building helm {HELM3} from helm.sh/helm/v3 in testcluster/");
    let _env = go_env(sh, root);
    let _dir = sh.sh.push_dir(&src);
    let ldflags = format!("-s -w -X helm.sh/helm/v3/internal/version.version={HELM3}");
    sh.run(cmd!(sh.sh, "go build -trimpath -ldflags {ldflags} -o {bin} helm.sh/helm/v3/cmd/helm"))
        .with_context(|| format!("cannot build helm {HELM3} (go build's output is above)"))?;
    Ok(bin)
}
