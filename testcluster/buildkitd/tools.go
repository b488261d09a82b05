//go:build tools

// Package tools pins BuildKit's daemon, the buildx plugin and helm 4 for `cargo xtask test`, which
// builds them with one `go build` in this module: `go install` refuses BuildKit's own module (its
// go.mod has exclude directives), and buildx and helm 4 require nearly the same BuildKit,
// containerd, gRPC, OpenTelemetry and Kubernetes libraries, so the packages they share are
// compiled once. buildx gets its go.mod's versions but for a dozen patch and minor releases
// (Kubernetes 0.37.1 for 0.37.0, golang.org/x one minor up); helm 4 gets its own but for the
// newer patch or minor releases buildx requires.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "helm.sh/helm/v4/cmd/helm"
)
