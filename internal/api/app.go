package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Application-aware backups: batches of several targets, database dumps through the exec
// API, and hooks. docs/batch.md, docs/databases.md and docs/hooks.md describe them for
// users.

// Member is one target of a batch (the seeds' BackupBatch members): a workload or volume
// whose paths are backed up, or a database that is dumped.
type Member struct {
	Target       Target        `json:"target"`
	Paths        []string      `json:"paths,omitempty"`
	Excludes     []string      `json:"excludes,omitempty"`
	MountPath    string        `json:"mountPath,omitempty"`
	VolumeMounts []VolumeMount `json:"volumeMounts,omitempty"`
	Alias        string        `json:"alias,omitempty"`
	Dump         *Dump         `json:"dump,omitempty"`
	Hooks        *Hooks        `json:"hooks,omitempty"`
}

// Execution orders of a batch's members.
const (
	OrderParallel   = "Parallel"
	OrderSequential = "Sequential"
)

// IsBatch reports whether the configuration is a batch of members.
func (c BackupConfig) IsBatch() bool { return len(c.Members) > 0 }

// MemberConfigs returns one configuration per member, each with the batch's repository,
// schedule, retention, runtime and name, and the member's target, paths, dump and hooks;
// a configuration that is not a batch is its own only member.
func (c BackupConfig) MemberConfigs() []BackupConfig {
	if !c.IsBatch() {
		return []BackupConfig{c}
	}
	out := make([]BackupConfig, 0, len(c.Members))
	for _, m := range c.Members {
		mc := c
		mc.Members, mc.ExecutionOrder, mc.BatchMember = nil, "", true
		mc.Target, mc.Paths, mc.Excludes, mc.MountPath = m.Target, m.Paths, m.Excludes, m.MountPath
		mc.VolumeMounts, mc.Alias, mc.Dump, mc.Hooks = m.VolumeMounts, m.Alias, m.Dump, m.Hooks
		out = append(out, mc)
	}
	return out
}

// Targets lists the configuration's targets: its members' or its own.
func (c BackupConfig) Targets() []Target {
	var out []Target
	for _, m := range c.MemberConfigs() {
		out = append(out, m.Target)
	}
	return out
}

// TargetString shows the configuration's target: kind/name, or a batch's members.
func (c BackupConfig) TargetString() string {
	if !c.IsBatch() {
		return c.Target.String()
	}
	var parts []string
	for _, t := range c.Targets() {
		parts = append(parts, t.String())
	}
	return "batch(" + strings.Join(parts, ",") + ")"
}

// MemberKey names a member in its host Jobs' names: kind-name, as a DNS label part.
func MemberKey(t Target) string { return t.Kind + "-" + t.Name }

// Dump says how a database target is backed up and restored: a command run inside the
// database's own pod through the exec API, whose standard output is the snapshot's one
// file, and a command that reads that file on its standard input. The commands run under
// /bin/sh -c in the container, with the container's own environment (its passwords from
// its own Secrets).
type Dump struct {
	// Preset is a built-in pair of commands: postgres, mysql, mongodb or redis; "" when
	// both commands are given.
	Preset string `json:"preset,omitempty"`
	// Container is the database's container; empty: the pod's first container.
	Container string `json:"container,omitempty"`
	// DumpCommand and RestoreCommand replace the preset's.
	DumpCommand    string `json:"dumpCommand,omitempty"`
	RestoreCommand string `json:"restoreCommand,omitempty"`
	// FileName is the file's name in the snapshot (its path is /<name>); empty: the
	// preset's.
	FileName string `json:"fileName,omitempty"`
}

// DumpPreset is a built-in dump and restore of one database.
type DumpPreset struct {
	Name, Dump, Restore, FileName string
	// Images are substrings of a container image that say this database runs there.
	Images []string
}

// DumpPresets are the built-in databases. Each command reads the credentials the
// official images take from the container's environment, so the pod's own Secrets serve.
var DumpPresets = []DumpPreset{
	{
		Name: "postgres",
		// every database, roles and all, over TCP so that a wrong password fails as it
		// would for a client; --clean drops each database before it is created again, so
		// restoring over a database that has it replaces it rather than adding rows twice;
		// psql goes on past the statements a live server refuses (the role it is logged in
		// as cannot be dropped), as pg_dumpall's output expects
		Dump:     `PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}" exec pg_dumpall --clean --if-exists -h 127.0.0.1 -U "${POSTGRES_USER:-postgres}"`,
		Restore:  `PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}" exec psql -q -h 127.0.0.1 -U "${POSTGRES_USER:-postgres}" -d postgres`,
		FileName: "dumpfile.sql",
		Images:   []string{"postgres", "postgis", "timescale"},
	},
	{
		Name:     "mysql",
		Dump:     `exec "$(command -v mysqldump || command -v mariadb-dump)" --all-databases --single-transaction --routines --events -h 127.0.0.1 -u root -p"${MYSQL_ROOT_PASSWORD:-$MARIADB_ROOT_PASSWORD}"`,
		Restore:  `exec "$(command -v mysql || command -v mariadb)" -h 127.0.0.1 -u root -p"${MYSQL_ROOT_PASSWORD:-$MARIADB_ROOT_PASSWORD}"`,
		FileName: "dumpfile.sql",
		Images:   []string{"mysql", "mariadb", "percona"},
	},
	{
		Name:     "mongodb",
		Dump:     `exec mongodump --quiet --archive --host 127.0.0.1 ${MONGO_INITDB_ROOT_USERNAME:+--username "$MONGO_INITDB_ROOT_USERNAME" --password "$MONGO_INITDB_ROOT_PASSWORD" --authenticationDatabase admin}`,
		Restore:  `exec mongorestore --quiet --archive --drop --host 127.0.0.1 ${MONGO_INITDB_ROOT_USERNAME:+--username "$MONGO_INITDB_ROOT_USERNAME" --password "$MONGO_INITDB_ROOT_PASSWORD" --authenticationDatabase admin}`,
		FileName: "dumpfile.archive",
		Images:   []string{"mongo"},
	},
	{
		Name: "redis",
		// a fresh RDB: BGSAVE, wait until LASTSAVE moves, then the file itself
		Dump: `cli() { redis-cli ${REDIS_PASSWORD:+-a "$REDIS_PASSWORD" --no-auth-warning} "$@"; }; ` +
			`before=$(cli LASTSAVE) || exit 1; cli BGSAVE >/dev/null || exit 1; ` +
			`while [ "$(cli LASTSAVE)" = "$before" ]; do sleep 1; done; ` +
			`exec cat "$(cli CONFIG GET dir | tail -n 1)/$(cli CONFIG GET dbfilename | tail -n 1)"`,
		// the server loads an RDB only when it starts: the file is put in place and the
		// server shut down without saving, so its container restarts with the data
		Restore: `cli() { redis-cli ${REDIS_PASSWORD:+-a "$REDIS_PASSWORD" --no-auth-warning} "$@"; }; ` +
			`f="$(cli CONFIG GET dir | tail -n 1)/$(cli CONFIG GET dbfilename | tail -n 1)"; ` +
			`cat > "$f.restore" && cli CONFIG SET appendonly no >/dev/null && mv "$f.restore" "$f" && { cli SHUTDOWN NOSAVE || true; }`,
		FileName: "dump.rdb",
		Images:   []string{"redis", "valkey", "keydb"},
	},
}

// PresetNames lists the presets, for messages.
func PresetNames() string {
	var n []string
	for _, p := range DumpPresets {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

// FindPreset returns the preset called name (mariadb is mysql's, mongo mongodb's).
func FindPreset(name string) (DumpPreset, bool) {
	switch name {
	case "mariadb":
		name = "mysql"
	case "mongo":
		name = "mongodb"
	case "postgresql":
		name = "postgres"
	}
	for _, p := range DumpPresets {
		if p.Name == name {
			return p, true
		}
	}
	return DumpPreset{}, false
}

// PresetForImage returns the preset whose database an image runs, by its name.
func PresetForImage(image string) (DumpPreset, bool) {
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	for _, p := range DumpPresets {
		for _, s := range p.Images {
			if strings.Contains(name, s) {
				return p, true
			}
		}
	}
	return DumpPreset{}, false
}

// Resolved returns the dump with the preset's commands and file name filled in where it
// does not give its own.
func (d Dump) Resolved() (Dump, error) {
	if d.Preset != "" {
		p, ok := FindPreset(d.Preset)
		if !ok {
			return d, fmt.Errorf("dump preset %q is not known: want one of %s, or give --dump-command and --restore-command", d.Preset, PresetNames())
		}
		d.Preset = p.Name
		if d.DumpCommand == "" {
			d.DumpCommand = p.Dump
		}
		if d.RestoreCommand == "" {
			d.RestoreCommand = p.Restore
		}
		if d.FileName == "" {
			d.FileName = p.FileName
		}
	}
	if d.FileName == "" {
		d.FileName = "dumpfile"
	}
	if d.DumpCommand == "" {
		return d, fmt.Errorf("the dump has no command: give a preset (%s) or --dump-command", PresetNames())
	}
	if strings.ContainsAny(d.FileName, "/\x00") || d.FileName == "." || d.FileName == ".." {
		return d, fmt.Errorf("dump file name %q: want a plain file name", d.FileName)
	}
	return d, nil
}

// Override replaces the parts of d that o gives: its commands, container and file name.
func (d *Dump) Override(o Dump) {
	if o.DumpCommand != "" {
		d.DumpCommand = o.DumpCommand
	}
	if o.RestoreCommand != "" {
		d.RestoreCommand = o.RestoreCommand
	}
	if o.Container != "" {
		d.Container = o.Container
	}
	if o.FileName != "" {
		d.FileName = o.FileName
	}
}

// Path is where the dump lies in its snapshot.
func (d Dump) Path() string { return "/" + d.FileName }

// Hooks run around a host's backup or restore (the seeds' hooks): pre hooks before it,
// in order, any failure failing the host without the backup; post hooks after it, in
// order, by their policy.
type Hooks struct {
	PreBackup   []Hook `json:"preBackup,omitempty"`
	PostBackup  []Hook `json:"postBackup,omitempty"`
	PreRestore  []Hook `json:"preRestore,omitempty"`
	PostRestore []Hook `json:"postRestore,omitempty"`
}

// Empty reports whether no hook is set.
func (h *Hooks) Empty() bool {
	return h == nil || len(h.PreBackup)+len(h.PostBackup)+len(h.PreRestore)+len(h.PostRestore) == 0
}

// Hook is one action: a command run in a container of the host's pod through the exec
// API, or an HTTP request.
type Hook struct {
	Name string `json:"name,omitempty"`
	// Exec is the command (argv; a single string runs under /bin/sh -c when it comes from
	// a flag or an annotation).
	Exec []string `json:"exec,omitempty"`
	// Container runs Exec; empty: the pod's first container.
	Container string    `json:"container,omitempty"`
	HTTP      *HTTPHook `json:"http,omitempty"`
	// Policy says when a post hook runs: Always (the default), OnSuccess or OnFailure.
	Policy string `json:"executionPolicy,omitempty"`
	// Timeout bounds the hook (Go duration); empty: DefaultHookTimeout.
	Timeout string `json:"timeout,omitempty"`
}

// HTTPHook is a request (the seeds' httpGet / httpPost). Host empty: the pod's IP.
type HTTPHook struct {
	Method  string            `json:"method"`
	Scheme  string            `json:"scheme,omitempty"`
	Host    string            `json:"host,omitempty"`
	Port    int               `json:"port"`
	Path    string            `json:"path,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Hook execution policies (the seeds' executionPolicy).
const (
	PolicyAlways    = "Always"
	PolicyOnSuccess = "OnSuccess"
	PolicyOnFailure = "OnFailure"
)

// DefaultHookTimeout bounds a hook that names no timeout.
const DefaultHookTimeout = 30 * time.Second

// Hook phases, as the seeds name them.
const (
	HookPreBackup   = "preBackup"
	HookPostBackup  = "postBackup"
	HookPreRestore  = "preRestore"
	HookPostRestore = "postRestore"
)

// Environment a post hook sees (exec: in its command's environment; HTTP: as headers
// X-Stash-Phase and X-Stash-Error).
const (
	HookEnvPhase   = "STASH_BACKUP_PHASE"  // Succeeded or Failed
	HookEnvError   = "STASH_BACKUP_ERROR"  // the host's error, when Failed
	HookEnvHost    = "STASH_HOST"          // the host's name
	HookEnvSession = "STASH_SESSION"       // the session's name
	HookEnvTarget  = "STASH_TARGET"        // kind/name
	HookEnvRestore = "STASH_RESTORE_PHASE" // the restore's phase, for postRestore
)

// Pod annotations that add hooks to a pod, for app owners who do not write the backup
// configuration (like Velero's): the command is a JSON array of strings or a shell
// command line.
const (
	AnnotationPreBackupCommand  = Prefix + "pre-backup-command"
	AnnotationPostBackupCommand = Prefix + "post-backup-command"
	AnnotationHookContainer     = Prefix + "container"
	AnnotationHookTimeout       = Prefix + "timeout"
)

// ShellHook is a hook running command under /bin/sh -c.
func ShellHook(command string) []string { return []string{"/bin/sh", "-c", command} }

// ParseHookCommand reads a command of an annotation or flag: a JSON array of strings is
// the argv, anything else a shell command line.
func ParseHookCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty command")
	}
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("command %s: a JSON array of strings: %v", s, err)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("command %s: the array is empty", s)
		}
		return argv, nil
	}
	return ShellHook(s), nil
}

// Validate checks a hook's fields; where names the hook in the error.
func (h Hook) Validate(where string, post bool) error {
	switch {
	case len(h.Exec) == 0 && h.HTTP == nil:
		return fmt.Errorf("%s: give a command (exec) or an HTTP request", where)
	case len(h.Exec) > 0 && h.HTTP != nil:
		return fmt.Errorf("%s: give either a command or an HTTP request, not both", where)
	}
	switch h.Policy {
	case "", PolicyAlways, PolicyOnSuccess, PolicyOnFailure:
	default:
		return fmt.Errorf("%s: executionPolicy %q: want Always, OnSuccess or OnFailure", where, h.Policy)
	}
	if h.Policy != "" && !post {
		return fmt.Errorf("%s: executionPolicy is for post hooks; a pre hook always runs", where)
	}
	if h.Timeout != "" {
		if d, err := time.ParseDuration(h.Timeout); err != nil || d <= 0 {
			return fmt.Errorf("%s: timeout %q: want a positive duration such as 30s or 5m", where, h.Timeout)
		}
	}
	if h.HTTP != nil {
		switch strings.ToUpper(h.HTTP.Method) {
		case "GET", "POST", "PUT":
		default:
			return fmt.Errorf("%s: HTTP method %q: want GET or POST", where, h.HTTP.Method)
		}
		if h.HTTP.Port <= 0 || h.HTTP.Port > 65535 {
			return fmt.Errorf("%s: HTTP port %d: want 1-65535", where, h.HTTP.Port)
		}
		if s := strings.ToLower(h.HTTP.Scheme); s != "" && s != "http" && s != "https" {
			return fmt.Errorf("%s: HTTP scheme %q: want http or https", where, h.HTTP.Scheme)
		}
	}
	return nil
}

// Validate checks every hook.
func (h *Hooks) Validate(where string) error {
	if h == nil {
		return nil
	}
	for _, g := range []struct {
		name  string
		hooks []Hook
		post  bool
	}{{HookPreBackup, h.PreBackup, false}, {HookPostBackup, h.PostBackup, true},
		{HookPreRestore, h.PreRestore, false}, {HookPostRestore, h.PostRestore, true}} {
		for i, hk := range g.hooks {
			if err := hk.Validate(fmt.Sprintf("%shooks.%s[%d]", where, g.name, i), g.post); err != nil {
				return err
			}
		}
	}
	return nil
}

// HookResult is one hook's outcome, in its host's status.
type HookResult struct {
	Phase     string `json:"phase"` // preBackup, postBackup, …
	Name      string `json:"name"`
	Succeeded bool   `json:"succeeded"`
	// Skipped says the policy did not call for the hook (an OnFailure hook after success).
	Skipped  bool   `json:"skipped,omitempty"`
	Message  string `json:"message,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// Hook condition types of the seeds.
const (
	ConditionPreBackupHook   = "PreBackupHookExecutionSucceeded"
	ConditionPostBackupHook  = "PostBackupHookExecutionSucceeded"
	ConditionPreRestoreHook  = "PreRestoreHookExecutionSucceeded"
	ConditionPostRestoreHook = "PostRestoreHookExecutionSucceeded"
)

// HookCondition is the condition type recording hooks of phase.
func HookCondition(phase string) string {
	switch phase {
	case HookPreBackup:
		return ConditionPreBackupHook
	case HookPostBackup:
		return ConditionPostBackupHook
	case HookPreRestore:
		return ConditionPreRestoreHook
	}
	return ConditionPostRestoreHook
}

// MemberStatus is one member's section of a batch session's status (the seeds'
// status.targets[]).
type MemberStatus struct {
	Target     Target     `json:"ref"`
	TotalHosts int        `json:"totalHosts"`
	Phase      Phase      `json:"phase"`
	Hosts      HostCounts `json:"hosts"`
	Error      string     `json:"error,omitempty"`
}

// AnnotationTarget is set on a host Job: the kind/name of the target (a batch member) it
// backs up.
const AnnotationTarget = Prefix + "target"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidateMembers checks a batch's members: known kinds, no target twice, a dump or
// paths for each, and the execution order.
func (c BackupConfig) ValidateMembers() error {
	switch c.ExecutionOrder {
	case "", OrderParallel, OrderSequential:
	default:
		return fmt.Errorf("executionOrder %q: want Parallel or Sequential", c.ExecutionOrder)
	}
	seen := map[Target]bool{}
	for i, m := range c.Members {
		where := fmt.Sprintf("members[%d] (%s)", i, m.Target)
		if seen[m.Target] {
			return fmt.Errorf("%s: the batch names this target twice; give each target once", where)
		}
		seen[m.Target] = true
		if !dnsLabel.MatchString(m.Target.Name) && !strings.Contains(m.Target.Name, ".") {
			return fmt.Errorf("%s: %q is not a valid object name", where, m.Target.Name)
		}
		if m.Dump == nil && len(m.Paths) == 0 {
			return fmt.Errorf("%s: give paths to back up, or dump for a database", where)
		}
		if m.Dump != nil && len(m.Paths) > 0 {
			return fmt.Errorf("%s: a database member is dumped; it takes no paths", where)
		}
		if m.Dump != nil && m.Target.Kind == "pvc" {
			return fmt.Errorf("%s: a dump runs in the database's pod; a pvc has none: name its workload", where)
		}
		if err := m.Hooks.Validate(where + ": "); err != nil {
			return err
		}
	}
	return nil
}

// DisplayName names a host for people: a batch member's hosts carry their target
// (statefulset/pg host-0), since two members may both have a host-0.
func (h HostStatus) DisplayName() string {
	if h.Target != "" {
		return h.Target + " " + h.Hostname
	}
	return h.Hostname
}
