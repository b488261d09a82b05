// Command testcluster is the tests' Kubernetes: embedded etcd, the real kube-apiserver and
// kube-controller-manager in one process, plus a node agent that stands in for kubelet, the
// container runtime and kube-proxy on one node.
//
//	testcluster run -dir DIR            start, write DIR/ready.json, run until SIGTERM
//	testcluster kubeconfig -dir DIR -user NAME [-group G] -out FILE
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"kmcp.dev/testcluster/nodeagent"
)

// Ready is what DIR/ready.json tells the tests.
type Ready struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	NodeName   string `json:"nodeName"`
	NodeIP     string `json:"nodeIP"`
	AuditLog   string `json:"auditLog"`
	PID        int    `json:"pid"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testcluster run|kubeconfig [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "kubeconfig":
		err = kubeconfigCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

func kubeconfigCmd(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ExitOnError)
	dir := fs.String("dir", "", "the cluster's directory")
	user := fs.String("user", "", "user name (certificate CN)")
	group := fs.String("group", "", "comma-separated groups (certificate O)")
	out := fs.String("out", "", "where to write the kubeconfig")
	fs.Parse(args)
	var ready Ready
	b, err := os.ReadFile(filepath.Join(*dir, "ready.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &ready); err != nil {
		return err
	}
	p, err := loadPKI(filepath.Join(*dir, "pki"))
	if err != nil {
		return err
	}
	var groups []string
	if *group != "" {
		groups = strings.Split(*group, ",")
	}
	return p.kubeconfig(*out, ready.Server, *user, groups)
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory (emptied first)")
	subnet := fs.String("subnet", "10.213.0", "the node network: a /24 given by its first three octets")
	bridge := fs.String("bridge", "kmcp0", "name of the node's bridge")
	nodeName := fs.String("node", "kmcp-node", "node name")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	os.RemoveAll(abs)
	if err := os.MkdirAll(filepath.Join(abs, "pki"), 0o700); err != nil {
		return err
	}
	nodeIP := net.ParseIP(*subnet + ".1").To4()
	if nodeIP == nil {
		return fmt.Errorf("invalid -subnet %q", *subnet)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	errs := make(chan error, 4)

	network, err := nodeagent.SetupNetwork(*bridge, *subnet)
	if err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	defer network.Teardown()

	p, err := createPKI(filepath.Join(abs, "pki"))
	if err != nil {
		return err
	}
	etcd, stopEtcd, err := startEtcd(abs)
	if err != nil {
		return err
	}
	defer stopEtcd()
	port, err := freePort()
	if err != nil {
		return err
	}
	server := fmt.Sprintf("https://%s:%d", nodeIP, port)
	kubeconfigs := map[string]string{}
	for _, u := range []struct{ file, user, group string }{
		{"admin", "kmcp-admin", "system:masters"},
		{"controller-manager", "kmcp-controller-manager", "system:masters"},
		{"node", "system:node:" + *nodeName, "system:nodes"},
		{"scheduler", "system:kube-scheduler", ""},
		{"proxy", "system:kube-proxy", ""},
	} {
		path := filepath.Join(abs, u.file+".kubeconfig")
		var groups []string
		if u.group != "" {
			groups = []string{u.group}
		}
		if err := p.kubeconfig(path, server, u.user, groups); err != nil {
			return err
		}
		kubeconfigs[u.file] = path
	}

	apiArgs, err := apiserverArgs(abs, etcd, nodeIP, port, p)
	if err != nil {
		return err
	}
	start := time.Now()
	apiserverCmd, controllerManagerCmd := commands()
	startAPIServer(ctx, apiserverCmd, apiArgs, errs)
	admin, err := clientFor(kubeconfigs["admin"])
	if err != nil {
		return err
	}
	if err := waitFor("kube-apiserver /readyz", 120*time.Second, errs, func() bool { return apiReady(admin) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: kube-apiserver ready at %s after %s\n", server, time.Since(start).Round(time.Millisecond))
	startControllerManager(ctx, controllerManagerCmd, p, kubeconfigs["controller-manager"], errs)
	if err := waitFor("the default ServiceAccount and kube-root-ca.crt", 120*time.Second, errs, func() bool { return defaultServiceAccountReady(admin) }); err != nil {
		return err
	}
	agent, err := nodeagent.Start(ctx, nodeagent.Config{
		NodeName:    *nodeName,
		Network:     network,
		DataDir:     filepath.Join(abs, "node"),
		APIServerIP: nodeIP.String(),
		APIPort:     port,
		NodeConfig:  kubeconfigs["node"],
		SchedConfig: kubeconfigs["scheduler"],
		ProxyConfig: kubeconfigs["proxy"],
		CAFile:      filepath.Join(p.dir, "ca.crt"),
		CertDir:     filepath.Join(abs, "node-certs"),
	})
	if err != nil {
		return fmt.Errorf("node agent: %w", err)
	}
	defer agent.Stop()
	if err := waitFor("node "+*nodeName+" Ready", 60*time.Second, errs, func() bool { return agent.NodeReady(admin) }); err != nil {
		return err
	}
	ready := Ready{Kubeconfig: kubeconfigs["admin"], Server: server, NodeName: *nodeName, NodeIP: nodeIP.String(),
		AuditLog: filepath.Join(abs, "audit.log"), PID: os.Getpid()}
	b, _ := json.MarshalIndent(ready, "", "  ")
	tmp := filepath.Join(abs, "ready.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(abs, "ready.json")); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: ready after %s (%s)\n", time.Since(start).Round(time.Millisecond), filepath.Join(abs, "ready.json"))

	select {
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "testcluster: %s: stopping\n", s)
		return nil
	case err := <-errs:
		return err
	}
}
