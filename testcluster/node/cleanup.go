package node

// Leaving the host as it was found: what the node's processes leave behind even when stopped
// in order (runc shims and containers outlive containerd; kubelet's cgroups stay; kubelet sets
// a few kernel tunables), removed from the host after the node has stopped.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The kernel tunables kubelet sets at start (kubelet's setupKernelTunables), restored at the end.
var tunables = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// SaveTunables reads the tunables' values now; calling the result writes them back.
func SaveTunables() func() {
	saved := map[string][]byte{}
	for _, t := range tunables {
		if b, err := os.ReadFile("/proc/sys/" + t); err == nil {
			saved[t] = b
		}
	}
	return func() {
		for t, b := range saved {
			_ = os.WriteFile("/proc/sys/"+t, b, 0o644)
		}
	}
}

// kubepods lists the first node's pods' cgroup directories in every hierarchy, deepest first.
func kubepods() []string { return cgroupTree("kubepods") }

// cgroupTree lists the cgroup directories named top, and all below them, in every hierarchy,
// deepest first.
func cgroupTree(top string) []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + top)
	if d, err := os.Stat("/sys/fs/cgroup/" + top); err == nil && d.IsDir() {
		roots = append(roots, "/sys/fs/cgroup/"+top)
	}
	for _, r := range roots {
		_ = filepath.Walk(r, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

// PodProcesses counts the processes in the node's pods' cgroups.
func PodProcesses(node Node) int {
	n := 0
	for _, d := range cgroupTree(node.cgroupTop()) {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		n += len(strings.Fields(string(b)))
	}
	return n
}

// RemoveLeftovers kills what is left in the pods' cgroups and in the node's network namespace,
// removes the cgroups, and deletes the node's network; and the same for any worker left behind.
func RemoveLeftovers() {
	for i := 2; i <= 9; i++ {
		w := Worker(i)
		if _, err := os.Stat("/run/netns/" + w.Namespace); err == nil || len(cgroupTree(w.cgroupTop())) > 0 {
			RemoveWorker(w)
		}
	}
	killAndRemove(Namespace, "kubepods")
	RemoveNetwork()
}

// cgroupTop is the cgroup that holds the node's pods: kubelet's own, or the worker's root.
func (n Node) cgroupTop() string {
	if n.CgroupRoot == "" {
		return "kubepods"
	}
	return strings.TrimPrefix(n.CgroupRoot, "/")
}

// killAndRemove kills what is left in the network namespace ns and in the cgroups named top (and
// below), then removes those cgroups.
func killAndRemove(ns, top string) {
	for i := 0; i < 50; i++ {
		pids := nsPIDs(ns)
		for _, d := range cgroupTree(top) {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		left := 0
		for _, d := range cgroupTree(top) {
			if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
				left++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nsPIDs lists the processes in the network namespace ns.
func nsPIDs(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}
