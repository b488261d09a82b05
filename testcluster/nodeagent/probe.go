package nodeagent

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probe runs the container's liveness and readiness probes when they are due, as a kubelet does.
func (w *podWorker) probe(c *container) {
	if p := c.spec.ReadinessProbe; p != nil {
		if ok, msg, due := w.runProbe(c, "readiness", p); due {
			if ok {
				c.readyOK++
				c.readyFails = 0
				if c.readyOK >= max32(p.SuccessThreshold, 1) {
					c.ready = true
				}
			} else {
				c.readyOK = 0
				c.readyFails++
				w.event(c, "Warning", "Unhealthy", "Readiness probe failed: "+msg)
				if c.readyFails >= max32(p.FailureThreshold, 3) {
					c.ready = false
				}
			}
		}
	} else {
		c.ready = true
	}
	if p := c.spec.LivenessProbe; p != nil {
		if ok, msg, due := w.runProbe(c, "liveness", p); due {
			if ok {
				c.liveFails = 0
			} else {
				c.liveFails++
				w.event(c, "Warning", "Unhealthy", "Liveness probe failed: "+msg)
				if c.liveFails >= max32(p.FailureThreshold, 3) {
					w.event(c, "Normal", "Killing", fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.spec.Name))
					grace := 30 * time.Second
					if s := w.current().Spec.TerminationGracePeriodSeconds; s != nil {
						grace = time.Duration(*s) * time.Second
					}
					go w.kill(c, grace)
					c.liveFails = 0
				}
			}
		}
	}
}

func max32(v int32, def int32) int {
	if v <= 0 {
		return int(def)
	}
	return int(v)
}

// runProbe runs probe p if its period has passed; due is false when it was not run.
func (w *podWorker) runProbe(c *container, kind string, p *corev1.Probe) (ok bool, msg string, due bool) {
	now := time.Now()
	if now.Sub(c.startedAt) < time.Duration(p.InitialDelaySeconds)*time.Second {
		return false, "", false
	}
	period := time.Duration(max32(p.PeriodSeconds, 10)) * time.Second
	if last, seen := c.lastProbe[kind]; seen && now.Sub(last) < period {
		return false, "", false
	}
	c.lastProbe[kind] = now
	timeout := time.Duration(max32(p.TimeoutSeconds, 1)) * time.Second
	switch {
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, c.spec)
		if err != nil {
			return false, err.Error(), true
		}
		host := w.net.IP
		if p.HTTPGet.Host != "" {
			host = p.HTTPGet.Host
		}
		scheme := "http"
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), p.HTTPGet.Path)
		client := &http.Client{Timeout: timeout}
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("User-Agent", "kube-probe/1.34")
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error(), true
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), true
		}
		return true, "", true
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c.spec)
		if err != nil {
			return false, err.Error(), true
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(w.net.IP, strconv.Itoa(port)), timeout)
		if err != nil {
			return false, err.Error(), true
		}
		conn.Close()
		return true, "", true
	}
	return false, "probe type not supported by the node agent", true
}

func resolvePort(p intstr.IntOrString, c corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q not found in the container's ports", p.StrVal)
}
