package main

// `testcluster run`, on the host: it makes the node's network namespace, relays the loopback
// registries into it, pushes the node's own images, runs the cluster inside the namespace (in a
// mount namespace of its own, so every mount the node makes goes with it), and on SIGTERM stops it
// and removes what it left on the host.

import (
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

	"kmcp.dev/testcluster/node"
)

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory (emptied first)")
	registries := fs.String("registry", "", "comma-separated loopback registries (HOST:PORT) the node pulls from; the first holds the node's images")
	pause := fs.String("pause", "", "the pause binary")
	coredns := fs.String("coredns", "", "the CoreDNS binary")
	kubeRouter := fs.String("kube-router", "", "the kube-router binary")
	fs.Parse(args)
	if *dir == "" || *registries == "" || *pause == "" || *coredns == "" || *kubeRouter == "" {
		return fmt.Errorf("-dir, -registry, -pause, -coredns and -kube-router are required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat("/run/netns/" + node.Namespace); err == nil {
		fmt.Fprintln(os.Stderr, "testcluster: removing what a crashed run left")
		node.RemoveLeftovers()
	} else if left, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods"); len(left) > 0 {
		return fmt.Errorf("a kubelet already runs on this machine (%s exists): the test node would share its cgroups", left[0])
	}
	os.RemoveAll(abs)
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	regs := strings.Split(*registries, ",")
	pauseImage := regs[0] + "/kmcp/pause:test"
	if err := writeJSON(filepath.Join(abs, "worker.json"), workerParts{regs, pauseImage, *kubeRouter}); err != nil {
		return err
	}
	restore := node.SaveTunables()
	defer restore()
	defer node.UnmountNetnsDir()()
	if err := node.SetupNetwork(); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	defer node.RemoveLeftovers()
	stopRelays, err := relayRegistries(node.Namespace, regs)
	if err != nil {
		return err
	}
	defer stopRelays()
	// The sandbox image is named by tag: containerd keeps it pinned under that name.
	if _, err := node.PushBinaryImage(regs[0], "kmcp/pause", "test", *pause, "/pause", []string{"/pause"}); err != nil {
		return err
	}
	corednsRef, err := node.PushBinaryImage(regs[0], "kmcp/coredns", "test", *coredns, "/coredns", []string{"/coredns"})
	if err != nil {
		return err
	}
	child, err := selfInNamespaces(node.Namespace, "inside", "-dir", abs, "-registry", *registries,
		"-pause-image", pauseImage, "-coredns-image", corednsRef, "-kube-router", *kubeRouter)
	if err != nil {
		return err
	}
	return supervise(child, "the cluster")
}

// selfInNamespaces is this program run with args in the network namespace ns and in a mount
// namespace of its own, so every mount it makes goes with it.
func selfInNamespaces(ns string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	all := append([]string{"--net=/run/netns/" + ns, "--", "unshare", "--mount", "--propagation", "private", "--", self}, args...)
	return exec.Command("nsenter", all...), nil
}

// relayRegistries relays each loopback registry (127.0.0.1:PORT) into the network namespace ns;
// stop ends the relays.
func relayRegistries(ns string, regs []string) (stop func(), err error) {
	var relays []io.Closer
	stop = func() {
		for _, r := range relays {
			r.Close()
		}
	}
	for _, r := range regs {
		_, port, ok := strings.Cut(r, ":")
		if !ok || !strings.HasPrefix(r, "127.0.0.1:") {
			stop()
			return nil, fmt.Errorf("-registry %q: want 127.0.0.1:PORT", r)
		}
		relay, err := node.Relay(ns, port)
		if err != nil {
			stop()
			return nil, fmt.Errorf("relay to %s: %w", r, err)
		}
		relays = append(relays, relay)
	}
	return stop, nil
}

// supervise runs child (a cluster or a node, in its namespaces) until it stops or this process is
// told to stop; then closes child's stdin, its sign to stop, and waits up to 60 s.
func supervise(child *exec.Cmd, what string) error {
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	// It stops when its stdin closes: a SIGTERM would reach the API server's own signal handler,
	// which stops it before the pods could be deleted.
	stop, err := child.StdinPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("%s stopped: %v", what, err)
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "testcluster: %s: stopping %s\n", s, what)
		stop.Close()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = child.Process.Kill()
		}
		return nil
	}
}

// clientCmd adds or removes a client's network namespace on one of the node's networks; add
// prints the namespace and the client's address.
func clientCmd(args []string) error {
	if len(args) < 1 || (args[0] != "add" && args[0] != "del") {
		return fmt.Errorf("usage: testcluster client add|del -dir DIR -name NAME [-network internal|public]")
	}
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	dir := fs.String("dir", "", "the cluster's directory")
	name := fs.String("name", "", "the client's name")
	network := fs.String("network", "internal", "internal or public")
	fs.Parse(args[1:])
	if args[0] == "del" {
		return node.RemoveClient(*name)
	}
	host, err := node.NextHost(filepath.Join(*dir, "clients"))
	if err != nil {
		return err
	}
	ns, addr, err := node.AddClient(*name, *network, host)
	if err != nil {
		return err
	}
	fmt.Println(ns, addr)
	return nil
}

// relayCmd relays one more loopback registry into the node (and tells containerd it speaks
// plain HTTP) until it is killed.
func relayCmd(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	dir := fs.String("dir", "", "the cluster's directory")
	registry := fs.String("registry", "", "127.0.0.1:PORT")
	fs.Parse(args)
	stopRelay, err := relayRegistries(node.Namespace, []string{*registry})
	if err != nil {
		return err
	}
	defer stopRelay()
	if err := node.WriteHostsToml(node.Dirs{Root: filepath.Join(*dir, "node")}, *registry); err != nil {
		return err
	}
	fmt.Println("relaying", *registry)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	return nil
}

func logFile(dir, name string) (io.WriteCloser, error) {
	return os.Create(filepath.Join(dir, name+".log"))
}
