// Package nodeagent is a STAND-IN for the kubelet, the container runtime and kube-proxy of one node,
// for tests where no container runtime can run. It registers a Ready node and keeps its lease fresh,
// binds unscheduled pods to it (as the scheduler would), pulls each pod's image by digest from the
// registry it names, runs the image's entrypoint in a network namespace of the pod's own with the
// pod's env, ServiceAccount token and volumes, probes it, reports pod status as a kubelet does,
// serves container logs to the API server, and forwards NodePorts to ready endpoints.
package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Config says which node to play and how to reach the API server.
type Config struct {
	NodeName    string
	Network     *Network
	DataDir     string
	APIServerIP string
	APIPort     int
	NodeConfig  string // kubeconfig of system:node:<name> (group system:nodes)
	SchedConfig string // kubeconfig of system:kube-scheduler
	ProxyConfig string // kubeconfig of system:kube-proxy
	CAFile      string
	CertDir     string
}

// Agent is the running node.
type Agent struct {
	cfg      Config
	node     kubernetes.Interface
	sched    kubernetes.Interface
	proxy    kubernetes.Interface
	images   *images
	ctx      context.Context
	cancel   context.CancelFunc
	kubelet  *http.Server
	port     int
	mu       sync.Mutex
	workers  map[string]*podWorker // by pod UID
	nodePort *nodePorts
}

func client(path string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "kmcp-nodeagent (stand-in)"
	return kubernetes.NewForConfig(cfg)
}

// Start registers the node and begins running its pods.
func Start(parent context.Context, cfg Config) (*Agent, error) {
	ctx, cancel := context.WithCancel(parent)
	a := &Agent{cfg: cfg, ctx: ctx, cancel: cancel, workers: map[string]*podWorker{}}
	var err error
	if a.node, err = client(cfg.NodeConfig); err != nil {
		return nil, err
	}
	if a.sched, err = client(cfg.SchedConfig); err != nil {
		return nil, err
	}
	if a.proxy, err = client(cfg.ProxyConfig); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	a.images = newImages(cfg.DataDir + "/images")
	if err := a.serveKubelet(); err != nil {
		return nil, err
	}
	if err := a.register(); err != nil {
		return nil, err
	}
	go a.heartbeat()
	a.watchUnscheduled()
	a.watchOwnPods()
	a.nodePort = startNodePorts(ctx, a.proxy, cfg.Network)
	return a, nil
}

// Stop ends every pod's processes and removes their namespaces.
func (a *Agent) Stop() {
	a.mu.Lock()
	workers := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		workers = append(workers, w)
	}
	a.mu.Unlock()
	for _, w := range workers {
		w.stop(2 * time.Second)
	}
	a.cancel()
	if a.kubelet != nil {
		a.kubelet.Close()
	}
	a.nodePort.close()
}

// NodeReady says whether the API server sees the node Ready.
func (a *Agent) NodeReady(c kubernetes.Interface) bool {
	n, err := c.CoreV1().Nodes().Get(context.Background(), a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func selfSignedTLS(ip string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "kmcp-nodeagent"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveKubelet is the kubelet's HTTPS port: container logs for `pods/log`.
func (a *Agent) serveKubelet() error {
	cert, err := selfSignedTLS(a.cfg.Network.NodeIP)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", a.cfg.Network.NodeIP+":0")
	if err != nil {
		return err
	}
	a.port = l.Addr().(*net.TCPAddr).Port
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/{ns}/{pod}/{container}", a.serveLogs)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	a.kubelet = &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go a.kubelet.ServeTLS(l, "", "")
	return nil
}

func (a *Agent) nodeStatus() corev1.NodeStatus {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (kmcp node agent, a stand-in)"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.Network.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.port)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          "v1.34.4",
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
			ContainerRuntimeVersion: "kmcp-nodeagent://stand-in",
			OSImage:                 "kmcp test node",
		},
	}
}

func (a *Agent) register() error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: map[string]string{
		"kubernetes.io/hostname": a.cfg.NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
	}}}
	if _, err := a.node.CoreV1().Nodes().Create(a.ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register node: %w", err)
	}
	return a.updateNodeStatus()
}

// updateNodeStatus patches only the status, so that it never races the node lifecycle
// controller's taint changes (a node may not modify its taints).
func (a *Agent) updateNodeStatus() error {
	patch, err := json.Marshal(map[string]interface{}{"status": a.nodeStatus()})
	if err != nil {
		return err
	}
	_, err = a.node.CoreV1().Nodes().Patch(a.ctx, a.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func (a *Agent) renewLease() error {
	leases := a.node.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	seconds := int32(40)
	l, err := leases.Get(a.ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		holder := a.cfg.NodeName
		_, err = leases.Create(a.ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(a.ctx, l, metav1.UpdateOptions{})
	return err
}

func (a *Agent) heartbeat() {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	n := 0
	for {
		if err := a.renewLease(); err != nil && a.ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "nodeagent: lease:", err)
		}
		if n%3 == 2 {
			if err := a.updateNodeStatus(); err != nil && a.ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "nodeagent: node status:", err)
			}
		}
		n++
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watchUnscheduled binds every pod for the default scheduler to this node, as system:kube-scheduler.
func (a *Agent) watchUnscheduled() {
	factory := informers.NewSharedInformerFactoryWithOptions(a.sched, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	bind := func(obj interface{}) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || pod.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return
		}
		go func() {
			err := a.sched.CoreV1().Pods(pod.Namespace).Bind(a.ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && a.ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "nodeagent: bind %s/%s: %v\n", pod.Namespace, pod.Name, err)
			}
		}()
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: bind, UpdateFunc: func(_, o interface{}) { bind(o) }})
	factory.Start(a.ctx.Done())
}

// watchOwnPods runs a worker for every pod bound to this node, as system:node:<name>.
func (a *Agent) watchOwnPods() {
	factory := informers.NewSharedInformerFactoryWithOptions(a.node, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
	}))
	inf := factory.Core().V1().Pods().Informer()
	upsert := func(obj interface{}) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		a.mu.Lock()
		w, exists := a.workers[string(pod.UID)]
		if !exists {
			w = newPodWorker(a, pod)
			a.workers[string(pod.UID)] = w
			go func() {
				w.run()
				a.mu.Lock()
				delete(a.workers, string(pod.UID))
				a.mu.Unlock()
			}()
		}
		a.mu.Unlock()
		w.update(pod)
	}
	remove := func(obj interface{}) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		a.mu.Lock()
		w := a.workers[string(pod.UID)]
		a.mu.Unlock()
		if w != nil {
			w.gone()
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: upsert, UpdateFunc: func(_, o interface{}) { upsert(o) }, DeleteFunc: remove})
	factory.Start(a.ctx.Done())
}

func (a *Agent) workerFor(ns, name string) *podWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		if p := w.current(); p.Namespace == ns && p.Name == name {
			return w
		}
	}
	return nil
}

// kubernetesService is the ClusterIP and port of default/kubernetes (the API server's Service).
func (a *Agent) kubernetesService() (string, string) {
	s, err := a.node.CoreV1().Services("default").Get(a.ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || len(s.Spec.Ports) == 0 {
		return a.cfg.APIServerIP, fmt.Sprint(a.cfg.APIPort)
	}
	return s.Spec.ClusterIP, fmt.Sprint(s.Spec.Ports[0].Port)
}
