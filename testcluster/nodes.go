package main

// What the harness does to a registered node through the API: its pod network, whether it is
// Ready.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"kmcp.dev/testcluster/node"
)

// setPodCIDR gives the registered node its pod network (kube-controller-manager's node IPAM is
// off: the CNI configuration names the same range).
func setPodCIDR(c *kubernetes.Clientset, nd node.Node) bool {
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Get(ctx, nd.Name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	if n.Spec.PodCIDR != "" {
		return true
	}
	patch := fmt.Sprintf(`{"spec":{"podCIDR":%q,"podCIDRs":[%q]}}`, nd.PodCIDR, nd.PodCIDR)
	_, err = c.CoreV1().Nodes().Patch(ctx, nd.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	return err == nil
}

// nodeReady also waits for the node lifecycle controller to lift the not-ready taints,
// which it does a moment after kubelet reports Ready: until then no pod may go there.
func nodeReady(c *kubernetes.Clientset, name string) bool {
	n, err := c.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
