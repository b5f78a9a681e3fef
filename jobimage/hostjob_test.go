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

// TestHostJobRuntimeSettings: the runtime settings of a manifest reach the host pod; a
// host pinned to its volume's node keeps the user's node affinity too.
func TestHostJobRuntimeSettings(t *testing.T) {
	cfg := testConfig()
	enable := false
	cfg.Runtime = api.Runtime{
		Env:                       []byte(`[{"name":"GOGC","value":"50"}]`),
		EnvFrom:                   []byte(`[{"configMapRef":{"name":"proxy"}}]`),
		Affinity:                  []byte(`{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"disk","operator":"In","values":["ssd"]}]}]}}}`),
		ImagePullSecrets:          []byte(`[{"name":"registry"}]`),
		TopologySpreadConstraints: []byte(`[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway"}]`),
		PriorityClassName:         "backup-low", SchedulerName: "custom", RuntimeClassName: "gvisor", EnableServiceLinks: &enable,
		TempDirMedium: "Memory",
	}
	host := workload.Host{Name: "host-0", Node: "node-7", Mounts: []workload.HostMount{{Volume: "data-0", MountPath: "/data",
		Source: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}}}}
	job, err := HostJob(sessionJob("web-backup-x", time.Now()), cfg, host, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	ct := pod.Containers[0]
	if last := ct.Env[len(ct.Env)-1]; last.Name != repocmd.EnvCacheSize {
		t.Errorf("env ends with %v", last)
	}
	found := false
	for _, e := range ct.Env {
		found = found || (e.Name == "GOGC" && e.Value == "50")
	}
	if !found || len(ct.EnvFrom) != 2 || ct.EnvFrom[0].SecretRef.Name != cfg.Repository || ct.EnvFrom[1].ConfigMapRef.Name != "proxy" {
		t.Errorf("env %v envFrom %v: want GOGC and the repository Secret before the ConfigMap", ct.Env, ct.EnvFrom)
	}
	terms := pod.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != "node-7" {
		t.Errorf("node affinity %+v: want the user's expression and the volume's node", terms)
	}
	if pod.PriorityClassName != "backup-low" || pod.SchedulerName != "custom" || *pod.RuntimeClassName != "gvisor" || *pod.EnableServiceLinks ||
		pod.ImagePullSecrets[0].Name != "registry" || pod.TopologySpreadConstraints[0].TopologyKey != "zone" {
		t.Errorf("pod %+v", pod)
	}
	for _, v := range pod.Volumes {
		if (v.Name == "tmp" || v.Name == "stash-cache") && v.EmptyDir.Medium != corev1.StorageMediumMemory {
			t.Errorf("volume %s medium %q, want Memory", v.Name, v.EmptyDir.Medium)
		}
	}
}
