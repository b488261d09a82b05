package nodeagent

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Network is the node's test network: a bridge holding the node address <subnet>.1/24, and one
// network namespace per pod, joined to the bridge by a veth pair, with an address of its own.
type Network struct {
	Bridge string
	Subnet string
	NodeIP string

	mu   sync.Mutex
	used map[int]string // host octet -> pod uid
}

func ip_(args ...string) error { return ip(args...) }

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SetupNetwork creates the bridge (replacing one left by a crashed run) and its pods' leftovers.
func SetupNetwork(bridge, subnet string) (*Network, error) {
	n := &Network{Bridge: bridge, Subnet: subnet, NodeIP: subnet + ".1", used: map[int]string{}}
	n.removeLeftovers()
	if err := ip("link", "add", bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	if err := ip("addr", "add", n.NodeIP+"/24", "dev", bridge); err != nil {
		return nil, err
	}
	if err := ip("link", "set", bridge, "up"); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Network) nsPrefix() string { return "kmcp-" + n.Bridge + "-" }

func (n *Network) removeLeftovers() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name := strings.Fields(line + " ")
		if len(name) > 0 && strings.HasPrefix(name[0], n.nsPrefix()) {
			_ = ip("netns", "del", name[0])
		}
	}
	_ = ip("link", "del", n.Bridge)
}

// Teardown removes every pod namespace and the bridge.
func (n *Network) Teardown() { n.removeLeftovers() }

// PodNet is one pod's network namespace and address.
type PodNet struct {
	Namespace string
	IP        string
	octet     int
}

// AddPod creates the pod's namespace with a fresh address and a default route via the node.
func (n *Network) AddPod(uid string) (*PodNet, error) {
	n.mu.Lock()
	octet := 0
	for o := 10; o < 250; o++ {
		if _, taken := n.used[o]; !taken {
			octet = o
			n.used[o] = uid
			break
		}
	}
	n.mu.Unlock()
	if octet == 0 {
		return nil, fmt.Errorf("no free pod address in %s.0/24", n.Subnet)
	}
	p := &PodNet{Namespace: fmt.Sprintf("%s%d", n.nsPrefix(), octet), IP: fmt.Sprintf("%s.%d", n.Subnet, octet), octet: octet}
	host, peer := fmt.Sprintf("kv%s%d", n.Bridge, octet), fmt.Sprintf("kp%s%d", n.Bridge, octet)
	steps := [][]string{
		{"netns", "add", p.Namespace},
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", host, "master", n.Bridge},
		{"link", "set", host, "up"},
		{"link", "set", peer, "netns", p.Namespace},
		{"-n", p.Namespace, "link", "set", peer, "name", "eth0"},
		{"-n", p.Namespace, "addr", "add", p.IP + "/24", "dev", "eth0"},
		{"-n", p.Namespace, "link", "set", "eth0", "up"},
		{"-n", p.Namespace, "link", "set", "lo", "up"},
		{"-n", p.Namespace, "route", "add", "default", "via", n.NodeIP},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			n.RemovePod(p)
			return nil, err
		}
	}
	return p, nil
}

// RemovePod deletes the namespace (which takes its veth end, and so the pair, with it).
func (n *Network) RemovePod(p *PodNet) {
	_ = ip("netns", "del", p.Namespace)
	_ = ip("link", "del", fmt.Sprintf("kv%s%d", n.Bridge, p.octet))
	n.mu.Lock()
	delete(n.used, p.octet)
	n.mu.Unlock()
}
