package jobimage

import (
	"encoding/json"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
)

// HostJob builds the Job that backs up one host. The session Job owns it, so it goes
// when the session goes (the CronJob's history limit). A host that cannot be backed up
// gets a suspended Job carrying its Failed status: every host has its record in the
// same place, whatever the host count.
func HostJob(session *batchv1.Job, cfg api.BackupConfig, h workload.Host, repoClaim, repoFileURL string, now string) (*batchv1.Job, error) {
	name := api.HostJobName(session.Name, h.Name)
	if cfg.BatchMember {
		// two members may both have a host-0
		name = api.HostJobName(session.Name, api.MemberKey(cfg.Target)+"-"+h.Name)
	}

	spec := api.HostSpec{SchemaVersion: api.SchemaVersion, Config: cfg.Name, Session: session.Name, Hostname: h.Name,
		Target: cfg.Target, Paths: cfg.Paths, Excludes: cfg.Excludes, Retention: cfg.Retention,
		Nice: cfg.Runtime.Nice, IONiceClass: cfg.Runtime.IONiceClass, IONiceData: cfg.Runtime.IONiceData,
		Pod: h.Pod, Dump: h.Dump, Hooks: cfg.Hooks}
	if spec.Dump != nil {
		spec.Paths = nil
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		api.LabelManagedBy:           api.ManagedByValue,
		api.LabelBackupConfiguration: cfg.Name,
		api.LabelBackupSession:       session.Name,
		api.LabelHost:                labelValue(h.Name),
		api.LabelComponent:           api.ComponentHost,
	}
	truth, zero := true, int32(0)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   session.Namespace,
			Labels:      labels,
			Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: session.Name,
				UID: session.UID, Controller: &truth, BlockOwnerDeletion: &truth}},
		},
		Spec: batchv1.JobSpec{
			// a failed backup is reported, not retried behind the user's back: the next
			// session (schedule or trigger) is the retry
			BackoffLimit: &zero,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{api.AnnotationHostSpec: string(specJSON)}},
			},
		},
	}
	if cfg.BatchMember {
		// the member's section of the session status gathers its hosts by this
		job.Annotations[api.AnnotationTarget] = cfg.Target.String()
	}
	if h.Err != nil {
		job.Spec.Suspend = &truth
		st := api.HostStatus{SchemaVersion: api.SchemaVersion, Hostname: h.Name, Phase: api.PhaseFailed,
			Error: h.Err.Error(), Duration: "0s", UpdateTime: now}
		b, _ := json.Marshal(st)
		job.Annotations[api.AnnotationHostStatus] = string(b)
		job.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "backup", Image: cfg.Image}}}
		return job, nil
	}
	pod, err := hostPodSpec(podParams{Image: cfg.Image, Repository: cfg.Repository, Runtime: cfg.Runtime,
		Container: "backup", Args: []string{"host"}, SpecEnv: api.EnvHostSpec, SpecAnnotation: api.AnnotationHostSpec}, h, repoClaim, repoFileURL)
	if err != nil {
		return nil, err
	}
	job.Spec.Template.Spec = pod
	return job, nil
}

func labelValue(s string) string {
	if len(s) > 63 {
		return s[:63]
	}
	return s
}

// podParams are what differs between a backup and a restore host pod.
type podParams struct {
	Image, Repository string
	Runtime           api.Runtime
	// Container names the container; Args are stash-job's arguments.
	Container string
	Args      []string
	// SpecEnv receives, through the downward API, the pod template annotation SpecAnnotation.
	SpecEnv, SpecAnnotation string
	// Write mounts the host's volumes read-write and gives the capabilities a restore
	// needs to recreate owners, modes and device nodes.
	Write bool
}

func hostPodSpec(pp podParams, h workload.Host, repoClaim, repoFileURL string) (corev1.PodSpec, error) {
	rt := pp.Runtime
	readOnlyRoot, noEscalation, root := true, false, int64(0)
	// Read every file whatever its owner or mode, and nothing more: uid 0 with all
	// capabilities dropped but DAC_READ_SEARCH (bypass read and search permission checks).
	caps := []corev1.Capability{"DAC_READ_SEARCH"}
	if pp.Write {
		// A restore writes into directories of any owner and sets each file's owner,
		// mode (with set-id bits) and times as the snapshot recorded them.
		caps = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "MKNOD"}
	}
	sc := &corev1.SecurityContext{
		RunAsUser:                &root,
		ReadOnlyRootFilesystem:   &readOnlyRoot,
		AllowPrivilegeEscalation: &noEscalation,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps},
	}
	if len(rt.SecurityContext) > 0 {
		sc = &corev1.SecurityContext{}
		if err := json.Unmarshal(rt.SecurityContext, sc); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.securityContext: %w", err)
		}
	}
	ct := corev1.Container{
		Name:            pp.Container,
		Image:           pp.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		// a pod that dies before it can annotate its Job still leaves its last words
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		Args:                     pp.Args,
		Env:                      downwardEnv(),
		EnvFrom:                  []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: pp.Repository}}}},
		SecurityContext:          sc,
		VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	if pp.SpecEnv != "" {
		ct.Env = append(ct.Env, corev1.EnvVar{Name: pp.SpecEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: fmt.Sprintf("metadata.annotations['%s']", pp.SpecAnnotation)}}})
	}
	if len(rt.Resources) > 0 {
		if err := json.Unmarshal(rt.Resources, &ct.Resources); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.resources: %w", err)
		}
	}
	if len(rt.Env) > 0 {
		var env []corev1.EnvVar
		if err := json.Unmarshal(rt.Env, &env); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.env: %w", err)
		}
		ct.Env = append(ct.Env, env...)
	}
	if len(rt.EnvFrom) > 0 {
		var from []corev1.EnvFromSource
		if err := json.Unmarshal(rt.EnvFrom, &from); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.envFrom: %w", err)
		}
		// after the repository Secret: a key in both takes this one's value
		ct.EnvFrom = append(ct.EnvFrom, from...)
	}
	medium := corev1.StorageMedium(rt.TempDirMedium)
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: rt.ServiceAccount,
		NodeSelector:       rt.NodeSelector,
		Volumes:            []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}}},
	}
	for _, f := range []struct {
		name string
		raw  []byte
		into any
	}{{"affinity", rt.Affinity, &pod.Affinity}, {"imagePullSecrets", rt.ImagePullSecrets, &pod.ImagePullSecrets},
		{"topologySpreadConstraints", rt.TopologySpreadConstraints, &pod.TopologySpreadConstraints}} {
		if len(f.raw) > 0 {
			if err := json.Unmarshal(f.raw, f.into); err != nil {
				return corev1.PodSpec{}, fmt.Errorf("runtime.%s: %w", f.name, err)
			}
		}
	}
	pod.PriorityClassName = rt.PriorityClassName
	pod.SchedulerName = rt.SchedulerName
	if rt.RuntimeClassName != "" {
		pod.RuntimeClassName = &rt.RuntimeClassName
	}
	pod.EnableServiceLinks = rt.EnableServiceLinks
	if len(rt.Tolerations) > 0 {
		if err := json.Unmarshal(rt.Tolerations, &pod.Tolerations); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.tolerations: %w", err)
		}
	}
	if len(rt.PodSecurityContext) > 0 {
		pod.SecurityContext = &corev1.PodSecurityContext{}
		if err := json.Unmarshal(rt.PodSecurityContext, pod.SecurityContext); err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.podSecurityContext: %w", err)
		}
	}
	for _, m := range h.Mounts {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: m.Volume, VolumeSource: m.Source})
		ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: m.Volume, MountPath: m.MountPath, SubPath: m.SubPath, ReadOnly: !pp.Write})
	}
	if !rt.NoCache {
		// the metadata cache lives on its own emptyDir with a sizeLimit, and the engine's
		// budget stays below it (index files are written whole before old entries go), so
		// the cache never gets the pod evicted for ephemeral storage
		size := rt.CacheSize
		if size == "" {
			size = api.DefaultCacheSize
		}
		limit, err := resource.ParseQuantity(size)
		if err != nil {
			return corev1.PodSpec{}, fmt.Errorf("runtime.cacheSize %q: %w", size, err)
		}
		budget := limit.Value() / 10 * 8
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "stash-cache", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium, SizeLimit: &limit}}})
		ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: "stash-cache", MountPath: CacheMountPath})
		ct.Env = append(ct.Env, corev1.EnvVar{Name: repocmd.EnvCacheDir, Value: CacheMountPath},
			corev1.EnvVar{Name: repocmd.EnvCacheSize, Value: strconv.FormatInt(budget, 10)})
	}
	if repoClaim != "" {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "stash-repository", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: repoClaim}}})
		ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: "stash-repository", MountPath: api.RepositoryMountPath})
		// env wins over envFrom: the pod sees the repository at its mount
		ct.Env = append(ct.Env, corev1.EnvVar{Name: api.SecretKeyRepository, Value: repoFileURL})
	}
	if h.Node != "" {
		onNode := corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{h.Node}}
		if pod.Affinity == nil {
			pod.Affinity = &corev1.Affinity{}
		}
		if pod.Affinity.NodeAffinity == nil {
			pod.Affinity.NodeAffinity = &corev1.NodeAffinity{}
		}
		if req := pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; req != nil && len(req.NodeSelectorTerms) > 0 {
			// the runtime's own node affinity still holds, on the node of the volume
			for i := range req.NodeSelectorTerms {
				req.NodeSelectorTerms[i].MatchFields = append(req.NodeSelectorTerms[i].MatchFields, onNode)
			}
		} else {
			pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{onNode}}}}
		}
		// a DaemonSet's node may carry taints its pods tolerate; the host Job goes where they are
		pod.Tolerations = append(pod.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
	}
	pod.Containers = []corev1.Container{ct}
	return pod, nil
}

// CacheMountPath is where a host pod's metadata cache volume is mounted.
const CacheMountPath = "/stash-cache"

// downwardEnv tells a job pod who it is (api.Env*).
func downwardEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return []corev1.EnvVar{
		field(api.EnvNamespace, "metadata.namespace"),
		field(api.EnvJobName, fmt.Sprintf("metadata.labels['%s']", api.JobNameLabel)),
		field(api.EnvPodName, "metadata.name"),
		field(api.EnvNodeName, "spec.nodeName"),
	}
}
