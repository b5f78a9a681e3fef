package api

import (
	"reflect"
	"strings"
	"testing"
)

func TestDumpResolved(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      Dump
		want    Dump
		wantErr string
	}{
		{"preset", Dump{Preset: "postgres"}, Dump{Preset: "postgres", DumpCommand: DumpPresets[0].Dump, RestoreCommand: DumpPresets[0].Restore, FileName: "dumpfile.sql"}, ""},
		{"alias mariadb", Dump{Preset: "mariadb"}, Dump{Preset: "mysql", DumpCommand: DumpPresets[1].Dump, RestoreCommand: DumpPresets[1].Restore, FileName: "dumpfile.sql"}, ""},
		{"override keeps the preset's other parts", Dump{Preset: "redis", DumpCommand: "cat /data/dump.rdb"},
			Dump{Preset: "redis", DumpCommand: "cat /data/dump.rdb", RestoreCommand: DumpPresets[3].Restore, FileName: "dump.rdb"}, ""},
		{"custom commands", Dump{DumpCommand: "etcdctl snapshot save /dev/stdout", FileName: "etcd.db"},
			Dump{DumpCommand: "etcdctl snapshot save /dev/stdout", FileName: "etcd.db"}, ""},
		{"custom default file", Dump{DumpCommand: "x"}, Dump{DumpCommand: "x", FileName: "dumpfile"}, ""},
		{"unknown preset", Dump{Preset: "oracle"}, Dump{}, `dump preset "oracle" is not known: want one of postgres, mysql, mongodb, redis`},
		{"no command", Dump{}, Dump{}, "the dump has no command"},
		{"file with a slash", Dump{DumpCommand: "x", FileName: "a/b"}, Dump{}, `dump file name "a/b": want a plain file name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Resolved()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolved = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestPresetForImage(t *testing.T) {
	for image, want := range map[string]string{
		"postgres:16": "postgres", "docker.io/library/postgres:16-alpine": "postgres", "bitnami/postgresql:15": "postgres",
		"mariadb:11": "mysql", "mysql:8.4": "mysql", "percona/percona-server:8": "mysql", "mongo:7": "mongodb",
		"redis:7": "redis", "valkey/valkey:8": "redis", "local.test/postgres:debian": "postgres", "nginx:1.27": "",
		"registry.example/postgres-exporter/nginx:1": "", // the registry path does not count
	} {
		p, ok := PresetForImage(image)
		if ok != (want != "") || p.Name != want {
			t.Errorf("PresetForImage(%q) = %q, %v; want %q", image, p.Name, ok, want)
		}
	}
}

func TestParseHookCommand(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"sync && touch /data/marker", []string{"/bin/sh", "-c", "sync && touch /data/marker"}, ""},
		{`["/usr/bin/fsfreeze","--freeze","/data"]`, []string{"/usr/bin/fsfreeze", "--freeze", "/data"}, ""},
		{`  ["x"]  `, []string{"x"}, ""},
		{"", nil, "empty command"},
		{`["x",1]`, nil, "a JSON array of strings"},
		{`[]`, nil, "the array is empty"},
	} {
		got, err := ParseHookCommand(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseHookCommand(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseHookCommand(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestHooksValidate(t *testing.T) {
	ok := Hook{Exec: ShellHook("true")}
	for _, tc := range []struct {
		name    string
		hooks   Hooks
		wantErr string
	}{
		{"fine", Hooks{PreBackup: []Hook{ok}, PostBackup: []Hook{{Exec: ok.Exec, Policy: PolicyOnFailure, Timeout: "2m"}},
			PreRestore: []Hook{{HTTP: &HTTPHook{Method: "post", Port: 8080, Path: "/quiesce"}}}}, ""},
		{"nothing to do", Hooks{PreBackup: []Hook{{Name: "x"}}}, "hooks.preBackup[0]: give a command (exec) or an HTTP request"},
		{"both", Hooks{PostRestore: []Hook{{Exec: ok.Exec, HTTP: &HTTPHook{Method: "GET", Port: 1}}}}, "hooks.postRestore[0]: give either a command or an HTTP request, not both"},
		{"policy on a pre hook", Hooks{PreBackup: []Hook{{Exec: ok.Exec, Policy: PolicyAlways}}}, "executionPolicy is for post hooks"},
		{"bad policy", Hooks{PostBackup: []Hook{ok, {Exec: ok.Exec, Policy: "OnFinalRetryFailure"}}}, `hooks.postBackup[1]: executionPolicy "OnFinalRetryFailure": want Always, OnSuccess or OnFailure`},
		{"bad timeout", Hooks{PreBackup: []Hook{{Exec: ok.Exec, Timeout: "-1s"}}}, `timeout "-1s": want a positive duration`},
		{"bad port", Hooks{PreBackup: []Hook{{HTTP: &HTTPHook{Method: "GET", Port: 70000}}}}, "HTTP port 70000: want 1-65535"},
		{"bad method", Hooks{PreBackup: []Hook{{HTTP: &HTTPHook{Method: "DELETE", Port: 80}}}}, `HTTP method "DELETE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.hooks.Validate("")
			if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMemberConfigs(t *testing.T) {
	hooks := &Hooks{PreBackup: []Hook{{Exec: ShellHook("sync")}}}
	batch := BackupConfig{Name: "app", Repository: "repo", Schedule: "@daily", Retention: Retention{KeepLast: 3}, Image: "img",
		ExecutionOrder: OrderSequential, Members: []Member{
			{Target: Target{Kind: "deployment", Name: "web"}, Paths: []string{"/var/www"}, Hooks: hooks},
			{Target: Target{Kind: "statefulset", Name: "db"}, Dump: &Dump{Preset: "mysql"}, Alias: "db"},
		}}
	ms := batch.MemberConfigs()
	if len(ms) != 2 {
		t.Fatalf("%d member configs", len(ms))
	}
	web, db := ms[0], ms[1]
	if web.Name != "app" || web.Repository != "repo" || web.Schedule != "@daily" || web.Retention.KeepLast != 3 || web.Image != "img" ||
		web.Target.Name != "web" || web.Paths[0] != "/var/www" || web.Hooks != hooks || !web.BatchMember || web.IsBatch() || web.ExecutionOrder != "" {
		t.Errorf("web member config %+v", web)
	}
	if db.Dump == nil || db.Dump.Preset != "mysql" || db.Alias != "db" || len(db.Paths) != 0 || db.Hooks != nil {
		t.Errorf("db member config %+v", db)
	}
	if got := batch.TargetString(); got != "batch(deployment/web,statefulset/db)" {
		t.Errorf("TargetString = %q", got)
	}
	single := BackupConfig{Name: "web-backup", Target: Target{Kind: "deployment", Name: "web"}}
	if ms := single.MemberConfigs(); len(ms) != 1 || ms[0].BatchMember || single.TargetString() != "deployment/web" {
		t.Errorf("a single configuration's member configs: %+v", ms)
	}
}

func TestValidateMembers(t *testing.T) {
	web := Member{Target: Target{Kind: "deployment", Name: "web"}, Paths: []string{"/data"}}
	for _, tc := range []struct {
		name    string
		cfg     BackupConfig
		wantErr string
	}{
		{"fine", BackupConfig{Members: []Member{web, {Target: Target{Kind: "statefulset", Name: "db"}, Dump: &Dump{}}}}, ""},
		{"twice", BackupConfig{Members: []Member{web, web}}, "members[1] (deployment/web): the batch names this target twice"},
		{"nothing", BackupConfig{Members: []Member{{Target: Target{Kind: "deployment", Name: "web"}}}}, "give paths to back up, or dump for a database"},
		{"dump and paths", BackupConfig{Members: []Member{{Target: Target{Kind: "statefulset", Name: "db"}, Paths: []string{"/x"}, Dump: &Dump{}}}}, "a database member is dumped; it takes no paths"},
		{"pvc dump", BackupConfig{Members: []Member{{Target: Target{Kind: "pvc", Name: "data"}, Dump: &Dump{}}}}, "a pvc has none"},
		{"order", BackupConfig{ExecutionOrder: "Serial", Members: []Member{web}}, `executionOrder "Serial": want Parallel or Sequential`},
		{"hooks", BackupConfig{Members: []Member{{Target: web.Target, Paths: web.Paths, Hooks: &Hooks{PreBackup: []Hook{{}}}}}}, "members[0] (deployment/web): hooks.preBackup[0]: give a command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.ValidateMembers()
			if (tc.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateMembers = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
