//go:build tools

// helm 3 is built in this module (`go build helm.sh/helm/v3/cmd/helm`) beside the cluster: it
// requires the same Kubernetes libraries one patch apart, so in one module they compile once.
package main

import _ "helm.sh/helm/v3/cmd/helm"
