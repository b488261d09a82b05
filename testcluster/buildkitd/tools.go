//go:build tools

// Package tools pins BuildKit's daemon for `cargo xtask test`, which builds it with
// `go build github.com/moby/buildkit/cmd/buildkitd` in this module: `go install` refuses
// BuildKit's own module (its go.mod has exclude directives).
package tools

import _ "github.com/moby/buildkit/cmd/buildkitd"
