//! The real act (nektos/act) that `cargo xtask test` built, running this repository's workflows on
//! this host (`-P ubuntu-latest=-self-hosted`) from a committed copy of the workspace. The
//! third-party actions, which cannot be downloaded here, are mapped (`--local-repository`) to
//! stand-ins written here, each doing only what the real one guarantees the later steps; `sudo`
//! (absent here, and the tests run as root) is a stand-in on PATH that runs its command, except the
//! README's test command, which it records in a marker instead of running the tests recursively.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository act runs the workflows of, as GitHub would name it.
pub const REPOSITORY: &str = "kmcp-dev/kmcp-xtask";

pub struct Act {
    dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// Where the `sudo` stand-in writes the command it did not run.
    pub marker: PathBuf,
    /// Every step summary the jobs wrote, in order.
    pub summary: PathBuf,
    /// The secret `GITHUB_TOKEN` act is given (through its environment, never its command line):
    /// it must never appear in what act prints.
    pub secret: String,
    env: Vec<(String, std::ffi::OsString)>,
}

/// One act run: its exit, its JSON log lines, and its output whole (to look for secrets in).
pub struct ActRun {
    pub ok: bool,
    pub lines: Vec<Value>,
    pub all: String,
}

impl ActRun {
    /// The steps whose main part act ran, with their result (`success`, `failure`); a step
    /// whose `if:` was false has none.
    pub fn steps(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .filter(|l| l["stage"] == "Main")
            .filter_map(|l| Some((l["step"].as_str()?.to_string(), l["stepResult"].as_str()?.to_string())))
            .collect()
    }

    pub fn job_result(&self) -> Option<String> {
        self.lines.iter().rev().find_map(|l| l["jobResult"].as_str().map(str::to_string))
    }

    /// Everything the steps printed, in order.
    pub fn output(&self) -> String {
        let raw = self.lines.iter().filter(|l| l["raw_output"] == true);
        raw.filter_map(|l| l["msg"].as_str()).collect::<Vec<_>>().join("\n")
    }

    pub fn assert_succeeded(&self) -> &ActRun {
        let failed: Vec<_> = self.steps().into_iter().filter(|(_, r)| r == "failure").collect();
        assert!(
            self.ok && failed.is_empty() && self.job_result().as_deref() == Some("success"),
            "act: {failed:?}\n{}",
            self.all
        );
        self
    }
}

impl Act {
    pub fn new() -> Act {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        copy_workspace(&repo);
        let marker = dir.path().join("test-step-marker");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        write_executable(&bin.join("sudo"), SUDO);
        let standins = dir.path().join("standins");
        for (name, action) in STANDINS {
            let at = standins.join(name.replace(['/', '@'], "_"));
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join("action.yml"), action).unwrap();
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let path = std::env::join_paths(
            std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let env = vec![
            ("PATH".into(), path),
            ("KMCP_ACT_MARKER".into(), marker.clone().into()),
            ("KMCP_ACT_REPOS".into(), dir.path().join("repos").into()),
            ("KMCP_ACT_ARTIFACTS".into(), dir.path().join("artifacts").into()),
            // One target directory for every job act runs: the dependencies compile once.
            ("CARGO_TARGET_DIR".into(), root.join("target/act").into()),
            ("XDG_CONFIG_HOME".into(), dir.path().join("config").into()),
            ("XDG_CACHE_HOME".into(), dir.path().join("cache").into()),
            ("ACT_DISABLE_VERSION_CHECK".into(), "1".into()),
            // Every `run:` step's bash reads this first: it keeps the step summary the step wrote,
            // which act deletes with the job.
            ("BASH_ENV".into(), dir.path().join("keep-summary.sh").into()),
            ("KMCP_ACT_SUMMARY".into(), dir.path().join("summary.md").into()),
        ];
        std::fs::write(dir.path().join("keep-summary.sh"), KEEP_SUMMARY).unwrap();
        let summary = dir.path().join("summary.md");
        let secret = format!("ghs_act{}", super::cluster::unique("secret").replace('-', ""));
        Act { dir, repo, marker, summary, secret, env }
    }

    /// Makes `from` the checkout of `name` (owner/repo) that the `actions/checkout` stand-in copies.
    pub fn add_repository(&self, name: &str, from: &Path) {
        let to = self.dir.path().join("repos").join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let ok = Command::new("cp").arg("-al").arg(from).arg(&to).status().unwrap().success();
        assert!(ok, "cannot copy {}", from.display());
        // The branch the workflows name by default.
        let ok = Command::new("git").args(["update-ref", "refs/heads/main", "HEAD"]).current_dir(&to).status().unwrap();
        assert!(ok.success());
    }

    /// `act EVENT` for one workflow's job, on this host, with the stand-ins.
    pub fn run(
        &self,
        event: &str,
        workflow: &str,
        job: &str,
        extra: &[String],
        env: &[(&str, &str)],
        payload: &Value,
    ) -> ActRun {
        let event_file = self.dir.path().join(format!("event-{event}-{}.json", super::cluster::unique("e")));
        std::fs::write(&event_file, payload.to_string()).unwrap();
        let mut cmd = Command::new(std::env::var("KMCP_ACT").expect("KMCP_ACT: run the tests with `cargo xtask test`"));
        cmd.arg(event)
            .args(["-W", &format!(".github/workflows/{workflow}"), "-j", job])
            .arg("-C")
            .arg(&self.repo)
            .args(["-P", "ubuntu-latest=-self-hosted", "--action-offline-mode", "--no-cache-server", "--json"])
            .arg("--action-cache-path")
            .arg(self.dir.path().join("actions"))
            .arg("-e")
            .arg(&event_file)
            .args(["-s", "GITHUB_TOKEN"])
            .env("GITHUB_TOKEN", &self.secret);
        for (name, _) in STANDINS {
            let at = self.dir.path().join("standins").join(name.replace(['/', '@'], "_"));
            cmd.arg("--local-repository").arg(format!("{name}={}", at.display()));
        }
        cmd.args(extra);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let set_by_cargo = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ];
            if set_by_cargo.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key.as_ref());
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("act");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let lines = stdout.lines().chain(stderr.lines()).filter_map(|l| serde_json::from_str(l).ok()).collect();
        ActRun { ok: out.status.success(), lines, all: format!("{stdout}\n{stderr}") }
    }
}

/// The workspace's files as git sees them (tracked, and new ones not ignored), committed in a
/// repository of their own whose origin is GitHub's `REPOSITORY`.
fn copy_workspace(to: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "git ls-files in {}", root.display());
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = Path::new(std::str::from_utf8(name).unwrap());
        let from = root.join(name);
        if !from.is_file() {
            continue;
        }
        let dest = to.join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap();
    }
    let repo = git2::Repository::init(to).unwrap();
    super::commit_all(&repo, "the workspace under test");
    repo.remote("origin", &format!("https://github.com/{REPOSITORY}.git")).unwrap();
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Read by bash before each `run:` step (`BASH_ENV`): on exit, the step's summary is appended to
/// the test's file.
const KEEP_SUMMARY: &str = r#"trap '[ -s "$GITHUB_STEP_SUMMARY" ] && cat "$GITHUB_STEP_SUMMARY" >> "$KMCP_ACT_SUMMARY"' EXIT
"#;

/// Stand-in for `sudo`: the tests run as root, so it runs its command (after `-E`), except
/// `cargo xtask test`, which it records instead: the workflow tests must not run the tests again.
const SUDO: &str = r#"#!/bin/sh
# Stand-in for sudo, written by the workflow tests.
[ "$1" = "-E" ] && shift
case " $* " in
  *" cargo xtask test "*)
    printf '%s\n' "$*" > "$KMCP_ACT_MARKER"
    echo "sudo stand-in: recorded, not run: $*"
    exit 0 ;;
esac
exec "$@"
"#;

/// The third-party actions the workflows use, each a composite action doing only what the real
/// one guarantees the steps after it.
const STANDINS: [(&str, &str); 9] = [
    (
        "actions/checkout@v7",
        r#"name: checkout (stand-in)
description: "act checks out the workflow's own repository itself; for another, this copies the checkout the test made of it (KMCP_ACT_REPOS/owner/name), checks out the ref, and sets origin to GitHub's URL, as a real checkout leaves it."
inputs:
  repository: {required: false, default: ""}
  ref: {required: false, default: ""}
  path: {required: false, default: ""}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        REPOSITORY: ${{ inputs.repository }}
        REF: ${{ inputs.ref }}
        DEST: ${{ github.workspace }}/${{ inputs.path }}
      run: |
        src="$KMCP_ACT_REPOS/$REPOSITORY"
        [ -d "$src/.git" ] || { echo "checkout stand-in: no repository $REPOSITORY"; exit 1; }
        mkdir -p "$DEST"
        cp -a "$src/." "$DEST/"
        git -C "$DEST" checkout --quiet --detach "${REF:-HEAD}"
        git -C "$DEST" remote remove origin 2>/dev/null || true
        git -C "$DEST" remote add origin "https://github.com/$REPOSITORY.git"
"#,
    ),
    (
        "dtolnay/rust-toolchain@stable",
        r#"name: rust-toolchain (stand-in)
description: "The host's Rust toolchain, with the components asked for."
inputs:
  components: {required: false, default: ""}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        COMPONENTS: ${{ inputs.components }}
      run: |
        cargo --version
        for c in ${COMPONENTS//,/ }; do
          case "$c" in
            rustfmt) cargo fmt --version ;;
            clippy) cargo clippy --version ;;
          esac
        done
"#,
    ),
    (
        "Swatinem/rust-cache@v2",
        "name: rust-cache (stand-in)\ndescription: \"No cache; cargo builds what it needs.\"\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo 'rust-cache stand-in, no cache'\n",
    ),
    (
        "actions/setup-go@v7",
        r#"name: setup-go (stand-in)
description: "The host's Go on PATH."
inputs:
  go-version: {required: false, default: ""}
  cache: {required: false, default: "true"}
runs:
  using: composite
  steps:
    - shell: bash
      run: go version
"#,
    ),
    (
        "actions/cache@v5",
        r#"name: cache (stand-in)
description: "Nothing restored or saved."
inputs:
  path: {required: true}
  key: {required: true}
  restore-keys: {required: false, default: ""}
outputs:
  cache-hit:
    description: "never"
    value: "false"
runs:
  using: composite
  steps:
    - shell: bash
      run: echo 'cache stand-in, nothing restored'
"#,
    ),
    (
        "azure/setup-helm@v4",
        r#"name: setup-helm (stand-in)
description: "helm on PATH (the tests' helm 4, the latest major, as the real action installs by default)."
inputs:
  version: {required: false, default: latest}
runs:
  using: composite
  steps:
    - shell: bash
      run: |
        dir="$RUNNER_TEMP/setup-helm"
        mkdir -p "$dir"
        ln -sf "$KMCP_HELM4" "$dir/helm"
        echo "$dir" >> "$GITHUB_PATH"
"#,
    ),
    (
        "docker/setup-buildx-action@v4",
        r#"name: setup-buildx-action (stand-in)
description: "A builder in use, on the tests' BuildKit (the runner's docker CLI and buildx plugin come with it)."
runs:
  using: composite
  steps:
    - shell: bash
      run: docker buildx create --driver remote "$KMCP_BUILDKIT" --use
"#,
    ),
    (
        "docker/setup-qemu-action@v4",
        "name: setup-qemu-action (stand-in)\ndescription: \"No emulation here; the tests' forks cross-compile.\"\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo 'setup-qemu stand-in, no emulation'\n",
    ),
    (
        "actions/upload-artifact@v7",
        r#"name: upload-artifact (stand-in)
description: "The files copied to KMCP_ACT_ARTIFACTS/name."
inputs:
  name: {required: false, default: artifact}
  path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        NAME: ${{ inputs.name }}
        FROM: ${{ inputs.path }}
      run: |
        mkdir -p "$KMCP_ACT_ARTIFACTS/$NAME"
        cp -a $FROM "$KMCP_ACT_ARTIFACTS/$NAME/"
"#,
    ),
];
