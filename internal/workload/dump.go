package workload

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// DumpPod finds the pod a database target is dumped from or restored into: a running,
// ready pod of the workload (a StatefulSet's lowest ordinal first, where a primary
// usually runs), and the dump with its preset chosen from the pod's images when it names
// none. The host is one host (host-0, or the alias) however many replicas run: they hold
// one database.
func DumpPod(ctx context.Context, c kubernetes.Interface, ns string, t api.Target, d api.Dump) (*corev1.Pod, api.Dump, error) {
	sel, err := targetSelector(ctx, c, ns, t)
	if err != nil {
		return nil, d, err
	}
	pods, err := podsOf(ctx, c, ns, sel)
	if err != nil {
		return nil, d, err
	}
	var pod *corev1.Pod
	for i := range pods {
		if p := &pods[i]; p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podReady(p) {
			pod = p
			break
		}
	}
	if pod == nil {
		return nil, d, fmt.Errorf("target %s has no running and ready pod to run the dump in: start the database, or wait until it is ready", t)
	}
	if d.Container != "" {
		found := false
		for _, ct := range pod.Spec.Containers {
			found = found || ct.Name == d.Container
		}
		if !found {
			return nil, d, fmt.Errorf("pod %s of %s has no container %q: name one of %s (--dump-container)", pod.Name, t, d.Container, containerNames(pod))
		}
	}
	if d.Preset == "" && (d.DumpCommand == "" || d.RestoreCommand == "") {
		for _, ct := range pod.Spec.Containers {
			if d.Container != "" && ct.Name != d.Container {
				continue
			}
			if p, ok := api.PresetForImage(ct.Image); ok {
				d.Preset = p.Name
				if d.Container == "" {
					d.Container = ct.Name
				}
				break
			}
		}
		if d.Preset == "" && d.DumpCommand == "" {
			return nil, d, fmt.Errorf("cannot tell which database %s runs from its images (%s): name the preset (--dump %s) or give --dump-command", t, images(pod), presetsFlag())
		}
	}
	if d.Container == "" {
		d.Container = pod.Spec.Containers[0].Name
	}
	return pod, d, nil
}

func presetsFlag() string { return "postgres|mysql|mongodb|redis" }

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func containerNames(p *corev1.Pod) string {
	var s string
	for i, ct := range p.Spec.Containers {
		if i > 0 {
			s += ", "
		}
		s += ct.Name
	}
	return s
}

func images(p *corev1.Pod) string {
	var s string
	for i, ct := range p.Spec.Containers {
		if i > 0 {
			s += ", "
		}
		s += ct.Image
	}
	return s
}

// targetSelector is the label selector of a workload's pods.
func targetSelector(ctx context.Context, c kubernetes.Interface, ns string, t api.Target) (*metav1.LabelSelector, error) {
	notFound := func(err error) error {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("target %s not found in namespace %s: create it, or fix the target", t, ns)
		}
		return fmt.Errorf("target %s: %w", t, err)
	}
	apps := c.AppsV1()
	switch t.Kind {
	case "deployment":
		d, err := apps.Deployments(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		return d.Spec.Selector, nil
	case "statefulset":
		s, err := apps.StatefulSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		return s.Spec.Selector, nil
	case "daemonset":
		d, err := apps.DaemonSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		return d.Spec.Selector, nil
	case "replicaset":
		r, err := apps.ReplicaSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		return r.Spec.Selector, nil
	case "replicationcontroller":
		r, err := c.CoreV1().ReplicationControllers(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		return &metav1.LabelSelector{MatchLabels: r.Spec.Selector}, nil
	}
	return nil, fmt.Errorf("target %s: a dump runs in a workload's pod: want deployment, statefulset, daemonset, replicaset or replicationcontroller", t)
}
