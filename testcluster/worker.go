package main

// `testcluster worker -dir DIR [-n N]`, on the host, beside a running cluster: one more node, a
// worker set up as k0s sets one up (containerd, kubelet, kube-proxy, kube-router's firewall)
// joined to the same control plane, in a network namespace of its own on the first node's two
// networks. DIR/kmcp-node-N/ready.json once it is Ready; on SIGTERM it is cordoned, its pods
// deleted, it leaves the cluster, and everything it made on the host is removed.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kmcp.dev/testcluster/node"
)

// workerParts is what `run` leaves in DIR/worker.json for the workers: the registries they pull
// from, the sandbox image, kube-router.
type workerParts struct {
	Registries []string `json:"registries"`
	PauseImage string   `json:"pauseImage"`
	KubeRouter string   `json:"kubeRouter"`
}

func workerFlags(name string, args []string) (string, node.Node, workerParts, error) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	dir := fs.String("dir", "", "the running cluster's directory")
	number := fs.Int("n", 2, "the node's number, 2 to 9")
	fs.Parse(args)
	var parts workerParts
	if *number < 2 || *number > 9 {
		return "", node.Node{}, parts, fmt.Errorf("-n %d: a worker's number is 2 to 9", *number)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return "", node.Node{}, parts, err
	}
	if err := readJSON(filepath.Join(abs, "worker.json"), &parts); err != nil {
		return "", node.Node{}, parts, fmt.Errorf("no cluster started in %s: %w", abs, err)
	}
	return abs, node.Worker(*number), parts, nil
}

func workerCmd(args []string) error {
	dir, n, parts, err := workerFlags("worker", args)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "ready.json")); err != nil {
		return fmt.Errorf("the cluster in %s is not ready: start it first", dir)
	}
	restore := node.SaveTunables()
	defer restore()
	if err := node.SetupWorker(n); err != nil {
		return fmt.Errorf("%s's network: %w", n.Name, err)
	}
	defer node.RemoveWorker(n)
	stopRelays, err := relayRegistries(n.Namespace, parts.Registries)
	if err != nil {
		return err
	}
	defer stopRelays()
	child, err := selfInNamespaces(n.Namespace, "worker-inside", "-dir", dir, "-n", strings.TrimPrefix(n.Name, "kmcp-node-"))
	if err != nil {
		return err
	}
	return supervise(child, n.Name)
}

// workerInside runs in the worker's network and mount namespaces.
func workerInside(args []string) error {
	dir, n, parts, err := workerFlags("worker-inside", args)
	if err != nil {
		return err
	}
	if err := privateHostPaths(); err != nil {
		return err
	}
	var cluster Ready
	if err := readJSON(filepath.Join(dir, "ready.json"), &cluster); err != nil {
		return err
	}
	root := filepath.Join(dir, n.Name)
	os.RemoveAll(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	p, err := loadPKI(filepath.Join(dir, "pki"))
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(root, "node.kubeconfig")
	if err := p.kubeconfig(kubeconfig, cluster.Server, "system:node:"+n.Name, []string{"system:nodes"}); err != nil {
		return err
	}
	admin, err := clientFor(cluster.Kubeconfig)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	signal.Ignore(syscall.SIGINT)
	errs := make(chan error, 8)
	start := time.Now()
	d := node.Dirs{Root: root}
	config, err := node.WriteContainerdConfig(d, n.PodCIDR, parts.PauseImage, parts.Registries)
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() { stopAll(procs) }()
	run := func(name, bin string, args []string) error {
		cmd, err := startProcess(root, name, bin, args, errs)
		if err == nil {
			procs = append(procs, cmd)
		}
		return err
	}
	if err := run("containerd", "containerd", []string{"--config", config}); err != nil {
		return err
	}
	if err := waitFor("containerd's socket", 30*time.Second, errs, func() bool { _, err := os.Stat(d.Socket()); return err == nil }); err != nil {
		return err
	}
	self, _ := os.Executable()
	kubeletArgs, err := node.KubeletArgs(d, n, kubeconfig, filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return err
	}
	if err := run("kubelet", self, append([]string{"kubelet"}, kubeletArgs...)); err != nil {
		return err
	}
	proxyArgs, _, err := node.KubeProxyArgs(d, n, filepath.Join(dir, "proxy.kubeconfig"))
	if err != nil {
		return err
	}
	if err := run("kube-proxy", self, append([]string{"kube-proxy"}, proxyArgs...)); err != nil {
		return err
	}
	if err := waitFor("node "+n.Name+" registered", 60*time.Second, errs, func() bool { return setPodCIDR(admin, n) }); err != nil {
		return err
	}
	if err := run("kube-router", parts.KubeRouter, node.KubeRouterArgs(n.Name, filepath.Join(dir, "kube-router.kubeconfig"))); err != nil {
		return err
	}
	if err := waitFor("node "+n.Name+" Ready", 60*time.Second, errs, func() bool { return nodeReady(admin, n.Name) }); err != nil {
		return err
	}
	ready := Ready{Kubeconfig: cluster.Kubeconfig, Server: cluster.Server, NodeName: n.Name, NodeIP: n.IP,
		PublicIP: n.PublicIP, Netns: n.Namespace, AuditLog: cluster.AuditLog, PID: os.Getpid()}
	if err := writeJSON(filepath.Join(root, "ready.json"), ready); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: %s Ready after %s\n", n.Name, time.Since(start).Round(time.Millisecond))
	select {
	case <-stop:
		leave(admin, n)
		return nil
	case err := <-errs:
		return err
	}
}

// leave cordons the worker, deletes its pods (their controllers make them again elsewhere), waits
// briefly until kubelet has stopped them, and deletes the node.
func leave(c *kubernetes.Clientset, n node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _ = c.CoreV1().Nodes().Patch(ctx, n.Name, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	zero := int64(0)
	on := metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}
	pods, _ := c.CoreV1().Pods("").List(ctx, on)
	if pods != nil {
		for _, p := range pods.Items {
			_ = c.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	}
	for ctx.Err() == nil && node.PodProcesses(n) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	// The Node goes even when its pods were slow to stop: the tests that follow must find one node.
	for i := 0; i < 30; i++ {
		del, cancelDel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.CoreV1().Nodes().Delete(del, n.Name, metav1.DeleteOptions{})
		cancelDel()
		if err == nil || apierrors.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "testcluster: %s left the cluster\n", n.Name)
			return
		}
		time.Sleep(time.Second)
	}
	fmt.Fprintf(os.Stderr, "testcluster: %s could not be deleted from the cluster\n", n.Name)
}
