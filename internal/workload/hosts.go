// Package workload finds the hosts of a backup target as the seeds name them (host-0,
// host-<ordinal>, node names) and the volumes each host mounts. Both the plugin (to check a
// configuration before it is created) and the session pod (to run it) use it.
package workload

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Host is one entity whose data a session backs up, named as the seeds name hosts.
type Host struct {
	Name string
	// Mounts are the volumes the host Job mounts read-only, at the workload's own paths.
	Mounts []HostMount
	// Node pins the host Job to a node: the node of the pod using a ReadWriteOnce volume,
	// or the DaemonSet pod's node. Empty: anywhere.
	Node string
	// Err says why this host cannot be backed up (it is reported Failed with it).
	Err error
	// Pod is the target's running pod of this host (hooks and dumps exec into it); empty
	// when none runs.
	Pod string
	// Dump is a database host's dump, its preset and container resolved from its pod.
	Dump *api.Dump
}

// HostMount is one volume of a host.
type HostMount struct {
	// Volume is the pod volume name in the host Job.
	Volume    string
	Source    corev1.VolumeSource
	MountPath string
	SubPath   string
}

// SingleHost is the name of the one host of a Deployment, ReplicaSet,
// ReplicationController or PVC: host-0, or the alias (Stash's target.alias) instead.
func SingleHost(alias string) string {
	if alias != "" {
		return alias
	}
	return "host-0"
}

// OrdinalHost is the name of a StatefulSet's host of that ordinal: host-<ordinal>, or
// <alias>-<ordinal>.
func OrdinalHost(alias string, ordinal int) string {
	if alias != "" {
		return fmt.Sprintf("%s-%d", alias, ordinal)
	}
	return fmt.Sprintf("host-%d", ordinal)
}

// NodeHost is the name of a DaemonSet's host on node: the node's name, or <alias>-<node>.
func NodeHost(alias, node string) string {
	if alias != "" {
		return alias + "-" + node
	}
	return node
}

// ResolveHosts finds the hosts of cfg's target now: replica counts and nodes change
// between sessions.
func ResolveHosts(ctx context.Context, c kubernetes.Interface, ns string, cfg api.BackupConfig) ([]Host, error) {
	t := cfg.Target
	notFound := func(err error) error {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("target %s not found in namespace %s: create it, or fix the configuration's target", t, ns)
		}
		return fmt.Errorf("target %s: %w", t, err)
	}
	build := func(name string, spec corev1.PodSpec, claimOf func(string) string) Host {
		return hostFromTemplate(ctx, c, ns, cfg, name, spec, claimOf)
	}
	if hosts, ok, err := workloadHosts(ctx, c, ns, t, cfg.Alias, specReplicas, build, notFound, "back up"); ok {
		return hosts, err
	}
	switch t.Kind {
	case "pvc":
		pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		h, mp := pvcHost(cfg.Alias, pvc.Name, cfg.MountPath, true)
		for _, p := range cfg.Paths {
			if !under(p, mp) {
				h.Err = fmt.Errorf("path %s is not below %s, where pvc/%s is mounted: give paths under the mount path (--mount-path)", p, mp, pvc.Name)
			}
		}
		if h.Err == nil {
			h.Err = claimUsable(pvc)
		}
		if h.Err == nil && hasMode(pvc, corev1.ReadWriteOnce) {
			if node, err := nodeUsingClaim(ctx, c, ns, pvc.Name); err == nil && node != "" {
				h.Node = node
			}
		}
		return []Host{h}, nil
	default:
		return nil, fmt.Errorf("target kind %q is not supported: want deployment, statefulset, daemonset, replicaset, replicationcontroller or pvc", t.Kind)
	}
}

// pvcHost is the one host of a pvc target: the claim mounted at mountPath (default
// /data), which it also returns.
func pvcHost(alias, claim, mountPath string, readOnly bool) (Host, string) {
	if mountPath == "" {
		mountPath = "/data"
	}
	return Host{Name: SingleHost(alias), Mounts: []HostMount{{Volume: "data", MountPath: mountPath,
		Source: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}}}, mountPath
}

// buildHost makes the host named name from a pod template; claimOf names the claim of a
// volume that comes from a claim template ("" for the template's own volumes).
type buildHost func(name string, spec corev1.PodSpec, claimOf func(volume string) string) Host

func noClaims(string) string { return "" }

func specReplicas(s *appsv1.StatefulSet) int {
	if s.Spec.Replicas == nil {
		return 1
	}
	return int(*s.Spec.Replicas)
}

// workloadHosts finds the hosts of a Deployment, ReplicaSet, ReplicationController,
// StatefulSet (replicas of them) or DaemonSet, each made by build and pinned to its
// node where a volume demands it; ok is false for any other kind. what says what a
// session does to them, for the errors ("back up", "restore into").
func workloadHosts(ctx context.Context, c kubernetes.Interface, ns string, t api.Target, alias string,
	replicas func(*appsv1.StatefulSet) int, build buildHost, notFound func(error) error, what string) (hosts []Host, ok bool, err error) {
	apps := c.AppsV1()
	switch t.Kind {
	case "deployment":
		d, err := apps.Deployments(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, true, notFound(err)
		}
		hosts, err := singleHost(ctx, c, ns, build(SingleHost(alias), d.Spec.Template.Spec, noClaims), d.Spec.Selector)
		return hosts, true, err
	case "replicaset":
		r, err := apps.ReplicaSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, true, notFound(err)
		}
		hosts, err := singleHost(ctx, c, ns, build(SingleHost(alias), r.Spec.Template.Spec, noClaims), r.Spec.Selector)
		return hosts, true, err
	case "replicationcontroller":
		r, err := c.CoreV1().ReplicationControllers(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, true, notFound(err)
		}
		if r.Spec.Template == nil {
			return nil, true, fmt.Errorf("target %s has no pod template", t)
		}
		hosts, err := singleHost(ctx, c, ns, build(SingleHost(alias), r.Spec.Template.Spec, noClaims), &metav1.LabelSelector{MatchLabels: r.Spec.Selector})
		return hosts, true, err
	case "statefulset":
		s, err := apps.StatefulSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, true, notFound(err)
		}
		templates := map[string]bool{}
		for _, vct := range s.Spec.VolumeClaimTemplates {
			templates[vct.Name] = true
		}
		for i := range replicas(s) {
			// the seed: pod-<i> is host-<i>, with that replica's own claims
			claimOf := func(volume string) string {
				if templates[volume] {
					return fmt.Sprintf("%s-%s-%d", volume, s.Name, i)
				}
				return ""
			}
			h := build(OrdinalHost(alias, i), s.Spec.Template.Spec, claimOf)
			if h.Err == nil {
				pod, err := c.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("%s-%d", s.Name, i), metav1.GetOptions{})
				if err == nil && pod.Spec.NodeName != "" && pod.DeletionTimestamp == nil {
					h.pinIfNeeded(ctx, c, ns, pod.Spec.NodeName)
					if pod.Status.Phase == corev1.PodRunning {
						h.Pod = pod.Name
					}
				}
			}
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			return nil, true, fmt.Errorf("target %s has 0 replicas: nothing to %s", t, what)
		}
		return hosts, true, nil
	case "daemonset":
		d, err := apps.DaemonSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, true, notFound(err)
		}
		pods, err := podsOf(ctx, c, ns, d.Spec.Selector)
		if err != nil {
			return nil, true, err
		}
		seen := map[string]bool{}
		for _, p := range pods {
			if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || seen[p.Spec.NodeName] {
				continue
			}
			seen[p.Spec.NodeName] = true
			// the seed: a daemon pod's host is named after its node
			h := build(NodeHost(alias, p.Spec.NodeName), d.Spec.Template.Spec, noClaims)
			h.Node = p.Spec.NodeName // node-local data (hostPath) is only on that node
			h.Pod = p.Name
			hosts = append(hosts, h)
		}
		if len(hosts) == 0 {
			return nil, true, fmt.Errorf("target %s has no running daemon pod: nothing to %s", t, what)
		}
		sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
		return hosts, true, nil
	}
	return nil, false, nil
}

// singleHost is the seed's host-0 of a Deployment, ReplicaSet or ReplicationController:
// all pods share the volumes, one session covers them; it is pinned to the node of a
// running pod when a volume demands it.
func singleHost(ctx context.Context, c kubernetes.Interface, ns string, h Host, sel *metav1.LabelSelector) ([]Host, error) {
	if h.Err == nil {
		pods, err := podsOf(ctx, c, ns, sel)
		if err != nil {
			return nil, err
		}
		for _, p := range pods {
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				h.pinIfNeeded(ctx, c, ns, p.Spec.NodeName)
				h.Pod = p.Name
				break
			}
		}
	}
	return []Host{h}, nil
}

func podsOf(ctx context.Context, c kubernetes.Interface, ns string, sel *metav1.LabelSelector) ([]corev1.Pod, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	if s.Empty() {
		s = labels.Nothing()
	}
	list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// hostFromTemplate maps each configured path to the volume mounted at or above it in the
// pod template (the deepest mount wins, as in the container's own view).
func hostFromTemplate(ctx context.Context, c kubernetes.Interface, ns string, cfg api.BackupConfig, name string, spec corev1.PodSpec, claimOf func(volume string) string) Host {
	h := Host{Name: name}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []corev1.VolumeMount
	if len(cfg.VolumeMounts) > 0 {
		// the seed's target.volumeMounts: these volumes, mounted where it says
		for _, vm := range cfg.VolumeMounts {
			mounts = append(mounts, corev1.VolumeMount{Name: vm.Name, MountPath: vm.MountPath})
		}
	} else {
		for _, ct := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
			mounts = append(mounts, ct.VolumeMounts...)
		}
	}
	added := map[string]bool{}
	for _, p := range cfg.Paths {
		var best *corev1.VolumeMount
		for i := range mounts {
			m := &mounts[i]
			if under(p, m.MountPath) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
				best = m
			}
		}
		if best == nil {
			h.Err = fmt.Errorf("no volume of %s is mounted at or above %s: mount a PersistentVolumeClaim there, or fix --paths", cfg.Target, p)
			return h
		}
		if added[best.MountPath] {
			continue
		}
		var src corev1.VolumeSource
		if claim := claimOf(best.Name); claim != "" {
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: true}
		} else if v, ok := volumes[best.Name]; !ok {
			h.Err = fmt.Errorf("path %s: volume %q of %s is not defined in its pod template", p, best.Name, cfg.Target)
			return h
		} else {
			switch {
			case v.PersistentVolumeClaim != nil:
				src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName, ReadOnly: true}
			case v.HostPath != nil:
				// node-local data: the host Job reads it on the pod's node
				src.HostPath = v.HostPath.DeepCopy()
			default:
				h.Err = fmt.Errorf("path %s is on volume %q (%s) of %s: only PersistentVolumeClaim and hostPath volumes can be read from outside the pod; keep this data on a PersistentVolumeClaim", p, best.Name, volumeKind(v), cfg.Target)
				return h
			}
		}
		if pvc := src.PersistentVolumeClaim; pvc != nil {
			claim, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvc.ClaimName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					h.Err = fmt.Errorf("path %s: persistentvolumeclaim %s (volume %q of %s) not found", p, pvc.ClaimName, best.Name, cfg.Target)
				} else {
					h.Err = fmt.Errorf("path %s: persistentvolumeclaim %s: %w", p, pvc.ClaimName, err)
				}
				return h
			}
			if err := claimUsable(claim); err != nil {
				h.Err = err
				return h
			}
		}
		added[best.MountPath] = true
		h.Mounts = append(h.Mounts, HostMount{Volume: fmt.Sprintf("data-%d", len(h.Mounts)), Source: src,
			MountPath: best.MountPath, SubPath: best.SubPath})
	}
	return h
}

// pinIfNeeded schedules the host onto node when one of its volumes can only be mounted
// there (ReadWriteOnce in use by a pod on that node) or is node-local (hostPath).
func (h *Host) pinIfNeeded(ctx context.Context, c kubernetes.Interface, ns, node string) {
	for _, m := range h.Mounts {
		if m.Source.HostPath != nil {
			h.Node = node
			return
		}
		if pvc := m.Source.PersistentVolumeClaim; pvc != nil {
			claim, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvc.ClaimName, metav1.GetOptions{})
			if err == nil && hasMode(claim, corev1.ReadWriteOnce) {
				h.Node = node
				return
			}
		}
	}
}

func claimUsable(pvc *corev1.PersistentVolumeClaim) error {
	if hasMode(pvc, corev1.ReadWriteOncePod) {
		return fmt.Errorf("persistentvolumeclaim %s is ReadWriteOncePod: no pod but the one using it may mount it; use ReadWriteOnce, or back it up while the workload is scaled down", pvc.Name)
	}
	if pvc.Status.Phase != corev1.ClaimBound {
		return fmt.Errorf("persistentvolumeclaim %s is %s, not Bound: there is no data to back up yet", pvc.Name, pvc.Status.Phase)
	}
	return nil
}

func hasMode(pvc *corev1.PersistentVolumeClaim, mode corev1.PersistentVolumeAccessMode) bool {
	for _, m := range pvc.Spec.AccessModes {
		if m == mode {
			return true
		}
	}
	return false
}

// nodeUsingClaim finds the node of a running pod that mounts the claim.
func nodeUsingClaim(ctx context.Context, c kubernetes.Interface, ns, claim string) (string, error) {
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				return p.Spec.NodeName, nil
			}
		}
	}
	return "", nil
}

func volumeKind(v corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.ConfigMap != nil:
		return "configMap"
	case v.Secret != nil:
		return "secret"
	case v.Projected != nil:
		return "projected"
	case v.Ephemeral != nil:
		return "ephemeral"
	case v.NFS != nil:
		return "nfs"
	case v.CSI != nil:
		return "csi"
	}
	return "unsupported volume type"
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
