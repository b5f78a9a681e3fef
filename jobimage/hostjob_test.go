package jobimage

import (
	"time"

	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/repocmd"
	"github.com/kubectl-stash/kubectl-stash/internal/workload"
)

func TestHostJobCacheVolume(t *testing.T) {
	host := workload.Host{Name: "host-0", Mounts: []workload.HostMount{{Volume: "data-0", MountPath: "/data",
		Source: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}}}}
	tests := []struct {
		name      string
		runtime   api.Runtime
		wantLimit string // "" : no cache volume
		wantEnv   string
	}{
		{"default", api.Runtime{}, "256Mi", "214748360"},
		{"sized", api.Runtime{CacheSize: "1Gi"}, "1Gi", "858993456"},
		{"no cache", api.Runtime{NoCache: true}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Runtime = tt.runtime
			job, err := HostJob(sessionJob("web-backup-x", time.Now()), cfg, host, "", "", "")
			if err != nil {
				t.Fatal(err)
			}
			pod := job.Spec.Template.Spec
			var limit string
			for _, v := range pod.Volumes {
				if v.Name == "stash-cache" {
					limit = v.EmptyDir.SizeLimit.String()
				}
			}
			env := map[string]string{}
			for _, e := range pod.Containers[0].Env {
				env[e.Name] = e.Value
			}
			if limit != tt.wantLimit || env[repocmd.EnvCacheSize] != tt.wantEnv {
				t.Errorf("cache volume sizeLimit %q, %s=%q; want %q, %q", limit, repocmd.EnvCacheSize, env[repocmd.EnvCacheSize], tt.wantLimit, tt.wantEnv)
			}
			if (env[repocmd.EnvCacheDir] == CacheMountPath) != (tt.wantLimit != "") {
				t.Errorf("%s=%q", repocmd.EnvCacheDir, env[repocmd.EnvCacheDir])
			}
			// the data is mounted read-only, at the workload's own path
			if m := pod.Containers[0].VolumeMounts; len(m) < 2 || m[1].MountPath != "/data" || !m[1].ReadOnly {
				t.Errorf("mounts %v", m)
			}
		})
	}
}
