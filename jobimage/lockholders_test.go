package jobimage

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// token is a pod-bound ServiceAccount token's shape (header.claims.signature).
func token(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
}

func TestPodLockHolders(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(token(`{"iss":"https://kubernetes.default.svc","kubernetes.io":{"namespace":"shop",
		"pod":{"name":"cfg-abc-host-0-x1","uid":"uid-self"},"serviceaccount":{"name":"stash-cfg","uid":"sa-1"}}}`)), 0o600)
	pod := func(name, uid string, phase corev1.PodPhase, terminated bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(uid)}, Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		if terminated {
			st = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "backup", State: st}}
		return p
	}
	client := fake.NewClientset(
		pod("running", "u-run", corev1.PodRunning, false),
		pod("failed", "u-failed", corev1.PodFailed, true),
		pod("killed", "u-killed", corev1.PodRunning, true), // phase not yet updated
		pod("renamed", "u-new", corev1.PodRunning, false),
	)
	h, err := NewPodLockHolders(client, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Self(), "k8s:sa-1/shop/cfg-abc-host-0-x1/uid-self"; got != want {
		t.Fatalf("Self() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		holder string
		gone   bool
	}{
		{"k8s:sa-1/shop/running/u-run", false},
		{"k8s:sa-1/shop/failed/u-failed", true},
		{"k8s:sa-1/shop/killed/u-killed", true},
		{"k8s:sa-1/shop/renamed/u-old", true},   // the name now belongs to another pod
		{"k8s:sa-1/shop/deleted/u-del", true},   // no such pod
		{"k8s:sa-2/shop/deleted/u-del", false},  // another ServiceAccount: maybe another cluster
		{"k8s:sa-1/other/deleted/u-del", false}, // another namespace
		{"k8s:sa-1/shop/deleted", false},        // not a pod holder
		{"laptop", false},
	} {
		if got := h.Gone(context.Background(), tc.holder); got != tc.gone {
			t.Errorf("Gone(%q) = %v, want %v", tc.holder, got, tc.gone)
		}
	}
	// a token not bound to a pod names nothing
	os.WriteFile(tok, []byte(token(`{"kubernetes.io":{"namespace":"shop","serviceaccount":{"uid":"sa-1"}}}`)), 0o600)
	if _, err := NewPodLockHolders(client, tok); err == nil {
		t.Error("a token without pod claims was accepted")
	}
}
