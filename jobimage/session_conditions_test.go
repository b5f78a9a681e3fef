package jobimage

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// A configuration with a retention policy records RetentionPolicyApplied from its hosts;
// with --prune, a prune Job runs after the hosts and RepositoryPruned records its result.
func TestSessionRetentionAndPruneConditions(t *testing.T) {
	c := fake.NewClientset(deploymentWith(pvcVolume), boundPVC("data", corev1.ReadWriteOnce))
	self := sessionJob("web-backup-abc", time.Now())
	if _, err := c.BatchV1().Jobs(ns).Create(context.Background(), self, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stop := hostSim(t, c, func(j *batchv1.Job) {
		annotateHost(t, c, j.Name, api.HostStatus{Hostname: "host-0", Phase: api.PhaseSucceeded, Duration: "1s", Retention: "/source/data: kept 2, removed 1"})
	})
	defer stop()
	// the prune Job "runs": it completes with its summary as the termination message
	go func() {
		for {
			j, err := c.BatchV1().Jobs(ns).Get(context.Background(), api.HostJobName("web-backup-abc", "prune"), metav1.GetOptions{})
			if err == nil {
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x", Namespace: ns, Labels: map[string]string{api.JobNameLabel: j.Name}},
					Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "prune", State: corev1.ContainerState{
						Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: "reclaimed 3.0 MiB, 2 packs deleted"}}}}}}
				c.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
				c.BatchV1().Jobs(ns).UpdateStatus(context.Background(), j, metav1.UpdateOptions{})
				if args := j.Spec.Template.Spec.Containers[0].Args; strings.Join(args, " ") != "prune --repo $(STASH_REPOSITORY)" {
					t.Errorf("prune job args %v", args)
				}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	cfg := testConfig()
	cfg.Retention, cfg.Prune = api.Retention{KeepLast: 2}, true
	s := &Session{Client: c, Namespace: ns, Job: self.Name, Config: cfg, RepoURL: "s3://bucket/x", Poll: 10 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if phase, err := s.Run(ctx); phase != api.PhaseSucceeded || err != nil {
		t.Fatalf("phase %s, %v", phase, err)
	}
	st := sessionStatus(t, c, self.Name)
	got := map[string]api.Condition{}
	for _, cond := range st.Conditions {
		got[cond.Type] = cond
	}
	if r := got[api.ConditionRetentionPolicyApplied]; r.Status != "True" || !strings.Contains(r.Message, "host-0: /source/data: kept 2, removed 1") {
		t.Errorf("RetentionPolicyApplied %+v", r)
	}
	if p := got[api.ConditionRepositoryPruned]; p.Status != "True" || p.Message != "reclaimed 3.0 MiB, 2 packs deleted" {
		t.Errorf("RepositoryPruned %+v", p)
	}
}
