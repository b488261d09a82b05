package main

// The node's programs, built into this binary and run as its subcommands: kubelet and kube-proxy
// exactly as their own main functions run them.

import (
	"context"

	"github.com/spf13/cobra"

	"k8s.io/component-base/cli"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func runComponent(name string, args []string) int {
	var cmd *cobra.Command
	switch name {
	case "kubelet":
		cmd = kubelet.NewKubeletCommand(context.Background())
	case "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	default:
		cmd = proxy.NewProxyCommand()
	}
	cmd.SetArgs(args)
	return cli.Run(cmd)
}
