package jobimage

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

func dbStatefulSet() (*appsv1.StatefulSet, *corev1.Pod) {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: ns, Labels: map[string]string{"app": "db"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "sidecar", Image: "busybox"}, {Name: "postgres", Image: "docker.io/library/postgres:16"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	return sts, pod
}

// TestBatchSession: one session backs up every member; each member has its section and
// its host Jobs (named by member, since both have a host-0); the database member's host
// gets its pod and the preset found from its image; the batch fails when one member
// fails, and Sequential starts a member only after the one before it ended.
func TestBatchSession(t *testing.T) {
	for _, tc := range []struct {
		name       string
		order      string
		dbFails    bool
		wantPhase  api.Phase
		wantMember []api.Phase
	}{
		{"parallel, all succeed", api.OrderParallel, false, api.PhaseSucceeded, []api.Phase{api.PhaseSucceeded, api.PhaseSucceeded}},
		{"sequential, the dump fails", api.OrderSequential, true, api.PhaseFailed, []api.Phase{api.PhaseSucceeded, api.PhaseFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			self := sessionJob("app-29001", now)
			sts, pod := dbStatefulSet()
			c := fake.NewClientset(self)
			ctx := context.Background()
			c.AppsV1().Deployments(ns).Create(ctx, deploymentWith(pvcVolume), metav1.CreateOptions{})
			c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, boundPVC("data", corev1.ReadWriteMany), metav1.CreateOptions{})
			c.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{})
			c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})

			var mu sync.Mutex
			var order []string
			running := map[string]bool{}
			overlap := false
			stop := hostSim(t, c, func(j *batchv1.Job) {
				mu.Lock()
				order = append(order, j.Name)
				for other := range running {
					if running[other] {
						overlap = true
					}
				}
				running[j.Name] = true
				mu.Unlock()
				go func() {
					time.Sleep(30 * time.Millisecond)
					st := api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1s"}
					if strings.Contains(j.Name, "statefulset-db") && tc.dbFails {
						st.Phase, st.Error = api.PhaseFailed, "dump command exited with code 1: password authentication failed"
					}
					mu.Lock()
					running[j.Name] = false
					mu.Unlock()
					annotateHost(t, c, j.Name, st)
				}()
			})
			defer stop()
			cfg := api.BackupConfig{SchemaVersion: 1, Name: "app", Repository: "repo", Image: "stash-job:test", ExecutionOrder: tc.order,
				Members: []api.Member{
					{Target: api.Target{Kind: "deployment", Name: "web"}, Paths: []string{"/source/data"}},
					{Target: api.Target{Kind: "statefulset", Name: "db"}, Dump: &api.Dump{}},
				}}
			s := &Session{Client: c, Namespace: ns, Job: self.Name, Config: cfg, RepoURL: "s3://bucket/x",
				Poll: 10 * time.Millisecond, Grace: 50 * time.Millisecond, PodCreateGrace: time.Second}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			phase, err := s.Run(rctx)
			if phase != tc.wantPhase {
				t.Fatalf("phase %s (%v), want %s", phase, err, tc.wantPhase)
			}
			st := sessionStatus(t, c, self.Name)
			if len(st.Members) != 2 || st.TotalHosts != 2 {
				t.Fatalf("members %+v, total hosts %d", st.Members, st.TotalHosts)
			}
			for i, want := range tc.wantMember {
				if m := st.Members[i]; m.Phase != want || m.TotalHosts != 1 {
					t.Errorf("member %d: %+v, want %s with 1 host", i, m, want)
				}
			}
			if tc.dbFails && (!strings.Contains(st.Error, "member statefulset/db failed") || !strings.Contains(st.Members[1].Error, "1 of 1 hosts failed")) {
				t.Errorf("session error %q, member %+v", st.Error, st.Members[1])
			}
			web, job := hostStatus(t, c, "app-29001-deployment-web-host-0")
			if job.Annotations[api.AnnotationTarget] != "deployment/web" || web.Phase != api.PhaseSucceeded {
				t.Errorf("web host job: %+v %v", web, job.Annotations)
			}
			_, dbJob := hostStatus(t, c, "app-29001-statefulset-db-host-0")
			var spec api.HostSpec
			if err := api.Decode(api.AnnotationHostSpec, dbJob.Spec.Template.Annotations[api.AnnotationHostSpec], &spec); err != nil {
				t.Fatal(err)
			}
			if spec.Pod != "db-0" || spec.Dump == nil || spec.Dump.Preset != "postgres" || spec.Dump.Container != "postgres" ||
				spec.Dump.FileName != "dumpfile.sql" || !strings.Contains(spec.Dump.DumpCommand, "pg_dumpall") || len(spec.Paths) != 0 {
				t.Errorf("database host spec %+v (dump %+v)", spec, spec.Dump)
			}
			if len(dbJob.Spec.Template.Spec.Volumes) != 2 { // /tmp and the cache: no data volume
				t.Errorf("database host pod volumes %v, want only tmp and cache", dbJob.Spec.Template.Spec.Volumes)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.order == api.OrderSequential && (overlap || len(order) != 2 || !strings.Contains(order[0], "deployment-web")) {
				t.Errorf("sequential members ran %v (overlapping: %v)", order, overlap)
			}
		})
	}
}

// TestBatchMemberNotFound: a member whose target does not exist fails alone; the others
// are backed up.
func TestBatchMemberNotFound(t *testing.T) {
	self := sessionJob("app-29002", time.Now())
	c := fake.NewClientset(self)
	ctx := context.Background()
	c.AppsV1().Deployments(ns).Create(ctx, deploymentWith(pvcVolume), metav1.CreateOptions{})
	c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, boundPVC("data", corev1.ReadWriteMany), metav1.CreateOptions{})
	stop := hostSim(t, c, func(j *batchv1.Job) {
		annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1s"})
	})
	defer stop()
	cfg := api.BackupConfig{SchemaVersion: 1, Name: "app", Repository: "repo", Image: "stash-job:test",
		Members: []api.Member{
			{Target: api.Target{Kind: "statefulset", Name: "gone"}, Paths: []string{"/data"}},
			{Target: api.Target{Kind: "deployment", Name: "web"}, Paths: []string{"/source/data"}},
		}}
	s := &Session{Client: c, Namespace: ns, Job: self.Name, Config: cfg, RepoURL: "s3://bucket/x", Poll: 10 * time.Millisecond}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if phase, _ := s.Run(rctx); phase != api.PhaseFailed {
		t.Fatalf("phase %s, want Failed", phase)
	}
	st := sessionStatus(t, c, self.Name)
	if st.Members[0].Phase != api.PhaseFailed || !strings.Contains(st.Members[0].Error, "target statefulset/gone not found") ||
		st.Members[1].Phase != api.PhaseSucceeded {
		t.Errorf("members %+v", st.Members)
	}
}
