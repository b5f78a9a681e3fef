package jobimage

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
)

// ComponentPrune marks the prune Job of a backup session (--prune).
const ComponentPrune = "prune"

// PruneJob builds the Job that prunes the repository after a session's hosts succeeded:
// the pod of a host, without volumes, running `stash-job prune`. It is retried a few
// times, since another configuration's backup may hold the repository for a while.
func PruneJob(session *batchv1.Job, cfg api.BackupConfig, repoClaim, repoFileURL string) (*batchv1.Job, error) {
	labels := map[string]string{
		api.LabelManagedBy:           api.ManagedByValue,
		api.LabelBackupConfiguration: cfg.Name,
		api.LabelBackupSession:       session.Name,
		api.LabelComponent:           ComponentPrune,
	}
	truth, retries := true, int32(3)
	pod, err := hostPodSpec(podParams{Image: cfg.Image, Repository: cfg.Repository, Runtime: cfg.Runtime, Container: "prune",
		Args: []string{"prune", "--repo", "$(" + api.SecretKeyRepository + ")"}}, workload.Host{}, repoClaim, repoFileURL)
	if err != nil {
		return nil, err
	}
	ct := &pod.Containers[0]
	if repoClaim == "" {
		// $(VAR) in args expands from env, not envFrom: name the URL there too
		ct.Env = append(ct.Env, corev1.EnvVar{Name: api.SecretKeyRepository, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: cfg.Repository}, Key: api.SecretKeyRepository}}})
	}
	ct.Env = append(ct.Env, corev1.EnvVar{Name: "STASH_TERMINATION_MESSAGE", Value: "/dev/termination-log"})
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: api.HostJobName(session.Name, "prune"), Namespace: session.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: session.Name, UID: session.UID, Controller: &truth, BlockOwnerDeletion: &truth}}},
		Spec: batchv1.JobSpec{BackoffLimit: &retries, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod}},
	}, nil
}
