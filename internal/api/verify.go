package api

// Labels of backup verification sessions: a Job (component verify-session) named as the
// seed names BackupVerificationSessions, <repository>-<session>-<unix time>; with a
// schedule, a CronJob (component verify-configuration) makes them.
const (
	// LabelVerification names the verification (its CronJob, or the one-off's name) on
	// its sessions.
	LabelVerification = Prefix + "verification"

	ComponentVerifySession       = "verify-session"
	ComponentVerifyConfiguration = "verify-configuration"

	// AnnotationCanceledBy is written on a session Job by `kubectl stash cancel`, before
	// it suspends the Job: the session records who stopped it.
	AnnotationCanceledBy = Prefix + "canceled-by"

	// LabelRetryOf names, on a retry session, the failed session it retries.
	LabelRetryOf = Prefix + "retry-of"

	// AnnotationVerifyStatus is the VerifyStatus (JSON) a verification pod writes on its Job.
	AnnotationVerifyStatus = Prefix + "verify-status"
)

// Conditions of a BackupVerificationSession, as the seed names them.
const (
	ConditionRestoreSucceeded                  = "RestoreSucceeded"
	ConditionBackupVerified                    = "BackupVerified"
	ConditionVerificationSessionHistoryCleaned = "VerificationSessionHistoryCleaned"
	ConditionBackupVerificationSkipped         = "BackupVerificationSkipped"
)

// VerifyConfig is a backup verification, normalised from flags or a manifest: restore a
// snapshot into scratch space, check every file against the snapshot, optionally run a
// command on the restored tree.
type VerifyConfig struct {
	SchemaVersion int    `json:"schemaVersion"`
	Name          string `json:"name"`
	// Invoker is the backup configuration whose snapshots are verified ("" with --repo).
	Invoker string `json:"invoker,omitempty"`
	// Session is the seed's spec.session: the name of the session (schedule) verified;
	// it is part of the sessions' names.
	Session    string `json:"session"`
	Repository string `json:"repository"`
	// Snapshot is an id or "latest".
	Snapshot string `json:"snapshot"`
	// Host narrows "latest" to one host; "" verifies the latest snapshot of each host.
	Host string `json:"host,omitempty"`
	// Paths narrows "latest" to these paths.
	Paths []string `json:"paths,omitempty"`
	// CheckData is the share of the repository's data packs read and verified besides the
	// restore ("10%"); "" reads none.
	CheckData string `json:"checkData,omitempty"`
	// Command runs in a second container against the restored tree (mounted read-only at
	// VerifyMountPath); a non-zero exit fails BackupVerified.
	Command      string `json:"command,omitempty"`
	CommandImage string `json:"commandImage,omitempty"`
	// Schedule (cron) makes a CronJob; "" a single session now.
	Schedule string `json:"schedule,omitempty"`
	// Retries is how many new sessions a failed one may start (the seed's retryLeft).
	Retries int `json:"retries,omitempty"`
	// HistoryLimit bounds the sessions kept (VerificationSessionHistoryCleaned).
	HistoryLimit int `json:"historyLimit,omitempty"`
	// ScratchSize sizes the scratch space (emptyDir sizeLimit, or the temporary PVC);
	// "" sizes it from the snapshot.
	ScratchSize string `json:"scratchSize,omitempty"`
	// ScratchPVC restores into a temporary PVC of ScratchSize instead of an emptyDir.
	ScratchPVC   bool    `json:"scratchPVC,omitempty"`
	StorageClass string  `json:"storageClass,omitempty"`
	Timeout      string  `json:"timeout,omitempty"`
	Image        string  `json:"image"`
	Runtime      Runtime `json:"runtime,omitempty"`
}

func (s *VerifyConfig) schema() int { return s.SchemaVersion }

// VerifyMountPath is where a verification pod restores, and where the user's command sees
// the restored tree.
const VerifyMountPath = "/stash-verify"

// Condition is one of the seed's status.conditions.
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"` // "True" or "False"
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
}

// VerifyStatus is the value of AnnotationVerifyStatus on a verification session Job, in
// the seed's status shape plus what was verified.
type VerifyStatus struct {
	SchemaVersion int         `json:"schemaVersion"`
	Phase         Phase       `json:"phase"`
	Duration      string      `json:"duration,omitempty"`
	Retried       bool        `json:"retried,omitempty"`
	RetryLeft     int         `json:"retryLeft"`
	Conditions    []Condition `json:"conditions,omitempty"`
	// Snapshots are the snapshots verified (short ids), with what was checked.
	Snapshots []VerifiedSnapshot `json:"snapshots,omitempty"`
	Progress  *Progress          `json:"progress,omitempty"`
	Error     string             `json:"error,omitempty"`
	StartTime string             `json:"startTime,omitempty"`
}

func (s *VerifyStatus) schema() int { return s.SchemaVersion }

// VerifiedSnapshot says what a verification checked of one snapshot.
type VerifiedSnapshot struct {
	Snapshot string `json:"snapshot"`
	Host     string `json:"host"`
	Path     string `json:"path"`
	Files    int64  `json:"files"`
	Size     string `json:"size"`
	// Problems are files whose content or metadata did not match the snapshot.
	Problems []string `json:"problems,omitempty"`
}
