// Package api is the contract between the plugin and the job image: the label and
// annotation keys both sides use, the environment the plugin gives a job pod, and the JSON
// shapes of the status a job writes onto its Job. It imports the standard library only, so
// both sides (and the terminal UI) can share it.
package api

// Prefix marks every label and annotation this project owns. It is defined once, here.
const Prefix = "kubectl-stash.io/"

// SchemaVersion is carried in every status value a job writes, so a newer plugin can read an
// older job's status (and refuse a newer one with a clear message).
const SchemaVersion = 1

// Labels and annotations.
const (
	// LabelManagedBy is the well-known managed-by label; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-stash"

	// AnnotationProbe is written by `stash-job probe`: proof that a job pod reached the API
	// server with its own ServiceAccount and annotated its own Job.
	AnnotationProbe = Prefix + "probe"
)

// Environment variables the plugin sets on job pods (through the downward API where the
// value is the pod's own).
const (
	// EnvNamespace is the namespace of the pod (metadata.namespace).
	EnvNamespace = "STASH_NAMESPACE"
	// EnvJobName is the Job owning the pod (metadata.labels['batch.kubernetes.io/job-name']).
	EnvJobName = "STASH_JOB_NAME"
	// EnvPodName is the pod's own name (metadata.name).
	EnvPodName = "STASH_POD_NAME"
	// EnvNodeName is the node the pod runs on (spec.nodeName).
	EnvNodeName = "STASH_NODE_NAME"
)

// JobNameLabel is the label the Job controller puts on every pod of a Job.
const JobNameLabel = "batch.kubernetes.io/job-name"

// Probe is the value of AnnotationProbe.
type Probe struct {
	SchemaVersion int    `json:"schemaVersion"`
	Version       string `json:"version"`
	GitCommit     string `json:"gitCommit"`
	Pod           string `json:"pod,omitempty"`
	Node          string `json:"node,omitempty"`
	// Time is when the job wrote the annotation, RFC 3339 in UTC.
	Time string `json:"time"`
}
