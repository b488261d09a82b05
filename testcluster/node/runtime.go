package node

// containerd (Debian's 1.6, with runc and the CNI plugins) configured as the node's runtime: its
// state under the node's directory, plain HTTP to the loopback registries, and the settings this
// kind of machine needs (no CAP_SYS_RESOURCE: restrict_oom_score_adj; cgroup v1: cgroupfs).

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dirs are the node's places under its directory.
type Dirs struct{ Root string }

func (d Dirs) Containerd() string { return filepath.Join(d.Root, "containerd") }
func (d Dirs) Socket() string     { return filepath.Join(d.Containerd(), "containerd.sock") }
func (d Dirs) Kubelet() string    { return filepath.Join(d.Root, "kubelet") }
func (d Dirs) CNIConf() string    { return filepath.Join(d.Root, "cni", "net.d") }

const cniBin = "/usr/lib/cni"

// WriteContainerdConfig writes containerd's config (the pods' addresses from podCIDR) and a
// hosts.toml for each registry, and returns the config's path.
func WriteContainerdConfig(d Dirs, podCIDR, pauseImage string, registries []string) (string, error) {
	c := d.Containerd()
	for _, r := range registries {
		if err := WriteHostsToml(d, r); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(d.CNIConf(), 0o755); err != nil {
		return "", err
	}
	cni := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "kmcp", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`, podCIDR, filepath.Join(d.Root, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(d.CNIConf(), "10-kmcp.conflist"), []byte(cni), 0o644); err != nil {
		return "", err
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
`, filepath.Join(c, "root"), filepath.Join(c, "state"), d.Socket(), filepath.Join(c, "opt"), pauseImage,
		cniBin, d.CNIConf(), filepath.Join(c, "certs.d"))
	path := filepath.Join(c, "config.toml")
	return path, os.WriteFile(path, []byte(config), 0o644)
}

// WriteHostsToml tells containerd to speak plain HTTP to a loopback registry.
func WriteHostsToml(d Dirs, registry string) error {
	dir := filepath.Join(d.Containerd(), "certs.d", registry)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", registry, registry)
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644)
}
