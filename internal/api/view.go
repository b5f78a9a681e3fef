package api

import "time"

// SessionKind says what a session does.
type SessionKind string

const (
	KindBackup  SessionKind = "backup"
	KindRestore SessionKind = "restore"
	KindVerify  SessionKind = "verify"
)

// SessionView is what the live views (kubectl stash watch, trigger --watch) show of one
// session: the session Job's status joined with its hosts' statuses. The plugin's session
// feed builds it from Kubernetes objects; the terminal UI renders it without knowing them.
type SessionView struct {
	Kind      SessionKind `json:"kind"`
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	// Config is the configuration (CronJob) a backup session belongs to; for a restore
	// session, its target (statefulset/web).
	Config  string        `json:"config"`
	Created time.Time     `json:"created"`
	Status  SessionStatus `json:"status"`
	// Phase is the session's phase as the plugin reads it (Pending before the session pod
	// writes, Failed when its Job failed without a final status).
	Phase Phase `json:"phase"`
	// Hosts are ordered host-0, host-1, … host-10, then by name.
	Hosts []HostStatus `json:"hosts"`
}

// Done reports how many hosts ended, and of how many.
func (v SessionView) Done() (done, total int) {
	for _, h := range v.Hosts {
		if h.Phase.Final() {
			done++
		}
	}
	total = v.Status.TotalHosts
	if total < len(v.Hosts) {
		total = len(v.Hosts)
	}
	return done, total
}

// SessionFeed is a stream of complete pictures: each value holds every session the feed
// watches, newest first, as of one moment. A consumer keeps the latest and redraws.
type SessionFeed <-chan []SessionView
