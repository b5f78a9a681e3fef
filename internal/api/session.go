package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Labels the plugin and the job image put on the objects of a backup configuration.
const (
	// LabelBackupConfiguration names the configuration (CronJob) on the CronJob itself,
	// its session Jobs and their host Jobs.
	LabelBackupConfiguration = Prefix + "backup-configuration"
	// LabelBackupSession names the session Job on each of its host Jobs.
	LabelBackupSession = Prefix + "backup-session"
	// LabelHost is the host name (host-0, a node name) on a host Job.
	LabelHost = Prefix + "host"
	// LabelComponent says what a Job is: ComponentSession or ComponentHost.
	LabelComponent = Prefix + "component"
	// LabelRepository marks a repository Secret; its value is the Secret's name.
	LabelRepository = Prefix + "repository"

	ComponentSession = "backup-session"
	ComponentHost    = "backup-host"
)

// Annotations.
const (
	// AnnotationConfig carries the BackupConfig (JSON) on the CronJob and on its pod
	// template, from where the session pod reads it through the downward API.
	AnnotationConfig = Prefix + "config"
	// AnnotationHostSpec carries the HostSpec (JSON) on a host Job's pod template.
	AnnotationHostSpec = Prefix + "host-spec"
	// AnnotationSessionStatus is the SessionStatus (JSON) a session pod writes on its Job.
	AnnotationSessionStatus = Prefix + "session-status"
	// AnnotationHostStatus is the HostStatus (JSON) a host pod writes on its Job.
	AnnotationHostStatus = Prefix + "host-status"
	// AnnotationTriggeredBy is set on sessions created by `kubectl stash trigger`.
	AnnotationTriggeredBy = Prefix + "triggered-by"
)

// Environment of job pods beyond Env*: the plugin fills these.
const (
	// EnvConfig is the BackupConfig JSON of a session pod (downward API of AnnotationConfig).
	EnvConfig = "STASH_CONFIG"
	// EnvHostSpec is the HostSpec JSON of a host pod (downward API of AnnotationHostSpec).
	EnvHostSpec = "STASH_HOST_SPEC"
)

// Keys of a repository Secret. Every key of the Secret becomes an environment variable of
// the host pods (envFrom), so backend credentials are stored under the names their SDKs
// read (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS…).
const (
	SecretKeyRepository = "STASH_REPOSITORY"
	SecretKeyPassword   = "STASH_PASSWORD"
)

// RepositoryMountPath is where a host pod mounts the PVC of a pvc:// repository.
const RepositoryMountPath = "/stash-repository"

// PVCRepository parses a pvc://CLAIM/sub/dir repository URL, the plugin's form for a
// repository on a PersistentVolumeClaim. It returns the claim and the file:// URL the
// repository has inside a pod that mounts the claim at RepositoryMountPath. ok is false
// for any other scheme.
func PVCRepository(rawURL string) (claim, fileURL string, ok bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "pvc" {
		return "", "", false, nil
	}
	if u.Host == "" {
		return "", "", true, fmt.Errorf("repository URL %q: want pvc://CLAIM/optional/sub/dir", rawURL)
	}
	return u.Host, "file://" + path.Join(RepositoryMountPath, path.Clean("/"+u.Path)), true, nil
}

// Phase is the phase of a session or of one host, as the seeds name them.
type Phase string

const (
	PhasePending   Phase = "Pending"
	PhaseRunning   Phase = "Running"
	PhaseSucceeded Phase = "Succeeded"
	PhaseFailed    Phase = "Failed"
	PhaseSkipped   Phase = "Skipped"
)

// Final reports whether no further change of phase follows.
func (p Phase) Final() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseSkipped
}

// Target is the workload or volume a configuration backs up.
type Target struct {
	// Kind is lower case: deployment, statefulset, daemonset, replicaset,
	// replicationcontroller or pvc.
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (t Target) String() string { return t.Kind + "/" + t.Name }

// Retention is the seeds' retention policy, applied per host and directory after a
// successful backup. Zero fields keep nothing by that rule; all zero keeps everything.
type Retention struct {
	KeepLast    int `json:"keepLast,omitempty"`
	KeepHourly  int `json:"keepHourly,omitempty"`
	KeepDaily   int `json:"keepDaily,omitempty"`
	KeepWeekly  int `json:"keepWeekly,omitempty"`
	KeepMonthly int `json:"keepMonthly,omitempty"`
	KeepYearly  int `json:"keepYearly,omitempty"`
	// KeepTags keeps every snapshot carrying one of these tags (a tag list "a,b" needs both).
	KeepTags []string `json:"keepTags,omitempty"`
}

// Empty reports whether the policy keeps every snapshot.
func (r Retention) Empty() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 && r.KeepMonthly == 0 && r.KeepYearly == 0 && len(r.KeepTags) == 0
}

// Runtime is how host pods run. The Kubernetes-shaped parts are kept as raw JSON of the
// core/v1 types, so this package stays free of Kubernetes imports.
type Runtime struct {
	// Resources is a core/v1 ResourceRequirements.
	Resources json.RawMessage `json:"resources,omitempty"`
	// SecurityContext is a core/v1 SecurityContext that replaces the default one.
	SecurityContext json.RawMessage `json:"securityContext,omitempty"`
	// PodSecurityContext is a core/v1 PodSecurityContext.
	PodSecurityContext json.RawMessage `json:"podSecurityContext,omitempty"`
	// Tolerations is a []core/v1.Toleration.
	Tolerations    json.RawMessage   `json:"tolerations,omitempty"`
	NodeSelector   map[string]string `json:"nodeSelector,omitempty"`
	ServiceAccount string            `json:"serviceAccountName,omitempty"`
	// Nice is the CPU niceness of the backup process (-20..19); nil leaves it.
	Nice *int `json:"nice,omitempty"`
	// IONiceClass is the I/O scheduling class (1 realtime, 2 best-effort, 3 idle); 0 leaves it.
	IONiceClass int `json:"ioniceClass,omitempty"`
	// IONiceData is the priority within the class (0 highest .. 7 lowest).
	IONiceData *int `json:"ioniceData,omitempty"`
	// CacheSize is the size (a Kubernetes quantity) of the host pod's metadata cache
	// volume; empty means DefaultCacheSize.
	CacheSize string `json:"cacheSize,omitempty"`
	// NoCache runs host pods without a metadata cache.
	NoCache bool `json:"noCache,omitempty"`
	// TempDirMedium is the medium ("" for the node's disk, or Memory) of the host pods'
	// /tmp and cache volumes: the seeds' tempDir.medium.
	TempDirMedium string `json:"tempDirMedium,omitempty"`

	// Env is a []core/v1.EnvVar added to the host pods' container.
	Env json.RawMessage `json:"env,omitempty"`
	// EnvFrom is a []core/v1.EnvFromSource added to the host pods' container, after the
	// repository Secret (a key in both takes this one's value).
	EnvFrom json.RawMessage `json:"envFrom,omitempty"`
	// Affinity is a core/v1.Affinity of the session and host pods; a host pinned to the node
	// of its volume keeps that requirement too.
	Affinity json.RawMessage `json:"affinity,omitempty"`
	// ImagePullSecrets is a []core/v1.LocalObjectReference of the session and host pods.
	ImagePullSecrets json.RawMessage `json:"imagePullSecrets,omitempty"`
	// TopologySpreadConstraints is a []core/v1.TopologySpreadConstraint of the session and
	// host pods.
	TopologySpreadConstraints json.RawMessage `json:"topologySpreadConstraints,omitempty"`
	PriorityClassName         string          `json:"priorityClassName,omitempty"`
	SchedulerName             string          `json:"schedulerName,omitempty"`
	RuntimeClassName          string          `json:"runtimeClassName,omitempty"`
	EnableServiceLinks        *bool           `json:"enableServiceLinks,omitempty"`
	// ServiceAccountAnnotations annotate the ServiceAccount the plugin creates (not one
	// ServiceAccount names): an IAM role for the object store, for instance.
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
}

// DefaultCacheSize is the size of a host pod's metadata cache volume.
const DefaultCacheSize = "256Mi"

// BackupConfig is a backup configuration, normalised from flags or a manifest. It travels
// with the CronJob (AnnotationConfig), so every session runs what its configuration said
// when the session was created.
type BackupConfig struct {
	SchemaVersion int    `json:"schemaVersion"`
	Name          string `json:"name"`
	Target        Target `json:"target"`
	// Repository is the name of the repository Secret, in the configuration's namespace.
	Repository string   `json:"repository"`
	Paths      []string `json:"paths"`
	Excludes   []string `json:"excludes,omitempty"`
	// MountPath is where a pvc target is mounted in its host pod; its paths lie below it.
	MountPath string `json:"mountPath,omitempty"`
	// Schedule is the cron expression; empty: the configuration runs only when triggered.
	Schedule     string    `json:"schedule,omitempty"`
	Retention    Retention `json:"retention,omitempty"`
	HistoryLimit int       `json:"historyLimit,omitempty"`
	// Timeout bounds a session (Go duration); empty: no bound.
	Timeout string  `json:"timeout,omitempty"`
	Image   string  `json:"image"`
	Runtime Runtime `json:"runtime,omitempty"`
	// Paused suspends the schedule (the CronJob's suspend); triggered sessions still run.
	Paused bool `json:"paused,omitempty"`
	// Prune runs a prune of the repository after each session whose hosts all succeeded
	// (after their retention policy), in a Job of its own.
	Prune bool `json:"prune,omitempty"`
	// Alias names the hosts as Stash does with target.alias: <alias> instead of host-0,
	// <alias>-<ordinal> for a StatefulSet, <alias>-<node> for a DaemonSet.
	Alias string `json:"alias,omitempty"`
	// VolumeMounts are the volumes of the target (by name) mounted where the host pods
	// back up (the seeds' target.volumeMounts); empty: the volumes the workload's
	// containers mount at or above each path.
	VolumeMounts []VolumeMount `json:"volumeMounts,omitempty"`
	// Session is the KubeStash session (sessions[].name) this configuration was made
	// from, so that it can be written back; empty from flags and Stash manifests.
	Session string `json:"session,omitempty"`
	// Dump makes the target a database: its host dumps it through the exec API instead
	// of reading paths (docs/databases.md).
	Dump *Dump `json:"dump,omitempty"`
	// Hooks run in the target's pods around each host's backup (docs/hooks.md).
	Hooks *Hooks `json:"hooks,omitempty"`
	// Members make the configuration a batch (the seeds' BackupBatch): each member is
	// backed up in the same session, into the same repository, with the same schedule and
	// retention; Target and the fields beside it are then unused (docs/batch.md).
	Members []Member `json:"members,omitempty"`
	// ExecutionOrder of the members: Parallel (default) or Sequential.
	ExecutionOrder string `json:"executionOrder,omitempty"`
	// BatchMember marks the configuration MemberConfigs made for one member of a batch.
	BatchMember bool `json:"-"`
}

// HostSpec is what one host pod backs up.
type HostSpec struct {
	SchemaVersion int    `json:"schemaVersion"`
	Config        string `json:"config"`
	Session       string `json:"session"`
	Hostname      string `json:"hostname"`
	Target        Target `json:"target"`
	// Paths are backed up one snapshot each, as the seed says.
	Paths       []string  `json:"paths"`
	Excludes    []string  `json:"excludes,omitempty"`
	Retention   Retention `json:"retention,omitempty"`
	Nice        *int      `json:"nice,omitempty"`
	IONiceClass int       `json:"ioniceClass,omitempty"`
	IONiceData  *int      `json:"ioniceData,omitempty"`
	// Pod is the target's pod of this host: hooks and dumps exec into it.
	Pod string `json:"pod,omitempty"`
	// Dump is set for a database target: the host dumps instead of reading Paths.
	Dump  *Dump  `json:"dump,omitempty"`
	Hooks *Hooks `json:"hooks,omitempty"`
}

// FileStats are a snapshot's file counts, as in the BackupSession seed.
type FileStats struct {
	TotalFiles      int64 `json:"totalFiles"`
	NewFiles        int64 `json:"newFiles"`
	ModifiedFiles   int64 `json:"modifiedFiles"`
	UnmodifiedFiles int64 `json:"unmodifiedFiles"`
}

// SnapshotStats describe one snapshot of a host, as in the BackupSession seed (sizes and
// times are formatted strings there: "30 B", "0m0s").
type SnapshotStats struct {
	Name           string    `json:"name"`
	Directory      string    `json:"directory"`
	Size           string    `json:"size"`
	Uploaded       string    `json:"uploaded"`
	ProcessingTime string    `json:"processingTime"`
	FileStats      FileStats `json:"fileStats"`
}

// Progress is a host's live progress.
type Progress struct {
	Directory  string  `json:"directory,omitempty"`
	FilesDone  int64   `json:"filesDone"`
	FilesTotal int64   `json:"filesTotal"`
	BytesDone  int64   `json:"bytesDone"`
	BytesTotal int64   `json:"bytesTotal"`
	BytesPerS  float64 `json:"bytesPerSecond"`
	// Scanning is true while the totals are still growing.
	Scanning bool `json:"scanning,omitempty"`
}

// HostStatus is the value of AnnotationHostStatus on a host Job.
type HostStatus struct {
	SchemaVersion int             `json:"schemaVersion"`
	Hostname      string          `json:"hostname"`
	Phase         Phase           `json:"phase"`
	Duration      string          `json:"duration,omitempty"`
	Error         string          `json:"error,omitempty"`
	Snapshots     []SnapshotStats `json:"snapshots,omitempty"`
	Progress      *Progress       `json:"progress,omitempty"`
	// Retention says what the retention policy removed, when it ran.
	Retention string `json:"retention,omitempty"`
	// Message says why a host ended as it did when that is not an error (a restore host
	// no rule matches).
	Message string `json:"message,omitempty"`
	// Restored lists what a restore host restored, one entry per snapshot and path.
	Restored []RestoredStats `json:"restored,omitempty"`
	// Hooks are the outcomes of the host's hooks, in the order they ran.
	Hooks []HookResult `json:"hooks,omitempty"`
	// Target is the member (kind/name) of a batch this host belongs to.
	Target string `json:"target,omitempty"`
	// Job is the host Job's name, as the session reads it (not written in the status).
	Job        string `json:"-"`
	StartTime  string `json:"startTime,omitempty"`
	UpdateTime string `json:"updateTime,omitempty"`
}

// RestoredStats describe one snapshot path a restore host restored.
type RestoredStats struct {
	Snapshot   string `json:"snapshot"`
	SourceHost string `json:"sourceHost"`
	Path       string `json:"path"`
	Files      int64  `json:"files"`
	Size       string `json:"size"`
	// Skipped were already identical, Kept differed and were left by the overwrite mode,
	// Deleted were not in the snapshot (--delete).
	Skipped int64 `json:"skipped,omitempty"`
	Kept    int64 `json:"kept,omitempty"`
	Deleted int64 `json:"deleted,omitempty"`
}

// HostCounts count the hosts of a session by phase.
type HostCounts struct {
	Pending   int `json:"pending,omitempty"`
	Running   int `json:"running,omitempty"`
	Succeeded int `json:"succeeded,omitempty"`
	Failed    int `json:"failed,omitempty"`
	Skipped   int `json:"skipped,omitempty"`
}

// SessionStatus is the value of AnnotationSessionStatus on a session Job. It holds the
// session's summary only, so its size does not grow with the number of hosts; each host's
// stats live on its own host Job, and `kubectl stash get backupsession` joins them.
type SessionStatus struct {
	SchemaVersion   int        `json:"schemaVersion"`
	Phase           Phase      `json:"phase"`
	TotalHosts      int        `json:"totalHosts"`
	SessionDuration string     `json:"sessionDuration,omitempty"`
	Hosts           HostCounts `json:"hosts"`
	// Error is a session-wide failure (target not found, deadline exceeded) or why the
	// session was skipped.
	Error          string `json:"error,omitempty"`
	StartTime      string `json:"startTime,omitempty"`
	CompletionTime string `json:"completionTime,omitempty"`
	// Conditions are the seed's session conditions this project records:
	// RetentionPolicyApplied, RepositoryPruned with --prune, and the hooks' conditions.
	Conditions []Condition `json:"conditions,omitempty"`
	// Members are a batch session's sections, one per member, in the batch's order.
	Members []MemberStatus `json:"members,omitempty"`
}

// Backup session condition types.
const (
	ConditionRetentionPolicyApplied = "RetentionPolicyApplied"
	ConditionRepositoryPruned       = "RepositoryPruned"
)

// Decode unmarshals an annotation value and refuses a schema this program does not know.
func Decode(key, value string, v interface{ schema() int }) error {
	if err := json.Unmarshal([]byte(value), v); err != nil {
		return fmt.Errorf("annotation %s: %w", key, err)
	}
	if s := v.schema(); s > SchemaVersion {
		return fmt.Errorf("annotation %s has schema version %d, newer than this program's %d: upgrade kubectl-stash", key, s, SchemaVersion)
	}
	return nil
}

func (s *SessionStatus) schema() int { return s.SchemaVersion }
func (s *HostStatus) schema() int    { return s.SchemaVersion }
func (s *BackupConfig) schema() int  { return s.SchemaVersion }
func (s *HostSpec) schema() int      { return s.SchemaVersion }

// FormatBytes formats a size the way the seeds print it: "30 B", "1.500 KiB", "12.345 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= unit
		if f < unit || u == "PiB" {
			return fmt.Sprintf("%.3f %s", f, u)
		}
	}
	panic("unreachable")
}

// FormatProcessingTime formats a duration as the seed's processingTime: "0m0s", "3m25s",
// "2h3m25s".
func FormatProcessingTime(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%dh%dm%ds", s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("%dm%ds", s/60, s%60)
}

// HostJobName builds the name of a host Job: <session>-<host>, shortened with a hash when
// it would exceed the 63 characters a label value (job-name) allows.
func HostJobName(session, host string) string {
	n := session + "-" + strings.ToLower(host)
	if len(n) <= 63 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return strings.TrimRight(n[:63-9], "-.") + "-" + hex.EncodeToString(sum[:4])
}

// MaxErrorLen bounds an error message in a status annotation: a host that cannot read ten
// thousand files must not push its Job past the API server's object size limit.
const MaxErrorLen = 4096

// TruncateError shortens msg to MaxErrorLen bytes, saying how much was cut.
func TruncateError(msg string) string {
	if len(msg) <= MaxErrorLen {
		return msg
	}
	cut := MaxErrorLen - 40
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Sprintf("%s … (%d more bytes)", msg[:cut], len(msg)-cut)
}
