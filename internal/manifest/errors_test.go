package manifest

import (
	"strings"
	"testing"
)

const bcHead = `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata:
  name: web-backup
spec:
`

const bcTarget = `  repository:
    name: s3
  target:
    ref:
      apiVersion: apps/v1
      kind: Deployment
      name: web
    paths: [/data]
  retentionPolicy:
    name: keep
    keepLast: 3
    prune: false
`

const rsHead = `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata:
  name: web-restore
spec:
  repository:
    name: s3
  target:
    ref:
      apiVersion: apps/v1
      kind: StatefulSet
      name: web
`

const batchHead = `apiVersion: stash.appscode.com/v1beta1
kind: BackupBatch
metadata:
  name: shop
spec:
  repository:
    name: s3
  retentionPolicy:
    name: keep
    keepLast: 3
    prune: false
  members:
  - target:
      ref:
        apiVersion: apps/v1
        kind: Deployment
        name: web
      paths: [/data]
`

// TestErrors: each problem is one line with the file, line and column, the field path,
// the reason and the fix; nothing is mapped.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"unknown field", bcHead + bcTarget + "  schedul: \"@daily\"\n",
			`bc.yaml:18:3: spec.schedul: unknown field "schedul": did you mean "schedule"?`},
		{"unknown field deep", bcHead + bcTarget + "  runtimeSettings:\n    container:\n      nicee:\n        adjustment: 5\n",
			`bc.yaml:20:7: spec.runtimeSettings.container.nicee: unknown field "nicee": did you mean "nice"?`},
		{"wrong type", bcHead + bcTarget + "  paused: \"yes\"\n",
			`bc.yaml:18:11: spec.paused: want true or false, got the string "yes"`},
		{"wrong type in a list", bcHead + bcTarget + "  backupHistoryLimit: [1]\n",
			`bc.yaml:18:23: spec.backupHistoryLimit: want a whole number, got a list`},
		{"wrong quantity", bcHead + bcTarget + "  tempDir:\n    sizeLimit: lots\n",
			`bc.yaml:19:16: spec.tempDir.sizeLimit: want a quantity (like 512Mi or 2Gi), got the string "lots": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`},
		{"unsupported driver", bcHead + "  driver: VolumeSnapshotter\n" + bcTarget,
			`bc.yaml:6:3: spec.driver: VolumeSnapshotter is not supported: kubectl-stash backs up files into its repository and takes no CSI VolumeSnapshots; use driver: Restic (or remove the field); the BackupConfiguration is skipped (--ignore-unsupported: warn and go on without it)`},
		{"two catch-all rules", rsHead + "    rules:\n    - sourceHost: host-0\n    - paths: [/data]\n",
			`rs.yaml:15:7: spec.target.rules[1].targetHosts: rules[1] and rules[0] both have empty targetHosts: only one rule may apply to every other host; name the hosts of one of them (targetHosts=host-3,host-4)`},
		{"a host in two rules", rsHead + "    rules:\n    - targetHosts: [host-1]\n    - targetHosts: [host-1, host-2]\n",
			`rs.yaml:15:7: spec.target.rules[1].targetHosts: rules[1].targetHosts names host-1, which rules[0] already names: the first matching rule wins, so this one would never apply to it`},
		{"missing repository", strings.Replace(bcHead+bcTarget, "  repository:\n    name: s3\n", "", 1),
			`bc.yaml:5:1: spec.repository: missing: the BackupConfiguration names the Repository its snapshots go to; add spec.repository.name (a Stash Repository in the same files, or a repository Secret made with kubectl stash repo create NAME --url URL)`},
		{"missing KubeStash repository", `apiVersion: core.kubestash.com/v1alpha1
kind: RestoreSession
metadata:
  name: r
spec:
  target: {apiGroup: apps, kind: Deployment, name: web}
  dataSource:
    snapshot: latest
`, `ks.yaml:7:3: spec.dataSource.repository: missing: the repository the snapshots come from; add spec.dataSource.repository (a KubeStash Repository in the same files, or a repository Secret made with kubectl stash repo create)`},
		{"tcpSocket hook", bcHead + bcTarget + "  hooks:\n    preBackup:\n      tcpSocket:\n        port: 5432\n",
			`bc.yaml:20:7: spec.hooks.preBackup.tcpSocket: tcpSocket hooks are not supported: opening a TCP connection does nothing to prepare or release an application; use exec (a command in the pod) or httpGet/httpPost (--ignore-unsupported: warn and go on without it)`},
		{"OnFinalRetryFailure", bcHead + bcTarget + "  hooks:\n    postBackup:\n      exec:\n        command: [/notify]\n      executionPolicy: OnFinalRetryFailure\n",
			`bc.yaml:22:7: spec.hooks.postBackup.executionPolicy: OnFinalRetryFailure: there are no retries here (a failed session is recorded, never re-run), so every failure is final: use OnFailure; the hook is skipped (--ignore-unsupported: warn and go on without it)`},
		{"executionPolicy typo", bcHead + bcTarget + "  hooks:\n    postBackup:\n      exec:\n        command: [/notify]\n      executionPolicy: OnFailur\n",
			`bc.yaml:22:7: spec.hooks.postBackup.executionPolicy: "OnFailur": want Always, OnSuccess or OnFailure: did you mean "OnFailure"?`},
		{"named port", bcHead + bcTarget + "  hooks:\n    preBackup:\n      httpGet:\n        port: http\n        path: /flush\n",
			`bc.yaml:21:9: spec.hooks.preBackup.httpGet.port: the named port "http" is found by Stash among the container's ports, which kubectl-stash does not look up: give its number (port: 8080); the hook is skipped (--ignore-unsupported: warn and go on without it)`},
		{"httpPost form", bcHead + bcTarget + "  hooks:\n    postBackup:\n      httpPost:\n        port: 8080\n        form:\n        - key: status\n          values: [done]\n",
			`bc.yaml:22:9: spec.hooks.postBackup.httpPost.form: form bodies are not supported: send the body as it is in httpPost.body, with a Content-Type header (application/x-www-form-urlencoded for a form); the hook is skipped (--ignore-unsupported: warn and go on without it)`},
		{"two actions", bcHead + bcTarget + "  hooks:\n    preBackup:\n      exec:\n        command: [sync]\n      httpGet:\n        port: 80\n",
			`bc.yaml:19:5: spec.hooks.preBackup: give one action of exec, httpGet, httpPost and tcpSocket (2 are given)`},
		{"scheme", bcHead + bcTarget + "  hooks:\n    preBackup:\n      httpGet:\n        port: 80\n        scheme: http\n",
			`bc.yaml:22:9: spec.hooks.preBackup.httpGet.scheme: "http": want HTTP or HTTPS`},
		{"KubeStash hooks", `apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata:
  name: web
spec:
  target: {apiGroup: apps, kind: Deployment, name: web}
  sessions:
  - name: daily
    hooks:
      preBackup:
      - name: flush
        hookTemplate: {name: flush}
    repositories:
    - name: web-repo
    addon:
      name: workload-addon
      tasks:
      - name: logical-backup
        params: {paths: /data}
`, `ks.yaml:9:5: spec.sessions[0].hooks: KubeStash hooks refer to HookTemplate objects, which kubectl-stash does not read: write the hooks in a Stash manifest (spec.hooks: a preBackup/postBackup or preRestore/postRestore handler), or give the verb --pre-backup/--post-backup (--pre-restore/--post-restore); remove them here (--ignore-unsupported: warn and go on without it)`},
		{"AppBinding target", batchHead + "  - task:\n      name: mysql-backup-8.0.14\n    target:\n      ref:\n        apiVersion: appcatalog.appscode.com/v1alpha1\n        kind: AppBinding\n        name: wordpress-mysql\n",
			`bc.yaml:24:9: spec.members[1].target.ref.kind: an AppBinding is how Stash's database addons reach a database over the network; kubectl-stash dumps a database inside its own pod (the exec API): point target.ref at the database's StatefulSet or Deployment (apiVersion: apps/v1), and keep the task (--ignore-unsupported: warn and go on without it)`},
		{"a member named twice", batchHead + "  - target:\n      ref:\n        apiVersion: apps/v1\n        kind: Deployment\n        name: web\n      paths: [/var/log]\n",
			`bc.yaml:20:7: spec.members[1].target.ref: deployment/web is the target of members[0] too: give each target once (one member backs up all its paths)`},
		{"executionOrder typo", batchHead + "  executionOrder: Sequentail\n",
			`bc.yaml:19:3: spec.executionOrder: "Sequentail": want Parallel (the default: every member at once) or Sequential (one after another, in the members' order): did you mean "Sequential"?`},
		{"batch hooks", batchHead + "  hooks:\n    preBackup:\n      exec:\n        command: [sync]\n",
			`bc.yaml:19:3: spec.hooks: a BackupBatch's own hooks run once around the whole batch (Stash's global hooks), and kubectl-stash runs hooks around each host of each member, in the member's pods: put the hooks on the members (spec.members[].hooks) that need them (--ignore-unsupported: warn and go on without it)`},
		{"members' runtime settings differ", batchHead + "    runtimeSettings:\n      container:\n        nice: {adjustment: 5}\n  - target:\n      ref: {apiVersion: apps/v1, kind: Deployment, name: api}\n      paths: [/data]\n",
			`bc.yaml:22:5: spec.members[1].runtimeSettings: members[0] and members[1] have different runtime settings, and a batch's host pods run with one runtime: give them once, in spec.runtimeSettings (--ignore-unsupported: warn and go on without it)`},
		{"database member with paths", batchHead + "  - task:\n      name: pg-backup-15\n    target:\n      ref: {apiVersion: apps/v1, kind: StatefulSet, name: pg}\n      paths: [/var/lib/postgresql]\n",
			`bc.yaml:23:7: spec.members[1].target.paths: the target is a database (task pg-backup-15), dumped whole inside its pod: paths do not apply; remove them (back up files in another configuration)`},
		{"database PVC", batchHead + "  - task:\n      name: pg-backup-15\n    target:\n      ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: pg-data}\n",
			`bc.yaml:22:29: spec.members[1].target.ref.kind: task pg-backup-15 dumps a database inside its pod, and a PersistentVolumeClaim has none: name the database's StatefulSet or Deployment`},
		{"restore task in a backup", strings.Replace(bcHead, "spec:\n", "spec:\n  task:\n    name: pg-restore-15\n", 1) + "  repository:\n    name: s3\n  target:\n    ref: {apiVersion: apps/v1, kind: StatefulSet, name: pg}\n",
			`bc.yaml:7:5: spec.task.name: task pg-restore-15 is a restore task, and a BackupConfiguration backs up: want pg-backup-15`},
		{"dump annotation without a database", strings.Replace(bcHead, "  name: web-backup\n", "  name: web-backup\n  annotations:\n    kubectl-stash.io/dump-command: pg_dumpall\n", 1) + bcTarget,
			`bc.yaml:6:5: metadata.annotations["kubectl-stash.io/dump-command"]: kubectl-stash.io/dump-command changes a database's dump, and the BackupConfiguration is not one (name the database's task: task.name: <database>-backup, one of postgres/pg/postgresql, mysql/mariadb, mongodb/mongo, redis)`},
		{"unknown annotation", strings.Replace(bcHead, "  name: web-backup\n", "  name: web-backup\n  annotations:\n    kubectl-stash.io/dump-comand: pg_dumpall\n", 1) + bcTarget,
			`bc.yaml:6:5: metadata.annotations["kubectl-stash.io/dump-comand"]: unknown annotation kubectl-stash.io/dump-comand: did you mean "kubectl-stash.io/dump-command"?`},
		{"hook timeout without hooks", strings.Replace(bcHead, "  name: web-backup\n", "  name: web-backup\n  annotations:\n    kubectl-stash.io/hook-timeout: 1m\n", 1) + bcTarget,
			`bc.yaml:6:5: metadata.annotations["kubectl-stash.io/hook-timeout"]: the BackupConfiguration has no hooks for this time limit to bound: add hooks, or remove the annotation`},
		{"BackupSession of another kind", "apiVersion: stash.appscode.com/v1beta1\nkind: BackupSession\nmetadata: {name: x-1}\nspec:\n  invoker: {kind: BackupBach, name: x}\n",
			`bc.yaml:5:13: spec.invoker.kind: "BackupBach": want BackupConfiguration or BackupBatch: did you mean "BackupBatch"?`},
		{"restore of a database into a new StatefulSet", strings.Replace(rsHead, "spec:\n", "spec:\n  task:\n    name: postgres-restore\n", 1) + "    replicas: 1\n    volumeClaimTemplates:\n    - metadata:\n        name: data-web-${POD_ORDINAL}\n      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
			`rs.yaml:16:5: spec.target.volumeClaimTemplates: the target is a database (task postgres-restore), restored through its running pod: a StatefulSet about to be created has none; create the database first, then restore into it`},
		{"retryConfig", bcHead + bcTarget + "  retryConfig:\n    maxRetry: 2\n    delay: 1m\n",
			`bc.yaml:18:3: spec.retryConfig: retryConfig is not supported: a failed session is recorded as Failed and never re-run behind your back; the next schedule, or kubectl stash trigger, is the retry; remove retryConfig (--ignore-unsupported: warn and go on without it)`},
		{"addon image", bcHead + "  task:\n    name: elasticsearch-backup-7.3.2\n" + bcTarget,
			`bc.yaml:7:5: spec.task.name: task elasticsearch-backup-7.3.2 refers to an addon image kubectl-stash does not have: it backs up the volumes of workloads and PVCs (tasks workload-backup, pvc-backup, or none), and dumps databases inside their own pods (tasks <database>-backup[-<version>] of postgres/pg/postgresql, mysql/mariadb, mongodb/mongo, redis, or database-backup with the kubectl-stash.io/dump-command annotation); the BackupConfiguration is skipped (--ignore-unsupported: warn and go on without it)`},
		{"interim volume", bcHead + bcTarget + "  interimVolumeTemplate:\n    metadata: {name: x}\n",
			`bc.yaml:18:3: spec.interimVolumeTemplate: interimVolumeTemplate is not supported: kubectl-stash reads the volumes in place and streams them to the repository, it needs no interim volume; remove it (--ignore-unsupported: warn and go on without it)`},
		{"unknown BackupStorage", `apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata:
  name: web
spec:
  target: {apiGroup: apps, kind: Deployment, name: web}
  backends:
  - name: s3
    storageRef: {name: s3-storage}
  sessions:
  - name: daily
    repositories:
    - name: web-repo
      backend: s3
      directory: web
      encryptionSecret: {name: enc}
    addon:
      name: workload-addon
      tasks:
      - name: logical-backup
        params: {paths: /data}
`, `ks.yaml:9:5: spec.backends[0].storageRef: BackupStorage "s3-storage" is not among the manifests: kubectl-stash has no BackupStorage objects, it makes the repository Secret from the BackupStorage's manifest (give it with -f, with its Secret), or drop spec.backends and name a repository Secret made with kubectl stash repo create (--ignore-unsupported: warn and go on without it)`},
		{"relative path", strings.Replace(bcHead+bcTarget, "[/data]", "[data]", 1),
			`bc.yaml:13:13: spec.target.paths[0]: "data" is not an absolute path: give the paths to back up as the workload's containers see them`},
		{"duplicate key", bcHead + bcTarget + "  paused: true\n  paused: false\n",
			`bc.yaml:19:3: spec.paused: "paused" is given twice in this mapping: keep one`},
		{"not yaml", "apiVersion: v1\nkind: [\n",
			`bc.yaml:2:1: not valid YAML: did not find expected node content`},
		{"unknown kind", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n",
			`bc.yaml:2:1: kind: apps/v1 StatefulSet is not a kind kubectl stash reads (it reads stash.appscode.com/v1beta1 BackupConfiguration, BackupBatch, RestoreSession, BackupSession; stash.appscode.com/v1alpha1 Repository; core.kubestash.com/v1alpha1 BackupConfiguration, RestoreSession, BackupSession, BackupVerificationSession; storage.kubestash.com/v1alpha1 BackupStorage, Repository, RetentionPolicy; v1 Secret (the storage and encryption Secrets those name)): apply it with kubectl apply -f (--ignore-unsupported: warn and go on without it)`},
		{"claim names", rsHead + "    replicas: 2\n    volumeClaimTemplates:\n    - metadata:\n        name: data-${POD_ORDINAL}\n      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
			`rs.yaml:16:9: spec.target.volumeClaimTemplates[0].metadata.name: "data-${POD_ORDINAL}": the claims must be named <template>-web-${POD_ORDINAL}, the names the StatefulSet's pods mount; name it so (--ignore-unsupported: warn and go on without it)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := "bc.yaml"
			switch {
			case strings.HasPrefix(tt.yaml, rsHead[:60]) && strings.Contains(tt.yaml, "kind: RestoreSession") && strings.Contains(tt.yaml, "stash.appscode.com"):
				file = "rs.yaml"
			case strings.Contains(tt.yaml, "kubestash.com"):
				file = "ks.yaml"
			}
			set, err := Parse([]Source{{Name: file, Data: []byte(tt.yaml)}}, Options{})
			if err == nil {
				t.Fatalf("no error; mapped %+v", set)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

// TestIgnoreUnsupported: --ignore-unsupported turns rejections into warnings and maps the
// rest; a malformed field is still an error.
func TestIgnoreUnsupported(t *testing.T) {
	yaml := bcHead + bcTarget + "  hooks:\n    preBackup:\n      tcpSocket:\n        port: 5432\n  retryConfig:\n    maxRetry: 2\n"
	set, err := Parse([]Source{{Name: "bc.yaml", Data: []byte(yaml)}}, Options{IgnoreUnsupported: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Backups) != 1 || set.Backups[0].Config.Retention.KeepLast != 3 || set.Backups[0].Config.Hooks != nil {
		t.Fatalf("backups: %+v", set.Backups)
	}
	want := []string{
		"bc.yaml:20:7: spec.hooks.preBackup.tcpSocket: not applied: tcpSocket hooks are not supported: opening a TCP connection does nothing to prepare or release an application; use exec (a command in the pod) or httpGet/httpPost",
		"bc.yaml:22:3: spec.retryConfig: not applied: retryConfig is not supported: a failed session is recorded as Failed and never re-run behind your back; the next schedule, or kubectl stash trigger, is the retry; remove retryConfig",
	}
	if strings.Join(set.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(set.Warnings, "\n"), strings.Join(want, "\n"))
	}
	_, err = Parse([]Source{{Name: "bc.yaml", Data: []byte(yaml + "  paused: 1\n")}}, Options{IgnoreUnsupported: true})
	if err == nil || !strings.Contains(err.Error(), "spec.paused: want true or false, got the number 1") {
		t.Errorf("a malformed field with --ignore-unsupported: %v", err)
	}
	// a document skipped whole: the driver
	set, err = Parse([]Source{{Name: "bc.yaml", Data: []byte(bcHead + "  driver: VolumeSnapshotter\n" + bcTarget)}}, Options{IgnoreUnsupported: true})
	if err != nil || len(set.Backups) != 0 || len(set.Warnings) != 1 {
		t.Errorf("VolumeSnapshotter with --ignore-unsupported: %v %+v", err, set)
	}
}

// TestAllProblemsAtOnce: every problem of every document is reported, in file order.
func TestAllProblemsAtOnce(t *testing.T) {
	yaml := bcHead + strings.Replace(bcTarget, "[/data]", "[data]", 1) + "  paused: 2\n---\n" + rsHead + "    rules:\n    - {}\n    - {}\n"
	_, err := Parse([]Source{{Name: "all.yaml", Data: []byte(yaml)}}, Options{})
	want := `3 problems in the manifests:
  all.yaml:13:13: spec.target.paths[0]: "data" is not an absolute path: give the paths to back up as the workload's containers see them
  all.yaml:18:11: spec.paused: want true or false, got the number 2
  all.yaml:34:7: spec.target.rules[1].targetHosts: rules[1] and rules[0] both have empty targetHosts: only one rule may apply to every other host; name the hosts of one of them (targetHosts=host-3,host-4)`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
