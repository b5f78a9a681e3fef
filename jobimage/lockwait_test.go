package jobimage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
	"github.com/kubectl-stash/kubectl-stash/internal/engine/repo"
	"github.com/kubectl-stash/kubectl-stash/internal/store"
)

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A host that finds another host's retention (an exclusive lock) in progress waits for it
// instead of failing: this was a StatefulSet session with --keep-last failing at random.
func TestRunHostWaitsForAnExclusiveLock(t *testing.T) {
	url := newFileRepo(t)
	pw := []byte("host test password")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	st, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(context.Background(), st, pw, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Lock(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		lock.Release(context.Background())
	}()
	log := &syncBuilder{}
	rec := &recorder{}
	spec := api.HostSpec{Hostname: "host-1", Config: "c", Session: "s", Paths: []string{src}}
	if err := RunHost(context.Background(), HostRun{Spec: spec, RepoURL: url, Password: pw, Status: rec, Log: log}); err != nil {
		t.Fatalf("backup under another host's exclusive lock failed instead of waiting: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "repository busy") || rec.last().Phase != api.PhaseSucceeded {
		t.Errorf("log %q, status %+v", log.String(), rec.last())
	}
}
