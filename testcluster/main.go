// Command testcluster is the tests' Kubernetes: embedded etcd, the real kube-apiserver,
// kube-controller-manager and kube-scheduler in one process, and one real node (containerd, runc,
// the CNI plugins, kubelet, kube-proxy, CoreDNS, kube-router's NetworkPolicy firewall), all
// inside a network namespace of its own; the host keeps only a veth link to it while it runs.
// Workers join it on demand, each in a network namespace of its own (`worker`).
//
//	testcluster run -dir DIR -registry HOST:PORT,... ...   start, write DIR/ready.json, run until SIGTERM
//	testcluster kubeconfig -dir DIR -user NAME [-group G] -out FILE
//	testcluster client add|del -dir DIR -name NAME [-network internal|public]
//	testcluster relay -dir DIR -registry 127.0.0.1:PORT    one more registry for the node, until killed
//	testcluster worker -dir DIR [-n N]                     one more node (kmcp-node-N), until SIGTERM
//	testcluster kubelet|kube-proxy|kube-scheduler ARGS...  (the node's programs, run by `run`)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Ready is what DIR/ready.json tells the tests.
type Ready struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	NodeName   string `json:"nodeName"`
	NodeIP     string `json:"nodeIP"`
	PublicIP   string `json:"publicIP"`
	Netns      string `json:"netns"`
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
	case "inside":
		err = inside(os.Args[2:])
	case "kubeconfig":
		err = kubeconfigCmd(os.Args[2:])
	case "client":
		err = clientCmd(os.Args[2:])
	case "relay":
		err = relayCmd(os.Args[2:])
	case "worker":
		err = workerCmd(os.Args[2:])
	case "worker-inside":
		err = workerInside(os.Args[2:])
	case "kubelet", "kube-proxy", "kube-scheduler":
		os.Exit(runComponent(os.Args[1], os.Args[2:]))
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

// writeJSON writes v to path whole or not at all (a reader polling for the file never sees half).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func kubeconfigCmd(args []string) error {
	fs := flag.NewFlagSet("kubeconfig", flag.ExitOnError)
	dir := fs.String("dir", "", "the cluster's directory")
	user := fs.String("user", "", "user name (certificate CN)")
	group := fs.String("group", "", "comma-separated groups (certificate O)")
	out := fs.String("out", "", "where to write the kubeconfig")
	fs.Parse(args)
	var ready Ready
	if err := readJSON(filepath.Join(*dir, "ready.json"), &ready); err != nil {
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
