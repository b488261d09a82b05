//go:build tools

// Package tools pins BuildKit's daemon and the buildx plugin for `cargo xtask test`, which builds
// both with one `go build` in this module: `go install` refuses BuildKit's own module (its go.mod
// has exclude directives), and buildx requires the same BuildKit, containerd and gRPC, so the
// packages they share are compiled once. The versions selected here are the ones buildx's own
// go.mod requires.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
