package workload

import (
	"context"
	"fmt"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// ResolveRestoreHosts finds the hosts of a restore target, named as for backup, each with
// the target's volumes mounted read-write where the workload's containers mount them (or
// where cfg.VolumeMounts says). A StatefulSet that does not exist yet has cfg.Replicas
// hosts restoring into the claims of cfg.VolumeClaimTemplates.
func ResolveRestoreHosts(ctx context.Context, c kubernetes.Interface, ns string, cfg api.RestoreConfig) ([]Host, error) {
	t := cfg.Target
	notFound := func(err error) error {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("target %s not found in namespace %s", t, ns)
		}
		return fmt.Errorf("target %s: %w", t, err)
	}
	build := func(name string, spec corev1.PodSpec, claimOf func(string) string) Host {
		return restoreHost(ctx, c, ns, cfg, name, spec, claimOf)
	}
	if t.Kind == "statefulset" {
		_, err := c.AppsV1().StatefulSets(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && cfg.Replicas > 0 {
			return newStatefulSetHosts(ctx, c, ns, cfg), nil
		}
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("target %s not found in namespace %s: to restore into a StatefulSet that does not exist yet, give --replicas N and --volume-claim-template FILE", t, ns)
		}
	}
	if hosts, ok, err := workloadHosts(ctx, c, ns, t, cfg.Alias, restoreReplicas, build, notFound, "restore into"); ok {
		return hosts, err
	}
	switch t.Kind {
	case "pvc":
		pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, notFound(err)
		}
		h, _ := pvcHost(cfg.Alias, pvc.Name, cfg.MountPath, false)
		h.Err = claimWritable(pvc)
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

// restoreReplicas is a StatefulSet's replica count, or the count it had before this
// restore scaled it down (--scale-down records it): those are its hosts.
func restoreReplicas(s *appsv1.StatefulSet) int {
	n := specReplicas(s)
	if v, ok := s.Annotations[api.AnnotationScaledDownFrom]; ok {
		if before, err := strconv.Atoi(v); err == nil && before > n {
			n = before
		}
	}
	return n
}

// newStatefulSetHosts are the hosts of a StatefulSet about to be created (the seed's
// recovered-statefulset): host-<i> mounts <template>-<name>-<i> where VolumeMounts say.
func newStatefulSetHosts(ctx context.Context, c kubernetes.Interface, ns string, cfg api.RestoreConfig) []Host {
	var hosts []Host
	for i := range cfg.Replicas {
		h := Host{Name: OrdinalHost(cfg.Alias, i)}
		for _, tmpl := range cfg.VolumeClaimTemplates {
			mp := ""
			for _, vm := range cfg.VolumeMounts {
				if vm.Name == tmpl {
					mp = vm.MountPath
				}
			}
			if mp == "" {
				h.Err = fmt.Errorf("volume claim template %q has no mount path: give --volume-mount %s:/path", tmpl, tmpl)
				break
			}
			claim := fmt.Sprintf("%s-%s-%d", tmpl, cfg.Target.Name, i)
			pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
			if err != nil {
				h.Err = fmt.Errorf("persistentvolumeclaim %s (template %s, replica %d): %w", claim, tmpl, i, err)
				break
			}
			if h.Err = claimWritable(pvc); h.Err != nil {
				break
			}
			h.Mounts = append(h.Mounts, HostMount{Volume: fmt.Sprintf("data-%d", len(h.Mounts)), MountPath: mp,
				Source: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// restoreHost mounts, read-write, every PersistentVolumeClaim and hostPath volume the
// workload's containers mount, at the same paths (deduplicated by path, the first
// container's mount winning as in the pod's main container); with cfg.VolumeMounts, only
// those volumes, at the paths given there.
func restoreHost(ctx context.Context, c kubernetes.Interface, ns string, cfg api.RestoreConfig, name string, spec corev1.PodSpec, claimOf func(volume string) string) Host {
	h := Host{Name: name}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []corev1.VolumeMount
	if len(cfg.VolumeMounts) > 0 {
		for _, vm := range cfg.VolumeMounts {
			mounts = append(mounts, corev1.VolumeMount{Name: vm.Name, MountPath: vm.MountPath})
		}
	} else {
		for _, ct := range append(append([]corev1.Container(nil), spec.Containers...), spec.InitContainers...) {
			mounts = append(mounts, ct.VolumeMounts...)
		}
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		mp := path.Clean(m.MountPath)
		if seen[mp] {
			continue
		}
		var src corev1.VolumeSource
		v, defined := volumes[m.Name]
		switch claim := claimOf(m.Name); {
		case claim != "":
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}
		case !defined:
			if len(cfg.VolumeMounts) > 0 {
				h.Err = fmt.Errorf("volume %q is not a volume of %s: see its pod template for the volume names", m.Name, cfg.Target)
				return h
			}
			continue
		case v.PersistentVolumeClaim != nil:
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.PersistentVolumeClaim.ClaimName}
		case v.HostPath != nil:
			src.HostPath = v.HostPath.DeepCopy()
		default:
			if len(cfg.VolumeMounts) > 0 {
				h.Err = fmt.Errorf("volume %q of %s is %s: only PersistentVolumeClaim and hostPath volumes can be restored into from outside the pod", m.Name, cfg.Target, volumeKind(v))
				return h
			}
			continue // configMaps, secrets, emptyDirs: not data a restore writes
		}
		if pvc := src.PersistentVolumeClaim; pvc != nil {
			claim, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvc.ClaimName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					h.Err = fmt.Errorf("persistentvolumeclaim %s (volume %q of %s) not found", pvc.ClaimName, m.Name, cfg.Target)
				} else {
					h.Err = fmt.Errorf("persistentvolumeclaim %s: %w", pvc.ClaimName, err)
				}
				return h
			}
			if err := claimWritable(claim); err != nil {
				h.Err = err
				return h
			}
		}
		seen[mp] = true
		h.Mounts = append(h.Mounts, HostMount{Volume: fmt.Sprintf("data-%d", len(h.Mounts)), Source: src, MountPath: mp, SubPath: m.SubPath})
	}
	if len(h.Mounts) == 0 {
		h.Err = fmt.Errorf("%s mounts no PersistentVolumeClaim or hostPath volume: there is nowhere to restore to", cfg.Target)
	}
	return h
}

// claimWritable: a restore may write into a claim that is not bound yet (its storage
// class binds on first use, and the restore pod is that use), but not into one only its
// own pod may mount.
func claimWritable(pvc *corev1.PersistentVolumeClaim) error {
	if hasMode(pvc, corev1.ReadWriteOncePod) {
		return fmt.Errorf("persistentvolumeclaim %s is ReadWriteOncePod: no pod but the one using it may mount it; scale the workload down for the restore (--scale-down)", pvc.Name)
	}
	if pvc.Status.Phase == corev1.ClaimLost {
		return fmt.Errorf("persistentvolumeclaim %s is Lost: its volume is gone", pvc.Name)
	}
	return nil
}
