// Package verifyjob builds the Jobs of a backup verification: the plugin creates the
// first session, the CronJob's launcher creates scheduled ones, and a failed session with
// retries left creates the next. All three build it here, so they build the same Job.
package verifyjob

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/restoreplan"
)

// AnnotationRetryLeft is the seed's retryLeft of a verification session, on its Job.
const AnnotationRetryLeft = api.Prefix + "retry-left"

// ScratchPath is where the restore lands in a verification pod; BinPath is where the job
// image's binary is copied for the user's command container.
const (
	ScratchPath = api.VerifyMountPath
	BinPath     = "/stash-bin"
	// EnvCommand carries the user's command to the command container.
	EnvCommand = "STASH_VERIFY_COMMAND"
)

// SessionName is the seed's <repository>-<session>-<unix time>, shortened to a Job name's
// 63 characters by trimming the session part.
func SessionName(cfg api.VerifyConfig, t time.Time) string {
	suffix := "-" + strconv.FormatInt(t.Unix(), 10)
	base := cfg.Repository + "-" + cfg.Session
	if len(base)+len(suffix) > 63 {
		base = strings.TrimRight(base[:63-len(suffix)], "-.")
	}
	return base + suffix
}

// Labels of a verification's objects; component is api.ComponentVerify*.
func Labels(cfg api.VerifyConfig, component string) map[string]string {
	l := map[string]string{api.LabelManagedBy: api.ManagedByValue, api.LabelVerification: cfg.Name}
	if component != "" {
		l[api.LabelComponent] = component
	}
	return l
}

// ServiceAccountName is the ServiceAccount (Role, RoleBinding) of a verification.
func ServiceAccountName(cfg api.VerifyConfig) string { return "stash-verify-" + cfg.Name }

// SessionJob builds a verification session named name, owned by owner (the verification's
// CronJob), with retryLeft retries left; repoURL is the repository Secret's URL (a pvc://
// repository is mounted).
func SessionJob(cfg api.VerifyConfig, ns, name, repoURL string, owner *metav1.OwnerReference, retryLeft int) (*batchv1.Job, error) {
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	labels := Labels(cfg, api.ComponentVerifySession)
	zero := int32(0)
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels,
			Annotations: map[string]string{AnnotationRetryLeft: strconv.Itoa(retryLeft)}},
		Spec: batchv1.JobSpec{
			// a failed verification is retried by a new session (the seed's retryLeft),
			// never by the Job controller behind the status' back
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{api.AnnotationConfig: string(cfgJSON)}},
			},
		},
	}
	if owner != nil {
		// owned (deleted with the verification) but not controlled: the CronJob
		// controller would otherwise trim sessions to its own history limit, which
		// counts the launcher Jobs; the sessions' history is the verification's own
		o := *owner
		no := false
		o.Controller = &no
		job.OwnerReferences = []metav1.OwnerReference{o}
	}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil {
			return nil, fmt.Errorf("timeout %q: %w", cfg.Timeout, err)
		}
		deadline := int64(d.Seconds())
		job.Spec.ActiveDeadlineSeconds = &deadline
	}
	pod, err := podSpec(cfg)
	if err != nil {
		return nil, err
	}
	job.Spec.Template.Spec = pod
	if err := withRepository(job, repoURL); err != nil {
		return nil, err
	}
	return job, nil
}

func podSpec(cfg api.VerifyConfig) (corev1.PodSpec, error) {
	rt := cfg.Runtime
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	env := []corev1.EnvVar{
		field(api.EnvNamespace, "metadata.namespace"),
		field(api.EnvJobName, fmt.Sprintf("metadata.labels['%s']", api.JobNameLabel)),
		field(api.EnvPodName, "metadata.name"),
		field(api.EnvConfig, fmt.Sprintf("metadata.annotations['%s']", api.AnnotationConfig)),
	}
	readOnly, noEscalation, root := true, false, int64(0)
	// the restore recreates owners, modes and device nodes in the scratch space
	sc := &corev1.SecurityContext{RunAsUser: &root, ReadOnlyRootFilesystem: &readOnly, AllowPrivilegeEscalation: &noEscalation,
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"},
			Add: []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "MKNOD"}}}
	if len(rt.SecurityContext) > 0 {
		sc = &corev1.SecurityContext{}
		if err := json.Unmarshal(rt.SecurityContext, sc); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.securityContext: %w", err)
		}
	}
	scratch := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if cfg.ScratchSize != "" {
		q, err := resource.ParseQuantity(cfg.ScratchSize)
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("scratch size %q: %w", cfg.ScratchSize, err)
		}
		if cfg.ScratchPVC {
			// a generic ephemeral volume: a PVC created with the pod and deleted with it
			spec := corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}}}
			if cfg.StorageClass != "" {
				spec.StorageClassName = &cfg.StorageClass
			}
			scratch = corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(cfg, "")}, Spec: spec}}}
		} else {
			scratch.EmptyDir.SizeLimit = &q
		}
	}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: rt.ServiceAccount,
		NodeSelector:       rt.NodeSelector,
		Volumes: []corev1.Volume{
			{Name: "scratch", VolumeSource: scratch},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	if len(rt.Tolerations) > 0 {
		if err := json.Unmarshal(rt.Tolerations, &pod.Tolerations); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.tolerations: %w", err)
		}
	}
	verify := corev1.Container{
		Name: "verify", Image: cfg.Image, ImagePullPolicy: corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		Args:                     []string{"verify-session"},
		Env:                      env,
		EnvFrom:                  []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cfg.Repository}}}},
		SecurityContext:          sc,
		VolumeMounts:             []corev1.VolumeMount{{Name: "scratch", MountPath: ScratchPath}, {Name: "tmp", MountPath: "/tmp"}},
	}
	if len(rt.Resources) > 0 {
		if err := json.Unmarshal(rt.Resources, &verify.Resources); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.resources: %w", err)
		}
	}
	if cfg.Command == "" {
		pod.Containers = []corev1.Container{verify}
		return pod, nil
	}
	// With a command: the restore and check run first (init containers), then the user's
	// image runs the command on the restored tree, read-only, through a copy of this
	// static binary, which records the outcome on the Job.
	install := corev1.Container{
		Name: "install", Image: cfg.Image, ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            []string{"install-self", BinPath},
		SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: &readOnly, AllowPrivilegeEscalation: &noEscalation, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		VolumeMounts:    []corev1.VolumeMount{{Name: "stash-bin", MountPath: BinPath}},
	}
	verify.Args = []string{"verify-session", "--stage", "restore"}
	command := corev1.Container{
		Name: "command", Image: cfg.CommandImage, ImagePullPolicy: corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		Command:                  []string{BinPath + "/stash-job", "verify-command"},
		WorkingDir:               ScratchPath,
		Env:                      append(append([]corev1.EnvVar(nil), env...), corev1.EnvVar{Name: EnvCommand, Value: cfg.Command}),
		SecurityContext:          &corev1.SecurityContext{AllowPrivilegeEscalation: &noEscalation, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: ScratchPath, ReadOnly: true},
			{Name: "stash-bin", MountPath: BinPath, ReadOnly: true}},
	}
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "stash-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.InitContainers = []corev1.Container{install, verify}
	pod.Containers = []corev1.Container{command}
	return pod, nil
}

// withRepository mounts a pvc:// repository into the verify container and points it
// there; other repositories need nothing.
func withRepository(job *batchv1.Job, repoURL string) error {
	claim, fileURL, ok, err := api.PVCRepository(repoURL)
	if err != nil || !ok {
		return err
	}
	spec := &job.Spec.Template.Spec
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "stash-repository", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	for _, list := range []*[]corev1.Container{&spec.InitContainers, &spec.Containers} {
		for i := range *list {
			c := &(*list)[i]
			if c.Name != "verify" {
				continue
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "stash-repository", MountPath: api.RepositoryMountPath})
			c.Env = append(c.Env, corev1.EnvVar{Name: api.SecretKeyRepository, Value: fileURL})
		}
	}
	return nil
}

// SelectSnapshots picks the snapshots a verification checks from all (oldest first): the
// one named, or the latest of each host and path (of the configuration, host and paths).
func SelectSnapshots(all []*repo.Snapshot, cfg api.VerifyConfig) ([]*repo.Snapshot, error) {
	if cfg.Snapshot != "" && cfg.Snapshot != "latest" {
		sn, err := restoreplan.Find(all, cfg.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("%w %s", err, cfg.Repository)
		}
		return []*repo.Snapshot{sn}, nil
	}
	latest := map[string]*repo.Snapshot{}
	var keys []string
	for _, sn := range all {
		if cfg.Invoker != "" && !slices.Contains(sn.Tags, api.TagConfig+cfg.Invoker) {
			continue
		}
		if cfg.Host != "" && sn.Host != cfg.Host {
			continue
		}
		if len(cfg.Paths) > 0 && !anyPath(sn, cfg.Paths) {
			continue
		}
		k := sn.Host + "\x00" + strings.Join(sn.Paths, "\x00")
		if old, ok := latest[k]; !ok {
			keys = append(keys, k)
		} else if sn.Time.Before(old.Time) {
			continue
		}
		latest[k] = sn
	}
	if len(keys) == 0 {
		what := "repository " + cfg.Repository
		if cfg.Invoker != "" {
			what = "backup configuration " + cfg.Invoker
		}
		if cfg.Host != "" {
			what += " for host " + cfg.Host
		}
		return nil, fmt.Errorf("no snapshot of %s to verify", what)
	}
	sort.Strings(keys)
	out := make([]*repo.Snapshot, 0, len(keys))
	for _, k := range keys {
		out = append(out, latest[k])
	}
	return out, nil
}

func anyPath(sn *repo.Snapshot, paths []string) bool {
	for _, p := range paths {
		for _, sp := range sn.Paths {
			if path.Clean(p) == path.Clean(sp) {
				return true
			}
		}
	}
	return false
}
