package node

// kubelet and kube-proxy configured as k0s configures a worker (webhook authentication and
// authorization, the cluster DNS, iptables kube-proxy with nodePortAddresses unset), with what
// this kind of machine needs: cgroup v1 with cgroupfs, no swap check, relaxed eviction for a
// small test disk, and conntrack left as the kernel has it.

import (
	"fmt"
	"os"
	"path/filepath"
)

// KubeletArgs writes kubelet's configuration and returns its command line.
func KubeletArgs(d Dirs, n Node, kubeconfig, caFile string) ([]string, error) {
	k := d.Kubelet()
	if err := os.MkdirAll(k, 0o755); err != nil {
		return nil, err
	}
	resolv := filepath.Join(d.Root, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+n.IP+"\n"), 0o644); err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: %q
serializeImagePulls: false
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 5s
readOnlyPort: 0
address: %s
protectKernelDefaults: false
`, caFile, d.Socket(), ServiceDNS, resolv, n.IP)
	if n.CgroupRoot != "" {
		config += "cgroupRoot: " + n.CgroupRoot + "\n"
	}
	path := filepath.Join(k, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, err
	}
	return []string{
		"--config=" + path,
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--root-dir=" + k,
		"--cert-dir=" + filepath.Join(k, "pki"),
		"--volume-plugin-dir=" + filepath.Join(k, "volume-plugins"),
		"--v=1",
	}, nil
}

// KubeProxyArgs writes kube-proxy's configuration and returns its command line and the
// configuration (published in kube-system as k0s publishes it).
func KubeProxyArgs(d Dirs, n Node, kubeconfig string) ([]string, string, error) {
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, n.PodCIDR, n.Name, n.IP)
	path := filepath.Join(d.Root, "kube-proxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return nil, "", err
	}
	return []string{"--config=" + path, "--v=1"}, config, nil
}

// KubeRouterArgs is kube-router's command line with only its NetworkPolicy firewall on (k0s's
// default network provider; here the pods' network is the CNI bridge).
func KubeRouterArgs(name, kubeconfig string) []string {
	return []string{
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
		"--kubeconfig=" + kubeconfig, "--hostname-override=" + name,
		"--service-cluster-ip-range=10.96.0.0/24", "--service-node-port-range=30000-32767",
		"--metrics-port=0", "--health-port=0", "--v=1",
	}
}
