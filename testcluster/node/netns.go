// Package node is the tests' one real node, set up as k0s sets up a worker: containerd with runc
// and the CNI plugins, kubelet, kube-proxy (iptables mode, nodePortAddresses unset), CoreDNS behind
// the kube-dns Service, and kube-router's NetworkPolicy firewall, all inside a network namespace of
// its own. This file makes that namespace, its links and the clients' namespaces, from the host.
package node

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// The node's network namespace and its two networks: the internal one (the node's InternalIP, the
// host's way in, and the "WireGuard" network of the tests) and a "public" one (TEST-NET-2).
const (
	Namespace  = "kmcp-node"
	HostLink   = "kmcp0"
	HostIP     = "10.213.0.254"
	NodeIP     = "10.213.0.1"
	PublicIP   = "198.51.100.1"
	PodCIDR    = "10.244.0.0/24"
	ServiceDNS = "10.96.0.10"
	clientNS   = "kmcp-client-"
)

// Node is one node's identity: its name, network namespace, addresses, pods' network and, for a
// worker, the cgroup under which its kubelet keeps its pods (the first node's are kubelet's own).
type Node struct {
	Name, Namespace, IP, PublicIP, PodCIDR, CgroupRoot string
}

// First is the node that runs with the control plane.
var First = Node{Name: "kmcp-node", Namespace: Namespace, IP: NodeIP, PublicIP: PublicIP, PodCIDR: PodCIDR}

// Worker is the n-th node (2 to 9), a worker: kmcp-node-<n> at 10.213.0.<n> and 198.51.100.<n>
// (the clients' addresses start at 10), its pods in 10.244.<n-1>.0/24.
func Worker(n int) Node {
	name := fmt.Sprintf("kmcp-node-%d", n)
	return Node{Name: name, Namespace: name, IP: fmt.Sprintf("10.213.0.%d", n),
		PublicIP: fmt.Sprintf("198.51.100.%d", n), PodCIDR: fmt.Sprintf("10.244.%d.0/24", n-1), CgroupRoot: "/" + name}
}

// Networks by name: the bridge in the node's namespace, its prefix and the node's address on it.
var Networks = map[string]struct{ Bridge, Prefix, NodeIP string }{
	"internal": {"br-internal", "10.213.0", NodeIP},
	"public":   {"br-public", "198.51.100", PublicIP},
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InNode runs a program inside the first node's network namespace.
func InNode(name string, args ...string) error { return InNamespace(Namespace, name, args...) }

// InNamespace runs a program inside the network namespace ns.
func InNamespace(ns, name string, args ...string) error {
	all := append([]string{"--net=/run/netns/" + ns, "--", name}, args...)
	out, err := exec.Command("nsenter", all...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s (in %s): %v: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// bridgeMAC is a bridge's own fixed, locally administered address (02:00 and the node's IPv4
// address). Without one, Linux gives a bridge the lowest address among its ports: a worker's link
// joining or leaving would change it, and the host would keep sending the API's traffic to the old
// address until its neighbour entry expired (tens of seconds of "cannot reach the Kubernetes API").
func bridgeMAC(nodeIP string) string {
	mac := "02:00"
	for _, octet := range strings.Split(nodeIP, ".") {
		n, _ := strconv.Atoi(octet)
		mac += fmt.Sprintf(":%02x", n)
	}
	return mac
}

// SetupNetwork makes the node's namespace (removing one a crashed run left), its bridges and the
// veth pair that joins the host (HostIP) to the internal bridge.
func SetupNetwork() error {
	RemoveNetwork()
	steps := [][]string{
		{"netns", "add", Namespace},
		{"link", "add", HostLink, "type", "veth", "peer", "name", "host0", "netns", Namespace},
		{"addr", "add", HostIP + "/24", "dev", HostLink},
		{"link", "set", HostLink, "up"},
		{"-n", Namespace, "link", "set", "lo", "up"},
	}
	for _, n := range []string{"internal", "public"} {
		net := Networks[n]
		steps = append(steps,
			[]string{"-n", Namespace, "link", "add", net.Bridge, "address", bridgeMAC(net.NodeIP), "type", "bridge"},
			[]string{"-n", Namespace, "addr", "add", net.NodeIP + "/24", "dev", net.Bridge},
			[]string{"-n", Namespace, "link", "set", net.Bridge, "up"})
	}
	steps = append(steps,
		[]string{"-n", Namespace, "link", "set", "host0", "master", Networks["internal"].Bridge},
		[]string{"-n", Namespace, "link", "set", "host0", "up"})
	for _, s := range steps {
		if err := ip(s...); err != nil {
			RemoveNetwork()
			return err
		}
	}
	if err := routeHostAndForward(Namespace); err != nil {
		RemoveNetwork()
		return err
	}
	return nil
}

// routeHostAndForward routes the host's other addresses back through its link, so that the host
// can reach a node from an address outside the internal network (verify's check from outside),
// and lets the node forward (its pods' traffic, bridged too).
func routeHostAndForward(ns string) error {
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() || strings.HasPrefix(ipn.IP.String(), Networks["internal"].Prefix+".") {
				continue
			}
			if err := ip("-n", ns, "route", "add", ipn.IP.String()+"/32", "via", HostIP); err != nil {
				return err
			}
		}
	}
	for _, s := range []string{"net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"} {
		if err := InNamespace(ns, "sysctl", "-qw", s); err != nil {
			return err
		}
	}
	return nil
}

// RemoveNetwork deletes the clients' namespaces, the node's namespace and the host's link.
func RemoveNetwork() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), clientNS) {
			_ = ip("netns", "del", e.Name())
		}
	}
	_ = ip("netns", "del", Namespace)
	_ = ip("link", "del", HostLink)
}

// NextHost hands out client host numbers (10-250) from a counter file, under a lock, so that
// clients made by tests running at once never share an address.
func NextHost(counter string) (int, error) {
	lock, err := os.OpenFile(counter+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, err
	}
	b, _ := os.ReadFile(counter)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	next := 10 + n%241
	return next, os.WriteFile(counter, []byte(strconv.Itoa(n+1)), 0o644)
}

// AddClient makes a client's network namespace on one of the node's networks, with the address
// <prefix>.<host>, routed to the node; it returns the namespace's name and the address.
func AddClient(name, network string, host int) (string, string, error) {
	net, ok := Networks[network]
	if !ok {
		return "", "", fmt.Errorf("no network %q (internal, public)", network)
	}
	ns := clientNS + name
	addr := fmt.Sprintf("%s.%d", net.Prefix, host)
	outer, inner := fmt.Sprintf("kc%d%s", host, network[:3]), "eth0"
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", Namespace, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns},
		{"-n", Namespace, "link", "set", outer, "master", net.Bridge},
		{"-n", Namespace, "link", "set", outer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", inner},
		{"-n", ns, "link", "set", inner, "up"},
		{"-n", ns, "route", "add", "default", "via", net.NodeIP},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			_ = ip("netns", "del", ns)
			return "", "", err
		}
	}
	return ns, addr, nil
}

// RemoveClient deletes a client's namespace (its veth pair goes with it).
func RemoveClient(name string) error { return ip("netns", "del", clientNS+name) }

// UnmountNetnsDir notes whether /run/netns is a mount point now; calling the result undoes the
// mount `ip netns add` makes of it when it was not.
func UnmountNetnsDir() func() {
	mounts, _ := os.ReadFile("/proc/mounts")
	_, statErr := os.Stat("/run/netns")
	if strings.Contains(string(mounts), " /run/netns ") {
		return func() {}
	}
	return func() {
		_ = exec.Command("umount", "/run/netns").Run()
		if statErr != nil {
			_ = os.Remove("/run/netns")
		}
	}
}
