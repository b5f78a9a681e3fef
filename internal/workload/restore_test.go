package workload

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// A StatefulSet scaled down for the restore (--scale-down) still has the hosts of the
// replicas it had, restoring read-write into their claims; one not scaled down has those
// of its replica count.
func TestResolveRestoreHostsOfAScaledDownStatefulSet(t *testing.T) {
	for _, tc := range []struct {
		replicas   int32
		annotation string
		want       int
	}{{0, "3", 3}, {2, "", 2}, {2, "garbage", 2}} {
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
			Spec: appsv1.StatefulSetSpec{Replicas: &tc.replicas,
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}}}}},
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}}}
		if tc.annotation != "" {
			sts.Annotations = map[string]string{api.AnnotationScaledDownFrom: tc.annotation}
		}
		objs := []runtime.Object{sts}
		for i := range 3 {
			objs = append(objs, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("data-db-%d", i), Namespace: "ns"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}})
		}
		hosts, err := ResolveRestoreHosts(context.Background(), fake.NewClientset(objs...), "ns",
			api.RestoreConfig{Target: api.Target{Kind: "statefulset", Name: "db"}})
		if err != nil || len(hosts) != tc.want {
			t.Fatalf("replicas %d, annotation %q: %d hosts, %v; want %d", tc.replicas, tc.annotation, len(hosts), err, tc.want)
		}
		for i, h := range hosts {
			m := h.Mounts
			if h.Err != nil || h.Name != fmt.Sprintf("host-%d", i) || len(m) != 1 || m[0].MountPath != "/var/lib/db" ||
				m[0].Source.PersistentVolumeClaim.ClaimName != fmt.Sprintf("data-db-%d", i) || m[0].Source.PersistentVolumeClaim.ReadOnly {
				t.Errorf("host %d: %+v", i, h)
			}
		}
	}
}
