package repository

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// VolumeName is the name of the pod volume that holds a pvc:// repository's claim.
const VolumeName = "stash-repository"

// PodAccess is what a container needs to reach the repository: every key of the Secret as
// an environment variable (envFrom), and, for a pvc:// repository, the claim mounted at
// api.RepositoryMountPath with STASH_REPOSITORY overridden by the file:// URL there (env
// wins over envFrom).
type PodAccess struct {
	EnvFrom      []corev1.EnvFromSource
	Env          []corev1.EnvVar
	Volumes      []corev1.Volume
	VolumeMounts []corev1.VolumeMount
}

// PodAccess returns what a pod needs; readOnly mounts a pvc:// claim read-only (listing,
// restore), else read-write (backup).
func (r *Repository) PodAccess(readOnly bool) PodAccess {
	pa := PodAccess{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: r.Name}}}}}
	if r.Claim == "" {
		return pa
	}
	pa.Env = []corev1.EnvVar{{Name: api.SecretKeyRepository, Value: r.PodURL}}
	pa.Volumes = []corev1.Volume{{Name: VolumeName, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: r.Claim, ReadOnly: readOnly}}}}
	pa.VolumeMounts = []corev1.VolumeMount{{Name: VolumeName, MountPath: api.RepositoryMountPath, ReadOnly: readOnly}}
	return pa
}

// ApplyTo adds the access to a pod spec and one of its containers.
func (pa PodAccess) ApplyTo(spec *corev1.PodSpec, c *corev1.Container) {
	c.EnvFrom = append(c.EnvFrom, pa.EnvFrom...)
	c.Env = append(c.Env, pa.Env...)
	c.VolumeMounts = append(c.VolumeMounts, pa.VolumeMounts...)
	spec.Volumes = append(spec.Volumes, pa.Volumes...)
}
