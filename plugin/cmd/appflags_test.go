package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func TestBackupAppValidate(t *testing.T) {
	batch := []string{"--batch", "app", "--repo", "r"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"member without batch", []string{"deployment/web", "--repo", "r", "--paths", "/d", "--member", "deployment/web:/d"}, "--member and --member-hook need --batch NAME"},
		{"member hook of no member", append(batch, "--member", "deployment/web:/a", "--member-hook", "statefulset/db:pre-backup=sync"), `--member-hook "statefulset/db:pre-backup=sync": statefulset/db is not a member of the batch (its members: deployment/web)`},
		{"member hook phase", append(batch, "--member", "deployment/web:/a", "--member-hook", "deployment/web:before=sync"), `phase "before": want pre-backup, post-backup, pre-backup-http or post-backup-http`},
		{"member hook form", append(batch, "--member", "deployment/web:/a", "--member-hook", "deployment/web"), "want KIND/NAME:PHASE=COMMAND"},
		{"member hook policy", append(batch, "--member", "deployment/web:/a", "--member-hook", "deployment/web:post-backup=x", "--post-backup-policy", "Never"), `executionPolicy "Never": want Always, OnSuccess or OnFailure`},
		{"target with batch", append([]string{"deployment/web"}, batch...), "deployment/web with --batch: give the batch's targets with --member deployment/web:/path"},
		{"batch without members", batch, "--batch app has no members"},
		{"member without paths", append(batch, "--member", "deployment/web"), `--member "deployment/web": want KIND/NAME:/path`},
		{"member relative path", append(batch, "--member", "deployment/web:data"), `path "data": want an absolute path`},
		{"member twice", append(batch, "--member", "deployment/web:/a", "--member", "deployment/web:/b"), "the batch names this target twice"},
		{"member pvc dump", append(batch, "--member", "pvc/data:dump"), "a pvc has none"},
		{"member unknown preset", append(batch, "--member", "statefulset/db:dump=oracle"), `dump preset "oracle": want one of postgres, mysql, mongodb, redis`},
		{"bad order", append(batch, "--member", "deployment/web:/a", "--execution-order", "serial"), `executionOrder "serial": want Parallel or Sequential`},
		{"paths in a batch", append(batch, "--member", "deployment/web:/a", "--paths", "/b"), "in a batch, give each member's paths in --member"},
		{"dump of a pvc", []string{"pvc/data", "--repo", "r", "--dump", "auto"}, "pvc/data has none"},
		{"dump with paths", []string{"statefulset/db", "--repo", "r", "--dump", "postgres", "--paths", "/x"}, "--dump backs up the database's dump, not files"},
		{"unknown dump preset", []string{"statefulset/db", "--repo", "r", "--dump", "db2"}, `--dump "db2": want one of postgres, mysql, mongodb, redis, or auto`},
		{"policy without hook", []string{"deployment/web", "--repo", "r", "--paths", "/d", "--post-backup-policy", "OnFailure"}, "need a hook"},
		{"bad policy", []string{"deployment/web", "--repo", "r", "--paths", "/d", "--post-backup", "x", "--post-backup-policy", "Sometimes"}, `--post-backup-policy "Sometimes"`},
		{"bad http hook", []string{"deployment/web", "--repo", "r", "--paths", "/d", "--pre-backup-http", "ftp://x/y"}, `want [METHOD ]http://[HOST]:PORT/PATH`},
		{"bad hook json", []string{"deployment/web", "--repo", "r", "--paths", "/d", "--pre-backup", `["sync",`}, "a JSON array of strings"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runBackupClient(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed objects despite the error:\n%s", out)
			}
		})
	}
}

// configOf reads the BackupConfig the CronJob of a dry run carries.
func configOf(t *testing.T, yamlOut string) api.BackupConfig {
	t.Helper()
	for _, doc := range strings.Split(yamlOut, "\n---\n") {
		var cj batchv1.CronJob
		if err := yaml.Unmarshal([]byte(doc), &cj); err != nil || cj.Kind != "CronJob" {
			continue
		}
		var cfg api.BackupConfig
		if err := json.Unmarshal([]byte(cj.Annotations[api.AnnotationConfig]), &cfg); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Fatalf("no CronJob in:\n%s", yamlOut)
	return api.BackupConfig{}
}

// TestBackupBatchDryRunYAML pins a batch's objects: one CronJob carrying every member, a
// Role that reads each member's workload and may exec into their pods.
func TestBackupBatchDryRunYAML(t *testing.T) {
	out, err := runBackupClient(t, "--batch", "wordpress", "--repo", "s3-repo", "--schedule", "@daily", "--keep-last", "7",
		"--member", "deployment/wordpress:/var/www/html", "--member", "statefulset/mysql:dump=mariadb", "--member", "pvc/uploads:/data",
		"--execution-order", "Sequential", "--dump-container", "mariadb", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", t.Name()+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(want, []byte(out)) {
		t.Errorf("dry-run YAML differs from %s (go test -update to accept):\n%s", golden, out)
	}
	for _, want := range []string{"resourceNames:\n  - wordpress", "resourceNames:\n  - mysql", "pods/exec", "name: wordpress\n  namespace: shop"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run YAML lacks %q", want)
		}
	}
	cfg := configOf(t, out)
	wantMembers := []api.Member{
		{Target: api.Target{Kind: "deployment", Name: "wordpress"}, Paths: []string{"/var/www/html"}},
		{Target: api.Target{Kind: "statefulset", Name: "mysql"}, Dump: &api.Dump{Preset: "mysql", Container: "mariadb"}},
		{Target: api.Target{Kind: "pvc", Name: "uploads"}, Paths: []string{"/data"}, MountPath: "/data"},
	}
	if cfg.Name != "wordpress" || cfg.ExecutionOrder != api.OrderSequential || !reflect.DeepEqual(cfg.Members, wantMembers) {
		t.Errorf("batch config %+v, members %+v", cfg, cfg.Members)
	}
}

func TestBackupHookAndDumpFlags(t *testing.T) {
	out, err := runBackupClient(t, "deployment/shop", "--repo", "r", "--paths", "/data",
		"--pre-backup", "sync", "--pre-backup", `["/usr/bin/fsfreeze","--freeze","/data"]`,
		"--pre-backup-http", "POST http://:8080/quiesce?wait=1", "--post-backup-http", "https://alerts.ops/hook",
		"--post-backup", "fsfreeze --unfreeze /data", "--post-backup-policy", "OnFailure", "--hook-container", "app", "--hook-timeout", "2m", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := configOf(t, out)
	base := api.Hook{Container: "app", Timeout: "2m0s"}
	with := func(h api.Hook, f func(*api.Hook)) api.Hook { f(&h); return h }
	want := &api.Hooks{
		PreBackup: []api.Hook{
			with(base, func(h *api.Hook) { h.Exec = []string{"/bin/sh", "-c", "sync"} }),
			with(base, func(h *api.Hook) { h.Exec = []string{"/usr/bin/fsfreeze", "--freeze", "/data"} }),
			with(base, func(h *api.Hook) {
				h.HTTP = &api.HTTPHook{Method: "POST", Scheme: "http", Port: 8080, Path: "/quiesce?wait=1"}
			}),
		},
		PostBackup: []api.Hook{
			with(base, func(h *api.Hook) {
				h.Exec, h.Policy = []string{"/bin/sh", "-c", "fsfreeze --unfreeze /data"}, api.PolicyOnFailure
			}),
			with(base, func(h *api.Hook) {
				h.HTTP, h.Policy = &api.HTTPHook{Method: "GET", Scheme: "https", Host: "alerts.ops", Port: 443, Path: "/hook"}, api.PolicyOnFailure
			}),
		},
	}
	if !reflect.DeepEqual(cfg.Hooks, want) {
		g, _ := json.MarshalIndent(cfg.Hooks, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("hooks\n%s\nwant\n%s", g, w)
	}

	out, err = runBackupClient(t, "statefulset/pg", "--repo", "r", "--dump", "auto", "--dump-command", "pg_dump -Fc shop", "--dump-file", "shop.dump", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := configOf(t, out); cfg.Dump == nil || *cfg.Dump != (api.Dump{DumpCommand: "pg_dump -Fc shop", FileName: "shop.dump"}) || len(cfg.Paths) != 0 {
		t.Errorf("dump config %+v %+v", cfg, cfg.Dump)
	}
}

// TestBackupMemberHooks: --member-hook gives one member its hooks, after those every
// member has; the others keep only the shared ones.
func TestBackupMemberHooks(t *testing.T) {
	out, err := runBackupClient(t, "--batch", "wp", "--repo", "r",
		"--member", "deployment/wordpress:/var/www/html", "--member", "statefulset/mysql:dump",
		"--pre-backup", "sync",
		"--member-hook", "deployment/wordpress:pre-backup=wp maintenance-mode activate",
		"--member-hook", "deployment/wordpress:post-backup=wp maintenance-mode deactivate",
		"--member-hook", "deployment/wordpress:post-backup-http=POST http://:8080/purge",
		"--post-backup-policy", "Always", "--hook-timeout", "1m", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := configOf(t, out)
	sh := func(c string) []string { return []string{"/bin/sh", "-c", c} }
	wantWP := &api.Hooks{
		PreBackup: []api.Hook{{Exec: sh("sync"), Timeout: "1m0s"}, {Exec: sh("wp maintenance-mode activate"), Timeout: "1m0s"}},
		PostBackup: []api.Hook{{Exec: sh("wp maintenance-mode deactivate"), Timeout: "1m0s", Policy: api.PolicyAlways},
			{HTTP: &api.HTTPHook{Method: "POST", Scheme: "http", Port: 8080, Path: "/purge"}, Timeout: "1m0s", Policy: api.PolicyAlways}},
	}
	wantDB := &api.Hooks{PreBackup: []api.Hook{{Exec: sh("sync"), Timeout: "1m0s"}}}
	if !reflect.DeepEqual(cfg.Members[0].Hooks, wantWP) || !reflect.DeepEqual(cfg.Members[1].Hooks, wantDB) {
		g0, _ := json.Marshal(cfg.Members[0].Hooks)
		g1, _ := json.Marshal(cfg.Members[1].Hooks)
		t.Errorf("member hooks\n%s\n%s", g0, g1)
	}
}
