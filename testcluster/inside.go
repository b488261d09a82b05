package main

// `testcluster inside`, in the node's network and mount namespaces: the control plane, then the
// node (containerd, kubelet, kube-proxy, kube-router, CoreDNS); DIR/ready.json once CoreDNS is
// ready; when its stdin closes the pods are deleted before kubelet and containerd stop.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kmcp.dev/testcluster/node"
)

var nodeName = node.First.Name

func inside(args []string) error {
	fs := flag.NewFlagSet("inside", flag.ExitOnError)
	dir := fs.String("dir", "", "data directory")
	registries := fs.String("registry", "", "comma-separated loopback registries")
	pauseImage := fs.String("pause-image", "", "the sandbox image")
	corednsImage := fs.String("coredns-image", "", "CoreDNS's image")
	kubeRouter := fs.String("kube-router", "", "the kube-router binary")
	fs.Parse(args)
	abs := *dir
	if err := privateHostPaths(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(abs, "pki"), 0o700); err != nil {
		return err
	}
	nodeIP := net.ParseIP(node.NodeIP).To4()
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	signal.Ignore(syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 8)

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
		{"node", "system:node:" + nodeName, "system:nodes"},
		{"scheduler", "system:kube-scheduler", ""},
		{"proxy", "system:kube-proxy", ""},
		{"kube-router", "kube-router", "system:masters"},
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
	self, _ := os.Executable()
	// containerd starts while the API server does.
	d := node.Dirs{Root: filepath.Join(abs, "node")}
	config, err := node.WriteContainerdConfig(d, node.PodCIDR, *pauseImage, strings.Split(*registries, ","))
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() { stopAll(procs) }()
	containerd, err := startProcess(abs, "containerd", "containerd", []string{"--config", config}, errs)
	if err != nil {
		return err
	}
	procs = append(procs, containerd)
	if err := waitFor("kube-apiserver /readyz", 120*time.Second, errs, func() bool { return apiReady(admin) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: kube-apiserver ready at %s after %s\n", server, time.Since(start).Round(time.Millisecond))
	startControllerManager(ctx, controllerManagerCmd, p, kubeconfigs["controller-manager"], errs)
	sc := kubeconfigs["scheduler"]
	schedulerCmd, err := startProcess(abs, "kube-scheduler", self, []string{"kube-scheduler", "--kubeconfig=" + sc,
		"--authentication-kubeconfig=" + sc, "--authorization-kubeconfig=" + sc, "--leader-elect=false", "--secure-port=0"}, errs)
	if err != nil {
		return err
	}
	procs = append(procs, schedulerCmd)
	if err := waitFor("containerd's socket", 30*time.Second, errs, func() bool { _, err := os.Stat(d.Socket()); return err == nil }); err != nil {
		return err
	}
	kubeletArgs, err := node.KubeletArgs(d, node.First, kubeconfigs["node"], filepath.Join(p.dir, "ca.crt"))
	if err != nil {
		return err
	}
	kubeletCmd, err := startProcess(abs, "kubelet", self, append([]string{"kubelet"}, kubeletArgs...), errs)
	if err != nil {
		return err
	}
	procs = append(procs, kubeletCmd)
	proxyArgs, proxyConfig, err := node.KubeProxyArgs(d, node.First, kubeconfigs["proxy"])
	if err != nil {
		return err
	}
	proxyCmd, err := startProcess(abs, "kube-proxy", self, append([]string{"kube-proxy"}, proxyArgs...), errs)
	if err != nil {
		return err
	}
	procs = append(procs, proxyCmd)
	if err := waitFor("the default ServiceAccount and kube-root-ca.crt", 120*time.Second, errs, func() bool { return defaultServiceAccountReady(admin) }); err != nil {
		return err
	}
	if err := waitFor("node "+nodeName+" registered", 60*time.Second, errs, func() bool { return setPodCIDR(admin, node.First) }); err != nil {
		return err
	}
	routerCmd, err := startProcess(abs, "kube-router", *kubeRouter, node.KubeRouterArgs(nodeName, kubeconfigs["kube-router"]), errs)
	if err != nil {
		return err
	}
	procs = append(procs, routerCmd)
	if err := node.DeployCoreDNS(ctx, admin, *corednsImage); err != nil {
		return fmt.Errorf("CoreDNS: %w", err)
	}
	if err := node.PublishKubeProxyConfig(ctx, admin, proxyConfig); err != nil {
		return fmt.Errorf("kube-proxy's configuration: %w", err)
	}
	if err := waitFor("node "+nodeName+" Ready", 60*time.Second, errs, func() bool { return nodeReady(admin, nodeName) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: node Ready after %s\n", time.Since(start).Round(time.Millisecond))
	if err := waitFor("CoreDNS ready", 90*time.Second, errs, func() bool { return node.CoreDNSReady(ctx, admin) }); err != nil {
		return err
	}
	ready := Ready{Kubeconfig: kubeconfigs["admin"], Server: server, NodeName: nodeName, NodeIP: node.NodeIP,
		PublicIP: node.PublicIP, Netns: node.Namespace, AuditLog: filepath.Join(abs, "audit.log"), PID: os.Getpid()}
	if err := writeJSON(filepath.Join(abs, "ready.json"), ready); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testcluster: ready after %s (%s)\n", time.Since(start).Round(time.Millisecond), filepath.Join(abs, "ready.json"))

	select {
	case <-stop:
		begin := time.Now()
		deletePods(admin)
		fmt.Fprintf(os.Stderr, "testcluster: pods deleted in %s; stopping the node\n", time.Since(begin).Round(time.Millisecond))
		return nil
	case err := <-errs:
		return err
	}
}

// privateHostPaths mounts a tmpfs of this mount namespace's own on the host paths kubelet,
// containerd and the CNI plugins write to whatever they are told.
func privateHostPaths() error {
	for _, p := range []string{"/run", "/var/lib", "/var/log"} {
		if err := syscall.Mount("tmpfs", p, "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", p, err)
		}
	}
	return nil
}

// startProcess runs one of the node's programs with its output in DIR/<name>.log.
func startProcess(dir, name, bin string, args []string, errs chan<- error) (*exec.Cmd, error) {
	log, err := logFile(dir, name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		err := cmd.Wait()
		errs <- fmt.Errorf("%s stopped (%v): see %s", name, err, filepath.Join(dir, name+".log"))
	}()
	return cmd, nil
}

// stopAll stops the node's programs (their pods are gone by then): SIGTERM, then SIGKILL after 5 s.
func stopAll(procs []*exec.Cmd) {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range procs {
		for time.Now().Before(deadline) && p.ProcessState == nil && syscall.Kill(p.Process.Pid, 0) == nil && !exited(p.Process.Pid) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = p.Process.Kill()
	}
}

// exited says whether a child has ended (a zombie not yet reaped by its Wait goroutine).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// deletePods deletes every pod at once and waits (briefly) until kubelet has stopped them.
func deletePods(c *kubernetes.Clientset) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	zero := int64(0)
	nss, _ := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if nss != nil {
		for _, ns := range nss.Items {
			// Their controllers first, or the controller manager makes the pods again.
			_ = c.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = c.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = c.AppsV1().DaemonSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			_ = c.AppsV1().StatefulSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}
		for _, ns := range nss.Items {
			_ = c.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		}
	}
	for ctx.Err() == nil && node.PodProcesses(node.First) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}
