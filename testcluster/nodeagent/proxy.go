package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// nodePorts plays kube-proxy: every nodePort listens on the node address, and every ClusterIP (an
// address added to the node's bridge, which the pods route through) on the Service's port; each
// connection goes to a ready endpoint of the Service's port (none ready: closed).
type nodePorts struct {
	nodeIP     string
	network    *Network
	clusterIPs map[string]bool
	services   listersv1.ServiceLister
	slices     discoverylisters.EndpointSliceLister
	mu         sync.Mutex
	listeners  map[string]*portListener
	kick       chan struct{}
}

type portListener struct {
	l           net.Listener
	namespace   string
	service     string
	portName    string
	servicePort int32
}

func startNodePorts(ctx context.Context, c kubernetes.Interface, network *Network) *nodePorts {
	factory := informers.NewSharedInformerFactory(c, 0)
	np := &nodePorts{nodeIP: network.NodeIP, network: network, clusterIPs: map[string]bool{}, services: factory.Core().V1().Services().Lister(),
		slices: factory.Discovery().V1().EndpointSlices().Lister(), listeners: map[string]*portListener{}, kick: make(chan struct{}, 1)}
	poke := func(interface{}) {
		select {
		case np.kick <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, o interface{}) { poke(o) }, DeleteFunc: poke}
	factory.Core().V1().Services().Informer().AddEventHandler(handler)
	factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(handler)
	factory.Start(ctx.Done())
	go func() {
		factory.WaitForCacheSync(ctx.Done())
		for {
			np.sync()
			select {
			case <-ctx.Done():
				return
			case <-np.kick:
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return np
}

func (np *nodePorts) sync() {
	services, _ := np.services.List(labels.Everything())
	want := map[string]*portListener{}
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			pl := func() *portListener {
				return &portListener{namespace: s.Namespace, service: s.Name, portName: p.Name, servicePort: p.Port}
			}
			if p.NodePort != 0 {
				want[net.JoinHostPort(np.nodeIP, strconv.Itoa(int(p.NodePort)))] = pl()
			}
			if ip := s.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
				want[net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))] = pl()
				if !np.clusterIPs[ip] {
					if err := ip_("addr", "add", ip+"/32", "dev", np.network.Bridge); err == nil || strings.Contains(err.Error(), "exists") {
						np.clusterIPs[ip] = true
					}
				}
			}
		}
	}
	np.mu.Lock()
	defer np.mu.Unlock()
	for port, pl := range np.listeners {
		w, ok := want[port]
		if !ok || w.namespace != pl.namespace || w.service != pl.service {
			pl.l.Close()
			delete(np.listeners, port)
		} else {
			pl.portName, pl.servicePort = w.portName, w.servicePort
		}
	}
	for port, w := range want {
		if _, ok := np.listeners[port]; ok {
			continue
		}
		l, err := net.Listen("tcp", port)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nodeagent: service %s/%s on %s: %v\n", w.namespace, w.service, port, err)
			continue
		}
		w.l = l
		np.listeners[port] = w
		go np.accept(w)
	}
}

func (np *nodePorts) close() {
	np.mu.Lock()
	defer np.mu.Unlock()
	for port, pl := range np.listeners {
		pl.l.Close()
		delete(np.listeners, port)
	}
}

func (np *nodePorts) accept(pl *portListener) {
	for {
		conn, err := pl.l.Accept()
		if err != nil {
			return
		}
		go np.forward(pl, conn)
	}
}

// endpoint is a ready address and port for the listener's Service port.
func (np *nodePorts) endpoint(pl *portListener) string {
	np.mu.Lock()
	ns, svc, portName := pl.namespace, pl.service, pl.portName
	np.mu.Unlock()
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc})
	slices, _ := np.slices.EndpointSlices(ns).List(sel)
	for _, s := range slices {
		var port int32
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if (e.Conditions.Ready == nil || *e.Conditions.Ready) && len(e.Addresses) > 0 {
				return net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port)))
			}
		}
	}
	return ""
}

func (np *nodePorts) forward(pl *portListener, conn net.Conn) {
	defer conn.Close()
	target := np.endpoint(pl)
	if target == "" {
		return
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, conn); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(conn, up); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}
