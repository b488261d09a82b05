package node

// A worker beside the first node: its network namespace joined to the first node's two bridges
// (as a second machine on the same networks), the pods' networks routed between the two, and the
// cgroup its kubelet keeps its pods under; and all of it removed again.

import (
	"os"
	"path/filepath"
	"strings"
)

// SetupWorker makes the worker's network namespace with a link on each of the first node's
// bridges, its addresses, the routes between the nodes' pod networks, and its cgroup root in
// every hierarchy (kubelet wants it there).
func SetupWorker(n Node) error {
	RemoveWorker(n)
	short := strings.TrimPrefix(n.Name, "kmcp-node-")
	steps := [][]string{{"netns", "add", n.Namespace}, {"-n", n.Namespace, "link", "set", "lo", "up"}}
	for i, name := range []string{"internal", "public"} {
		net, outer, inner := Networks[name], "w"+short+name[:3], []string{"eth0", "eth1"}[i]
		addr := map[string]string{"internal": n.IP, "public": n.PublicIP}[name]
		steps = append(steps,
			[]string{"-n", Namespace, "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", n.Namespace},
			[]string{"-n", Namespace, "link", "set", outer, "master", net.Bridge},
			[]string{"-n", Namespace, "link", "set", outer, "up"},
			[]string{"-n", n.Namespace, "addr", "add", addr + "/24", "dev", inner},
			[]string{"-n", n.Namespace, "link", "set", inner, "up"})
	}
	steps = append(steps,
		[]string{"-n", n.Namespace, "route", "add", First.PodCIDR, "via", First.IP},
		[]string{"-n", Namespace, "route", "add", n.PodCIDR, "via", n.IP})
	for _, s := range steps {
		if err := ip(s...); err != nil {
			RemoveWorker(n)
			return err
		}
	}
	if err := routeHostAndForward(n.Namespace); err != nil {
		RemoveWorker(n)
		return err
	}
	hierarchies, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hierarchies {
		if h.IsDir() {
			if err := os.Mkdir(filepath.Join("/sys/fs/cgroup", h.Name(), n.cgroupTop()), 0o755); err != nil && !os.IsExist(err) {
				RemoveWorker(n)
				return err
			}
		}
	}
	return nil
}

// RemoveWorker kills what is left in the worker's namespace and cgroups, removes them, its route
// on the first node and its namespace (its links go with it).
func RemoveWorker(n Node) {
	killAndRemove(n.Namespace, n.cgroupTop())
	_ = ip("-n", Namespace, "route", "del", n.PodCIDR)
	_ = ip("netns", "del", n.Namespace)
}
