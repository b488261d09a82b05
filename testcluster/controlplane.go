package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/embed"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	logsapi "k8s.io/component-base/logs/api/v1"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// controllers the tests rely on; everything else stays off to keep startup short.
var controllers = []string{
	"serviceaccount-token-controller", "serviceaccount-controller", "root-ca-certificate-publisher-controller",
	"deployment-controller", "replicaset-controller", "endpoints-controller", "endpointslice-controller",
	"namespace-controller", "garbage-collector-controller", "clusterrole-aggregation-controller",
	"node-lifecycle-controller", "pod-garbage-collector-controller", "taint-eviction-controller",
}

// Every pod tolerates the test taint unless its namespace says otherwise (the annotation
// scheduler.alpha.kubernetes.io/defaultTolerations: "[]"): a test can taint the shared node for
// its own pods without holding up the others'.
const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodTolerationRestriction
  configuration:
    apiVersion: podtolerationrestriction.admission.k8s.io/v1alpha1
    kind: Configuration
    default:
    - {key: kmcp.dev/test-taint, operator: Exists, effect: NoSchedule}
`

// The audit log records what the tests' users do; the node's and the control plane's own
// components (and the harness's admin) would make it many times larger and slow every test that
// reads it.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["kmcp-admin", "kmcp-controller-manager", "system:kube-proxy", "system:kube-scheduler", "kube-router", "system:apiserver"]
- level: None
  userGroups: ["system:nodes", "system:serviceaccounts:kube-system"]
- level: Metadata
`

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startEtcd(dir string) (string, func(), error) {
	clientPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "kmcp"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	client, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peer, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return "", nil, fmt.Errorf("etcd did not become ready in 60s")
	}
	return client.String(), e.Close, nil
}

// apiserverArgs are the flags of a secure, RBAC-enforcing API server with audit logging.
func apiserverArgs(dir, etcd string, nodeIP net.IP, port int, p *pki) ([]string, error) {
	hosts := []string{nodeIP.String(), "127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	servingCert, servingKey, err := p.issue("apiserver", "kube-apiserver", nil, hosts)
	if err != nil {
		return nil, err
	}
	kubeletCert, kubeletKey, err := p.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil)
	if err != nil {
		return nil, err
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	admission := filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(admission, []byte(admissionConfig), 0o600); err != nil {
		return nil, err
	}
	pkiDir := p.dir
	return []string{
		"--etcd-servers=" + etcd,
		"--bind-address=" + nodeIP.String(),
		"--advertise-address=" + nodeIP.String(),
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		"--client-ca-file=" + filepath.Join(pkiDir, "ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction,PodTolerationRestriction",
		"--admission-control-config-file=" + admission,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(pkiDir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pkiDir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24",
		"--service-node-port-range=30000-32767",
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + filepath.Join(dir, "audit.log"),
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--kubelet-client-certificate=" + kubeletCert,
		"--kubelet-client-key=" + kubeletKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
		"--profiling=false",
		"--enable-priority-and-fairness=false",
		"--v=0",
	}, nil
}

// commands builds both components' commands. The controller manager's comes first: building it
// changes a feature gate's default, which is refused once the API server has registered its flags.
func commands() (apiserverCmd, controllerManagerCmd *cobra.Command) {
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	controllerManagerCmd = kcm.NewControllerManagerCommand()
	apiserverCmd = apiserver.NewAPIServerCommand()
	return apiserverCmd, controllerManagerCmd
}

func startAPIServer(ctx context.Context, cmd *cobra.Command, args []string, errs chan<- error) {
	cmd.SetArgs(args)
	go func() { errs <- fmt.Errorf("kube-apiserver stopped: %v", cmd.ExecuteContext(ctx)) }()
}

func startControllerManager(ctx context.Context, cmd *cobra.Command, p *pki, kubeconfig string, errs chan<- error) {
	cmd.SetArgs([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--controllers=" + strings.Join(controllers, ","),
		"--service-account-private-key-file=" + filepath.Join(p.dir, "sa.key"),
		"--root-ca-file=" + filepath.Join(p.dir, "ca.crt"),
		"--use-service-account-credentials=false",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-deployment-syncs=5",
		"--v=0",
	})
	go func() {
		err := cmd.ExecuteContext(ctx)
		if ctx.Err() == nil {
			errs <- fmt.Errorf("kube-controller-manager stopped: %v", err)
		}
	}()
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return kubernetes.NewForConfig(cfg)
}

// waitFor polls check until it returns true, an error from errs arrives, or the timeout passes.
func waitFor(what string, timeout time.Duration, errs <-chan error, check func() bool) error {
	deadline := time.Now().Add(timeout)
	for !check() {
		select {
		case err := <-errs:
			return err
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
	}
	return nil
}

func apiReady(c *kubernetes.Clientset) bool {
	body, err := c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
	return err == nil && strings.TrimSpace(string(body)) == "ok"
}

func defaultServiceAccountReady(c *kubernetes.Clientset) bool {
	ctx := context.Background()
	_, err := c.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		return false
	}
	_, err = c.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	return err == nil
}
