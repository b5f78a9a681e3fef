package manifest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Stash and KubeStash object shapes this package reads, written from their published
// API (see the seeds and the reference schemas); the core/v1 types are Kubernetes' own.
// A field tagged unsup is read (and type-checked) but cannot be honoured: its reason is
// unsupported[id].

// unsupported holds the reason, and what to do instead, of each field a manifest may
// carry that this project cannot honour.
var unsupported = map[string]string{
	"ksHooks":          "KubeStash hooks refer to HookTemplate objects, which kubectl-stash does not read: write the hooks in a Stash manifest (spec.hooks: a preBackup/postBackup or preRestore/postRestore handler), or give the verb --pre-backup/--post-backup (--pre-restore/--post-restore); remove them here",
	"batchHooks":       "a BackupBatch's own hooks run once around the whole batch (Stash's global hooks), and kubectl-stash runs hooks around each host of each member, in the member's pods: put the hooks on the members (spec.members[].hooks) that need them",
	"tcpSocket":        "tcpSocket hooks are not supported: opening a TCP connection does nothing to prepare or release an application; use exec (a command in the pod) or httpGet/httpPost",
	"httpForm":         "form bodies are not supported: send the body as it is in httpPost.body, with a Content-Type header (application/x-www-form-urlencoded for a form); the hook is skipped",
	"retry":            "retryConfig is not supported: a failed session is recorded as Failed and never re-run behind your back; the next schedule, or kubectl stash trigger, is the retry; remove retryConfig",
	"interim":          "interimVolumeTemplate is not supported: kubectl-stash reads the volumes in place and streams them to the repository, it needs no interim volume; remove it",
	"snapshotClass":    "snapshotClassName is for driver VolumeSnapshotter, which kubectl-stash does not have (it backs up files, not CSI snapshots); remove it",
	"args":             "args are extra arguments of Stash's restic command; kubectl-stash runs its own engine and has no equivalent; remove them",
	"probe":            "probes have no use on a backup or restore container, which runs to completion; remove it",
	"lifecycle":        "lifecycle hooks of the backup or restore container are not supported; remove it",
	"podLabels":        "labels and annotations of the job pods are not supported yet; remove them",
	"nodeName":         "nodeName is not supported: a host pod runs on the node of the volume it reads; use nodeSelector or affinity to narrow where pods go",
	"priority":         "priority is computed by the API server from priorityClassName, which is supported; set priorityClassName instead",
	"readinessGates":   "readinessGates have no use on pods that run to completion; remove them",
	"backend":          "this backend is not supported: a repository lives in S3 (or an S3-compatible store), GCS, Azure Blob, or on a PersistentVolumeClaim",
	"verification":     "backup verification is not configured here: it is kubectl stash verify's (a BackupVerificationSession); remove it",
	"startingDeadline": "startingDeadlineSeconds is fixed by kubectl-stash (300 s: a schedule missed for longer is skipped, never run late); remove it",
	"jobHistory":       "the history limits of KubeStash's trigger Jobs have no equivalent: here the CronJob's Jobs are the sessions, and sessionHistoryLimit keeps them; remove it",
	"jobTemplate":      "the scheduler's jobTemplate is KubeStash's trigger Job; here the CronJob's Job is the session itself (backoffLimit 0: a failed session is recorded, not retried); set pod settings in addon.jobTemplate and remove this one",
	"variables":        "task variables are not supported: the workload tasks take no variables; remove them",
	"targetVolumes":    "targetVolumes.volumes is not read: the host pods mount the volumes the target's own pod template defines under the names in volumeMounts; remove volumes",
	"pitr":             "point-in-time recovery is for database addons; kubectl-stash restores file snapshots (by id, or latest); remove pitr",
	"manifestOptions":  "manifestOptions are for manifest restores, which kubectl-stash does not do; remove them",
	"podSpec":          "this pod field is not supported for kubectl-stash's job pods; remove it",
	"runtimeSettings":  "runtime settings of KubeStash's storage initialisation Job have no use here (kubectl stash repo create initialises repositories); remove them",
	"verifier":         "a BackupVerifier reference is not read: kubectl-stash verifies by restoring into scratch space; remove backupVerifier",
}

// ---- shared: kmodules offshoot runtime settings ----

type runtimeSettings struct {
	Pod       *podRuntimeSettings       `json:"pod,omitempty,omitzero"`
	Container *containerRuntimeSettings `json:"container,omitempty,omitzero"`
}

// podPlacement are the pod-level settings of Stash's runtimeSettings.pod that KubeStash's
// addon.jobTemplate.spec has too.
type podPlacement struct {
	NodeSelector                 map[string]string                 `json:"nodeSelector,omitempty,omitzero"`
	ServiceAccountName           string                            `json:"serviceAccountName,omitempty,omitzero"`
	AutomountServiceAccountToken *bool                             `json:"automountServiceAccountToken,omitempty,omitzero"`
	NodeName                     string                            `json:"nodeName,omitempty,omitzero" unsup:"nodeName"`
	SecurityContext              *corev1.PodSecurityContext        `json:"securityContext,omitempty,omitzero"`
	ImagePullSecrets             []corev1.LocalObjectReference     `json:"imagePullSecrets,omitempty,omitzero"`
	Affinity                     *corev1.Affinity                  `json:"affinity,omitempty,omitzero"`
	SchedulerName                string                            `json:"schedulerName,omitempty,omitzero"`
	Tolerations                  []corev1.Toleration               `json:"tolerations,omitempty,omitzero"`
	PriorityClassName            string                            `json:"priorityClassName,omitempty,omitzero"`
	Priority                     *int32                            `json:"priority,omitempty,omitzero" unsup:"priority"`
	ReadinessGates               []corev1.PodReadinessGate         `json:"readinessGates,omitempty,omitzero" unsup:"readinessGates"`
	RuntimeClassName             *string                           `json:"runtimeClassName,omitempty,omitzero"`
	EnableServiceLinks           *bool                             `json:"enableServiceLinks,omitempty,omitzero"`
	TopologySpreadConstraints    []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty,omitzero"`
}

type podRuntimeSettings struct {
	PodLabels                 map[string]string `json:"podLabels,omitempty,omitzero" unsup:"podLabels"`
	PodAnnotations            map[string]string `json:"podAnnotations,omitempty,omitzero" unsup:"podLabels"`
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty,omitzero"`
	podPlacement              `json:",inline"`
}

type containerRuntimeSettings struct {
	Resources       *corev1.ResourceRequirements `json:"resources,omitempty,omitzero"`
	LivenessProbe   *corev1.Probe                `json:"livenessProbe,omitempty,omitzero" unsup:"probe"`
	ReadinessProbe  *corev1.Probe                `json:"readinessProbe,omitempty,omitzero" unsup:"probe"`
	Lifecycle       *corev1.Lifecycle            `json:"lifecycle,omitempty,omitzero" unsup:"lifecycle"`
	SecurityContext *corev1.SecurityContext      `json:"securityContext,omitempty,omitzero"`
	Nice            *niceSettings                `json:"nice,omitempty,omitzero"`
	IONice          *ioNiceSettings              `json:"ionice,omitempty,omitzero"`
	EnvFrom         []corev1.EnvFromSource       `json:"envFrom,omitempty,omitzero"`
	Env             []corev1.EnvVar              `json:"env,omitempty,omitzero"`
}

type niceSettings struct {
	Adjustment *int32 `json:"adjustment,omitempty,omitzero"`
}

type ioNiceSettings struct {
	Class     *int32 `json:"class,omitempty,omitzero"`
	ClassData *int32 `json:"classData,omitempty,omitzero"`
}

// partialObjectMeta is kmodules' offshoot PartialObjectMeta.
type partialObjectMeta struct {
	Name        string            `json:"name,omitempty,omitzero"`
	Namespace   string            `json:"namespace,omitempty,omitzero"`
	Labels      map[string]string `json:"labels,omitempty,omitzero"`
	Annotations map[string]string `json:"annotations,omitempty,omitzero"`
}

// claimTemplate is kmodules' offshoot PersistentVolumeClaim.
type claimTemplate struct {
	Metadata partialObjectMeta                `json:"metadata"`
	Spec     corev1.PersistentVolumeClaimSpec `json:"spec"`
}

type usagePolicy struct {
	AllowedNamespaces *struct {
		From     string                `json:"from,omitempty,omitzero"`
		Selector *metav1.LabelSelector `json:"selector,omitempty,omitzero"`
	} `json:"allowedNamespaces,omitempty,omitzero"`
}

// ---- Stash stash.appscode.com/v1beta1 ----

type stashTaskRef struct {
	Name   string `json:"name,omitempty,omitzero"`
	Params []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"params,omitempty,omitzero"`
}

type stashTargetRef struct {
	APIVersion string `json:"apiVersion,omitempty,omitzero"`
	Kind       string `json:"kind,omitempty,omitzero"`
	Name       string `json:"name,omitempty,omitzero"`
	Namespace  string `json:"namespace,omitempty,omitzero"`
}

type stashObjectRef struct {
	Name      string `json:"name,omitempty,omitzero"`
	Namespace string `json:"namespace,omitempty,omitzero"`
}

type stashBackupTarget struct {
	Alias             string               `json:"alias,omitempty,omitzero"`
	Ref               stashTargetRef       `json:"ref,omitempty,omitzero"`
	Paths             []string             `json:"paths,omitempty,omitzero"`
	VolumeMounts      []corev1.VolumeMount `json:"volumeMounts,omitempty,omitzero"`
	Replicas          *int32               `json:"replicas,omitempty,omitzero"`
	SnapshotClassName string               `json:"snapshotClassName,omitempty,omitzero" unsup:"snapshotClass"`
	Exclude           []string             `json:"exclude,omitempty,omitzero"`
	Args              []string             `json:"args,omitempty,omitzero" unsup:"args"`
}

type stashRule struct {
	TargetHosts []string `json:"targetHosts,omitempty,omitzero"`
	SourceHost  string   `json:"sourceHost,omitempty,omitzero"`
	Snapshots   []string `json:"snapshots,omitempty,omitzero"`
	Paths       []string `json:"paths,omitempty,omitzero"`
	Exclude     []string `json:"exclude,omitempty,omitzero"`
	Include     []string `json:"include,omitempty,omitzero"`
}

type stashRestoreTarget struct {
	Alias                string               `json:"alias,omitempty,omitzero"`
	Ref                  stashTargetRef       `json:"ref,omitempty,omitzero"`
	VolumeMounts         []corev1.VolumeMount `json:"volumeMounts,omitempty,omitzero"`
	Replicas             *int32               `json:"replicas,omitempty,omitzero"`
	VolumeClaimTemplates []claimTemplate      `json:"volumeClaimTemplates,omitempty,omitzero"`
	Rules                []stashRule          `json:"rules,omitempty,omitzero"`
	Args                 []string             `json:"args,omitempty,omitzero" unsup:"args"`
}

// emptyDirSettings is Stash's tempDir; size and disableCache are the names the 0.8
// documentation of the RestoreSession seed uses for sizeLimit and disableCaching.
type emptyDirSettings struct {
	Medium         corev1.StorageMedium `json:"medium,omitempty,omitzero"`
	SizeLimit      *resource.Quantity   `json:"sizeLimit,omitempty,omitzero"`
	DisableCaching *bool                `json:"disableCaching,omitempty,omitzero"`
	Size           *resource.Quantity   `json:"size,omitempty,omitzero"`
	DisableCache   *bool                `json:"disableCache,omitempty,omitzero"`
}

type stashRetentionPolicy struct {
	Name        string   `json:"name,omitempty,omitzero"`
	KeepLast    int64    `json:"keepLast,omitempty,omitzero"`
	KeepHourly  int64    `json:"keepHourly,omitempty,omitzero"`
	KeepDaily   int64    `json:"keepDaily,omitempty,omitzero"`
	KeepWeekly  int64    `json:"keepWeekly,omitempty,omitzero"`
	KeepMonthly int64    `json:"keepMonthly,omitempty,omitzero"`
	KeepYearly  int64    `json:"keepYearly,omitempty,omitzero"`
	KeepTags    []string `json:"keepTags,omitempty,omitzero"`
	Prune       bool     `json:"prune"`
	DryRun      bool     `json:"dryRun,omitempty,omitzero"`
}

// stashTemplateSpec is BackupConfigurationTemplateSpec: a BackupConfiguration's spec
// inline, and a BackupBatch's members.
type stashTemplateSpec struct {
	Task                  stashTaskRef       `json:"task,omitempty,omitzero"`
	Target                *stashBackupTarget `json:"target,omitempty,omitzero"`
	RuntimeSettings       runtimeSettings    `json:"runtimeSettings,omitempty,omitzero"`
	TempDir               emptyDirSettings   `json:"tempDir,omitempty,omitzero"`
	InterimVolumeTemplate any                `json:"interimVolumeTemplate,omitempty,omitzero" unsup:"interim"`
	Hooks                 *stashBackupHooks  `json:"hooks,omitempty,omitzero"`
}

// proberHandler is kmodules' prober Handler: the action of a Stash hook.
type proberHandler struct {
	Exec          *corev1.ExecAction      `json:"exec,omitempty,omitzero"`
	HTTPGet       *corev1.HTTPGetAction   `json:"httpGet,omitempty,omitzero"`
	HTTPPost      *httpPostAction         `json:"httpPost,omitempty,omitzero"`
	TCPSocket     *corev1.TCPSocketAction `json:"tcpSocket,omitempty,omitzero" unsup:"tcpSocket"`
	ContainerName string                  `json:"containerName,omitempty,omitzero"`
}

// httpPostAction is kmodules' prober HTTPPostAction.
type httpPostAction struct {
	Path        string              `json:"path,omitempty,omitzero"`
	Port        intstr.IntOrString  `json:"port"`
	Host        string              `json:"host,omitempty,omitzero"`
	Scheme      corev1.URIScheme    `json:"scheme,omitempty,omitzero"`
	HTTPHeaders []corev1.HTTPHeader `json:"httpHeaders,omitempty,omitzero"`
	Body        string              `json:"body,omitempty,omitzero"`
	Form        []struct {
		Key    string   `json:"key,omitempty,omitzero"`
		Values []string `json:"values,omitempty,omitzero"`
	} `json:"form,omitempty,omitzero" unsup:"httpForm"`
}

// postHook is Stash's PostBackupHook and PostRestoreHook: a handler and when it runs.
type postHook struct {
	proberHandler   `json:",inline"`
	ExecutionPolicy string `json:"executionPolicy,omitempty,omitzero"`
}

type stashBackupHooks struct {
	PreBackup  *proberHandler `json:"preBackup,omitempty,omitzero"`
	PostBackup *postHook      `json:"postBackup,omitempty,omitzero"`
}

type stashRestoreHooks struct {
	PreRestore  *proberHandler `json:"preRestore,omitempty,omitzero"`
	PostRestore *postHook      `json:"postRestore,omitempty,omitzero"`
}

type stashBackupConfiguration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		stashTemplateSpec  `json:",inline"`
		Schedule           string               `json:"schedule,omitempty,omitzero"`
		Driver             string               `json:"driver,omitempty,omitzero"`
		Repository         stashObjectRef       `json:"repository,omitempty,omitzero"`
		RetentionPolicy    stashRetentionPolicy `json:"retentionPolicy"`
		Paused             bool                 `json:"paused,omitempty,omitzero"`
		BackupHistoryLimit *int32               `json:"backupHistoryLimit,omitempty,omitzero"`
		TimeOut            string               `json:"timeOut,omitempty,omitzero"`
		RetryConfig        any                  `json:"retryConfig,omitempty,omitzero" unsup:"retry"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type stashBackupBatch struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Members            []stashTemplateSpec  `json:"members,omitempty,omitzero"`
		Schedule           string               `json:"schedule,omitempty,omitzero"`
		RuntimeSettings    runtimeSettings      `json:"runtimeSettings,omitempty,omitzero"`
		Driver             string               `json:"driver,omitempty,omitzero"`
		Repository         stashObjectRef       `json:"repository,omitempty,omitzero"`
		RetentionPolicy    stashRetentionPolicy `json:"retentionPolicy"`
		Paused             bool                 `json:"paused,omitempty,omitzero"`
		BackupHistoryLimit *int32               `json:"backupHistoryLimit,omitempty,omitzero"`
		Hooks              any                  `json:"hooks,omitempty,omitzero" unsup:"batchHooks"`
		ExecutionOrder     string               `json:"executionOrder,omitempty,omitzero"`
		TimeOut            string               `json:"timeOut,omitempty,omitzero"`
		RetryConfig        any                  `json:"retryConfig,omitempty,omitzero" unsup:"retry"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type stashRestoreSession struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Task                  stashTaskRef        `json:"task,omitempty,omitzero"`
		Target                *stashRestoreTarget `json:"target,omitempty,omitzero"`
		RuntimeSettings       runtimeSettings     `json:"runtimeSettings,omitempty,omitzero"`
		TempDir               emptyDirSettings    `json:"tempDir,omitempty,omitzero"`
		InterimVolumeTemplate any                 `json:"interimVolumeTemplate,omitempty,omitzero" unsup:"interim"`
		Hooks                 *stashRestoreHooks  `json:"hooks,omitempty,omitzero"`
		Driver                string              `json:"driver,omitempty,omitzero"`
		Repository            stashObjectRef      `json:"repository,omitempty,omitzero"`
		Rules                 []stashRule         `json:"rules,omitempty,omitzero"`
		TimeOut               string              `json:"timeOut,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type invokerRef struct {
	APIGroup  string `json:"apiGroup,omitempty,omitzero"`
	Kind      string `json:"kind,omitempty,omitzero"`
	Name      string `json:"name,omitempty,omitzero"`
	Namespace string `json:"namespace,omitempty,omitzero"`
}

type stashBackupSession struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Invoker *invokerRef `json:"invoker,omitempty,omitzero"`
		// BackupConfiguration is the 0.8 form of the invoker (the seed's).
		BackupConfiguration *stashObjectRef `json:"backupConfiguration,omitempty,omitzero"`
		RetryLeft           int32           `json:"retryLeft,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

// ---- Stash stash.appscode.com/v1alpha1 Repository ----

type stashRepository struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Backend     stashBackend `json:"backend"`
		WipeOut     bool         `json:"wipeOut,omitempty,omitzero"`
		UsagePolicy *usagePolicy `json:"usagePolicy,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type stashBackend struct {
	StorageSecretName string        `json:"storageSecretName,omitempty,omitzero"`
	Local             *localBackend `json:"local,omitempty,omitzero"`
	S3                *stashS3      `json:"s3,omitempty,omitzero"`
	GCS               *stashGCS     `json:"gcs,omitempty,omitzero"`
	Azure             *stashAzure   `json:"azure,omitempty,omitzero"`
	Swift             any           `json:"swift,omitempty,omitzero" unsup:"backend"`
	B2                any           `json:"b2,omitempty,omitzero" unsup:"backend"`
	Rest              any           `json:"rest,omitempty,omitzero" unsup:"backend"`
}

// ---- KubeStash core.kubestash.com/v1alpha1 ----

type ksObjectRef struct {
	Name      string `json:"name,omitempty,omitzero"`
	Namespace string `json:"namespace,omitempty,omitzero"`
}

type ksBackupConfiguration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Target   *invokerRef  `json:"target,omitempty,omitzero"`
		Backends []backendRef `json:"backends,omitempty,omitzero"`
		Sessions []ksSession  `json:"sessions,omitempty,omitzero"`
		Paused   bool         `json:"paused,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type ksSession struct {
	Name                   string           `json:"name,omitempty,omitzero"`
	Scheduler              *ksScheduler     `json:"scheduler,omitempty,omitzero"`
	RetentionPolicy        *ksObjectRef     `json:"retentionPolicy,omitempty,omitzero"`
	VerificationStrategies any              `json:"verificationStrategies,omitempty,omitzero" unsup:"verification"`
	Hooks                  any              `json:"hooks,omitempty,omitzero" unsup:"ksHooks"`
	FailurePolicy          string           `json:"failurePolicy,omitempty,omitzero"`
	RetryConfig            any              `json:"retryConfig,omitempty,omitzero" unsup:"retry"`
	BackupTimeout          *metav1.Duration `json:"backupTimeout,omitempty,omitzero"`
	SessionHistoryLimit    *int32           `json:"sessionHistoryLimit,omitempty,omitzero"`
	Addon                  *ksAddon         `json:"addon,omitempty,omitzero"`
	Repositories           []ksRepoInfo     `json:"repositories,omitempty,omitzero"`
}

type ksScheduler struct {
	Schedule                   string         `json:"schedule"`
	StartingDeadlineSeconds    *int64         `json:"startingDeadlineSeconds,omitempty,omitzero" unsup:"startingDeadline"`
	ConcurrencyPolicy          string         `json:"concurrencyPolicy,omitempty,omitzero"`
	Suspend                    *bool          `json:"suspend,omitempty,omitzero"`
	JobTemplate                *ksJobTemplate `json:"jobTemplate,omitempty,omitzero"`
	SuccessfulJobsHistoryLimit *int32         `json:"successfulJobsHistoryLimit,omitempty,omitzero" unsup:"jobHistory"`
	FailedJobsHistoryLimit     *int32         `json:"failedJobsHistoryLimit,omitempty,omitzero" unsup:"jobHistory"`
}

type ksAddon struct {
	Name                     string                    `json:"name,omitempty,omitzero"`
	Tasks                    []ksTask                  `json:"tasks,omitempty,omitzero"`
	ContainerRuntimeSettings *containerRuntimeSettings `json:"containerRuntimeSettings,omitempty,omitzero"`
	JobTemplate              *ksAddonJobTemplate       `json:"jobTemplate,omitempty,omitzero"`
}

// ksPodSpec is kmodules' offshoot PodSpec as far as it concerns a job's pod.
type ksPodSpec struct {
	podPlacement                  `json:",inline"`
	Volumes                       any `json:"volumes,omitempty,omitzero" unsup:"podSpec"`
	InitContainers                any `json:"initContainers,omitempty,omitzero" unsup:"podSpec"`
	TerminationGracePeriodSeconds any `json:"terminationGracePeriodSeconds,omitempty,omitzero" unsup:"podSpec"`
	DNSPolicy                     any `json:"dnsPolicy,omitempty,omitzero" unsup:"podSpec"`
	DNSConfig                     any `json:"dnsConfig,omitempty,omitzero" unsup:"podSpec"`
	HostNetwork                   any `json:"hostNetwork,omitempty,omitzero" unsup:"podSpec"`
	HostPID                       any `json:"hostPID,omitempty,omitzero" unsup:"podSpec"`
	HostIPC                       any `json:"hostIPC,omitempty,omitzero" unsup:"podSpec"`
	ShareProcessNamespace         any `json:"shareProcessNamespace,omitempty,omitzero" unsup:"podSpec"`
	HostAliases                   any `json:"hostAliases,omitempty,omitzero" unsup:"podSpec"`
}

type ksTask struct {
	Name          string           `json:"name,omitempty,omitzero"`
	Variables     []corev1.EnvVar  `json:"variables,omitempty,omitzero" unsup:"variables"`
	Params        map[string]any   `json:"params,omitempty,omitzero"`
	TargetVolumes *ksTargetVolumes `json:"targetVolumes,omitempty,omitzero"`
	AddonVolumes  []ksAddonVolume  `json:"addonVolumes,omitempty,omitzero"`
}

type ksRepoInfo struct {
	Name             string       `json:"name,omitempty,omitzero"`
	Backend          string       `json:"backend,omitempty,omitzero"`
	Directory        string       `json:"directory,omitempty,omitzero"`
	EncryptionSecret *ksObjectRef `json:"encryptionSecret,omitempty,omitzero"`
	DeletionPolicy   string       `json:"deletionPolicy,omitempty,omitzero"`
	BackupVerifier   any          `json:"backupVerifier,omitempty,omitzero" unsup:"verification"`
}

type ksRestoreSession struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Target          *invokerRef      `json:"target,omitempty,omitzero"`
		DataSource      *ksDataSource    `json:"dataSource,omitempty,omitzero"`
		Addon           *ksAddon         `json:"addon,omitempty,omitzero"`
		Hooks           any              `json:"hooks,omitempty,omitzero" unsup:"ksHooks"`
		RestoreTimeout  *metav1.Duration `json:"restoreTimeout,omitempty,omitzero"`
		Timeout         *metav1.Duration `json:"timeout,omitempty,omitzero"`
		RuntimeSettings runtimeSettings  `json:"runtimeSettings,omitempty,omitzero"`
		ManifestOptions any              `json:"manifestOptions,omitempty,omitzero" unsup:"manifestOptions"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type ksBackupSession struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Invoker   *invokerRef `json:"invoker,omitempty,omitzero"`
		Session   string      `json:"session,omitempty,omitzero"`
		RetryLeft int32       `json:"retryLeft,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type ksBackupVerificationSession struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Invoker        *invokerRef `json:"invoker,omitempty,omitzero"`
		BackupVerifier any         `json:"backupVerifier,omitempty,omitzero" unsup:"verifier"`
		Session        string      `json:"session,omitempty,omitzero"`
		Repository     string      `json:"repository,omitempty,omitzero"`
		Snapshot       string      `json:"snapshot,omitempty,omitzero"`
		RetryLeft      int32       `json:"retryLeft,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

// ---- KubeStash storage.kubestash.com/v1alpha1 ----

type ksBackupStorage struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Storage struct {
			Provider string        `json:"provider,omitempty,omitzero"`
			Local    *localBackend `json:"local,omitempty,omitzero"`
			S3       *ksS3         `json:"s3,omitempty,omitzero"`
			GCS      *ksGCS        `json:"gcs,omitempty,omitzero"`
			Azure    *ksAzure      `json:"azure,omitempty,omitzero"`
			Swift    any           `json:"swift,omitempty,omitzero" unsup:"backend"`
			B2       any           `json:"b2,omitempty,omitzero" unsup:"backend"`
			Rest     any           `json:"rest,omitempty,omitzero" unsup:"backend"`
		} `json:"storage"`
		UsagePolicy     *usagePolicy `json:"usagePolicy,omitempty,omitzero"`
		Default         bool         `json:"default,omitempty,omitzero"`
		DeletionPolicy  string       `json:"deletionPolicy,omitempty,omitzero"`
		RuntimeSettings any          `json:"runtimeSettings,omitempty,omitzero" unsup:"runtimeSettings"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type ksRepository struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		AppRef           *invokerRef  `json:"appRef,omitempty,omitzero"`
		StorageRef       *invokerRef  `json:"storageRef,omitempty,omitzero"`
		Path             string       `json:"path,omitempty,omitzero"`
		DeletionPolicy   string       `json:"deletionPolicy,omitempty,omitzero"`
		EncryptionSecret *ksObjectRef `json:"encryptionSecret,omitempty,omitzero"`
		Paused           bool         `json:"paused,omitempty,omitzero"`
	} `json:"spec"`
	Status any `json:"status,omitempty,omitzero"`
}

type ksRetentionPolicy struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		MaxRetentionPeriod  string       `json:"maxRetentionPeriod,omitempty,omitzero"`
		UsagePolicy         *usagePolicy `json:"usagePolicy,omitempty,omitzero"`
		SuccessfulSnapshots struct {
			Last    *int32 `json:"last,omitempty,omitzero"`
			Hourly  *int32 `json:"hourly,omitempty,omitzero"`
			Daily   *int32 `json:"daily,omitempty,omitzero"`
			Weekly  *int32 `json:"weekly,omitempty,omitzero"`
			Monthly *int32 `json:"monthly,omitempty,omitzero"`
			Yearly  *int32 `json:"yearly,omitempty,omitzero"`
		} `json:"successfulSnapshots,omitempty,omitzero"`
		FailedSnapshots struct {
			Last *int32 `json:"last,omitempty,omitzero"`
		} `json:"failedSnapshots,omitempty,omitzero"`
		Default bool `json:"default,omitempty,omitzero"`
	} `json:"spec"`
}

type localBackend struct {
	corev1.VolumeSource `json:",inline"`
	MountPath           string `json:"mountPath,omitempty,omitzero"`
	SubPath             string `json:"subPath,omitempty,omitzero"`
}

type stashS3 struct {
	Endpoint    string `json:"endpoint,omitempty,omitzero"`
	Bucket      string `json:"bucket,omitempty,omitzero"`
	Prefix      string `json:"prefix,omitempty,omitzero"`
	Region      string `json:"region,omitempty,omitzero"`
	InsecureTLS bool   `json:"insecureTLS,omitempty,omitzero"`
}

type stashGCS struct {
	Bucket         string `json:"bucket,omitempty,omitzero"`
	Prefix         string `json:"prefix,omitempty,omitzero"`
	MaxConnections int64  `json:"maxConnections,omitempty,omitzero"`
}

type stashAzure struct {
	Container      string `json:"container,omitempty,omitzero"`
	Prefix         string `json:"prefix,omitempty,omitzero"`
	MaxConnections int64  `json:"maxConnections,omitempty,omitzero"`
}

type backendRef struct {
	Name            string       `json:"name,omitempty,omitzero"`
	StorageRef      invokerRef   `json:"storageRef,omitempty,omitzero"`
	RetentionPolicy *ksObjectRef `json:"retentionPolicy,omitempty,omitzero"`
}

type ksAddonJobTemplate struct {
	Metadata partialObjectMeta `json:"metadata,omitempty,omitzero"`
	Spec     ksPodSpec         `json:"spec,omitempty,omitzero"`
}

type ksTargetVolumes struct {
	Volumes              []corev1.Volume      `json:"volumes,omitempty,omitzero" unsup:"targetVolumes"`
	VolumeMounts         []corev1.VolumeMount `json:"volumeMounts,omitempty,omitzero"`
	VolumeClaimTemplates []claimTemplate      `json:"volumeClaimTemplates,omitempty,omitzero"`
}

type ksAddonVolume struct {
	Name   string               `json:"name,omitempty,omitzero"`
	Source *corev1.VolumeSource `json:"source,omitempty,omitzero"`
}

type ksDataSource struct {
	Namespace        string       `json:"namespace,omitempty,omitzero"`
	Repository       string       `json:"repository,omitempty,omitzero"`
	Snapshot         string       `json:"snapshot,omitempty,omitzero"`
	PITR             any          `json:"pitr,omitempty,omitzero" unsup:"pitr"`
	Components       []string     `json:"components,omitempty,omitzero"`
	EncryptionSecret *ksObjectRef `json:"encryptionSecret,omitempty,omitzero"`
}

type ksS3 struct {
	Endpoint    string `json:"endpoint,omitempty,omitzero"`
	Bucket      string `json:"bucket,omitempty,omitzero"`
	Prefix      string `json:"prefix,omitempty,omitzero"`
	Region      string `json:"region,omitempty,omitzero"`
	SecretName  string `json:"secretName,omitempty,omitzero"`
	Secret      string `json:"secret,omitempty,omitzero"`
	InsecureTLS bool   `json:"insecureTLS,omitempty,omitzero"`
}

type ksGCS struct {
	Bucket         string `json:"bucket,omitempty,omitzero"`
	Prefix         string `json:"prefix,omitempty,omitzero"`
	MaxConnections int64  `json:"maxConnections,omitempty,omitzero"`
	SecretName     string `json:"secretName,omitempty,omitzero"`
	Secret         string `json:"secret,omitempty,omitzero"`
}

type ksAzure struct {
	StorageAccount string `json:"storageAccount,omitempty,omitzero"`
	Container      string `json:"container,omitempty,omitzero"`
	Prefix         string `json:"prefix,omitempty,omitzero"`
	MaxConnections int64  `json:"maxConnections,omitempty,omitzero"`
	SecretName     string `json:"secretName,omitempty,omitzero"`
	Secret         string `json:"secret,omitempty,omitzero"`
}

// ksJobTemplate is the scheduler's jobTemplate: KubeStash's trigger Job.
type ksJobTemplate struct {
	Parallelism             *int32  `json:"parallelism,omitempty,omitzero" unsup:"jobTemplate"`
	Completions             *int32  `json:"completions,omitempty,omitzero" unsup:"jobTemplate"`
	ActiveDeadlineSeconds   *int64  `json:"activeDeadlineSeconds,omitempty,omitzero" unsup:"jobTemplate"`
	BackoffLimit            *int32  `json:"backoffLimit,omitempty,omitzero" unsup:"jobTemplate"`
	Template                any     `json:"template,omitempty,omitzero" unsup:"jobTemplate"`
	TTLSecondsAfterFinished *int32  `json:"ttlSecondsAfterFinished,omitempty,omitzero" unsup:"jobTemplate"`
	CompletionMode          *string `json:"completionMode,omitempty,omitzero" unsup:"jobTemplate"`
	Suspend                 *bool   `json:"suspend,omitempty,omitzero" unsup:"jobTemplate"`
}
