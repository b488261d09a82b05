//! What act is given in place of what cannot run here: the third-party actions (composite
//! stand-ins mapped with `--local-repository`), `sudo`, and a `BASH_ENV` hook keeping the step
//! summaries that act deletes with each job.

/// Read by bash before each `run:` step (`BASH_ENV`): on exit, the step's summary is appended to
/// the test's file.
pub(crate) const KEEP_SUMMARY: &str = r#"trap '[ -s "$GITHUB_STEP_SUMMARY" ] && cat "$GITHUB_STEP_SUMMARY" >> "$KMCP_ACT_SUMMARY"' EXIT
"#;

/// Stand-in for `sudo`: the tests run as root, so it runs its command (after `-E`), except
/// `cargo xtask test`, which it records instead: the workflow tests must not run the tests again.
pub(crate) const SUDO: &str = r#"#!/bin/sh
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
pub(crate) const STANDINS: [(&str, &str); 9] = [
    (
        "actions/checkout@v7",
        r#"name: checkout (stand-in)
description: "Copies the checkout the test made of the repository (KMCP_ACT_REPOS/owner/name; the workflow's own when none is named) with its files' times, checks out the ref when one is named, and sets origin to GitHub's URL, as a real checkout leaves it."
inputs:
  repository: {required: false, default: ""}
  ref: {required: false, default: ""}
  path: {required: false, default: ""}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        REPOSITORY: ${{ inputs.repository || github.repository }}
        REF: ${{ inputs.ref }}
        DEST: ${{ github.workspace }}/${{ inputs.path }}
      run: |
        src="$KMCP_ACT_REPOS/$REPOSITORY"
        [ -d "$src/.git" ] || { echo "checkout stand-in: no repository $REPOSITORY"; exit 1; }
        mkdir -p "$DEST"
        cp -a "$src/." "$DEST/"
        [ -z "$REF" ] || git -C "$DEST" checkout --quiet --detach "$REF"
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
