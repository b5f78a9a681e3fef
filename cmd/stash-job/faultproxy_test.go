//go:build objectstores

// Backups and restores against the real S3 server (VersityGW, started by
// test/objectstores/objectstores.sh) through a proxy on 127.0.0.1 that breaks 5 % of
// the requests: dropped connections, lost responses, truncated responses, delays,
// 500 and 503 answers.
//
//	make objectstores-up && . "$(test/objectstores/objectstores.sh env)" &&
//	go test -tags objectstores -run TestS3ThroughFaultyProxy ./cmd/stash-job
//
// test/soak/faults.sh runs it with more rounds.

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest/faultproxy"
	"github.com/kubectl-stash/kubectl-stash/internal/testutil"
)

// proxySource writes many small files and a few MiB-sized ones; each round changes
// some of both.
func proxySource(t *testing.T, src string, round int) {
	t.Helper()
	for i := range 400 {
		if round > 0 && i%23 != round%23 {
			continue
		}
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%03d.log", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, testutil.LogText(50+i*11, uint64(i+1000*round)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if round > 0 && i != round%3 {
			continue
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("big%d.bin", i)), testutil.RandomBytes(2<<20+i*700_000, uint64(round*10+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestS3ThroughFaultyProxy(t *testing.T) {
	base := os.Getenv("STASH_TEST_S3_URL")
	if base == "" {
		t.Fatal("STASH_TEST_S3_URL is not set: start the servers with `make objectstores-up` and source the env file")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	endpoint, err := url.Parse(u.Query().Get("endpoint"))
	if err != nil || endpoint.Host == "" {
		t.Fatalf("no endpoint in %s", base)
	}
	const rate = 0.05
	proxy, err := faultproxy.Start(faultproxy.Config{Target: endpoint.Host, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	id := make([]byte, 6)
	rand.Read(id)
	q := u.Query()
	q.Set("endpoint", "http://"+proxy.Addr())
	u.RawQuery = q.Encode()
	u.Path = "/faults-" + hex.EncodeToString(id)
	repoURL := u.String()
	display := "s3://" + u.Host + u.Path
	t.Logf("repository %s through %s", display, proxy.Addr())
	defer func() { // remove what the run wrote, directly (not through the proxy)
		direct := *u
		q := direct.Query()
		q.Set("endpoint", endpoint.String())
		direct.RawQuery = q.Encode()
		st, err := store.Open(context.Background(), direct.String(), store.Options{})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer st.Close()
		var keys []string
		st.List(context.Background(), "", func(o store.Object) error { keys = append(keys, o.Key); return nil })
		for _, k := range keys {
			st.Delete(context.Background(), k)
		}
	}()

	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("faulty proxy password"), 0o600)
	common := []string{"--repo", repoURL, "--password-file", pw}
	if out, err := stashJob(t, append([]string{"init"}, common...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	proxy.SetRate(rate)

	src := filepath.Join(dir, "src")
	want := map[string]map[string]string{} // tag -> source tree
	rounds := testutil.Pick(3, 15)
	var backups, backupsFailed, restores, restoresFailed int
	clear := func(what string, err error) {
		t.Helper()
		if !strings.Contains(err.Error(), display) {
			t.Errorf("%s failed with an error that does not name the repository: %v", what, err)
		}
	}
	for round := range rounds {
		proxySource(t, src, round)
		tag := fmt.Sprintf("round-%d", round)
		want[tag] = testutil.TreeDigest(t, src)
		out, err := stashJob(t, append(append([]string{"backup"}, common...), "--host", "h", "--tag", tag, src)...)
		if err != nil {
			backupsFailed++
			t.Logf("round %d: backup failed: %v", round, err)
			clear("backup", err)
			continue
		}
		backups++
		target := filepath.Join(dir, "restore-"+tag)
		out, err = stashJob(t, append(append([]string{"restore"}, common...), "latest", "--host", "h", "--target", target)...)
		if err != nil {
			restoresFailed++
			t.Logf("round %d: restore failed: %v\n%s", round, err, out)
			clear("restore", err)
			continue
		}
		restores++
		if diff := testutil.DiffTrees(want[tag], testutil.TreeDigest(t, filepath.Join(target, src))); diff != "" {
			t.Errorf("round %d: the restore succeeded but differs: %s", round, diff)
		}
		os.RemoveAll(target)
	}
	faults := proxy.String()
	t.Logf("%d rounds at %.0f %% faults: %s", rounds, rate*100, faults)
	figure(t, "S3 through the fault proxy, %.0f %% faults, %d rounds: %s; backups ok %d failed %d, restores ok %d failed %d",
		rate*100, rounds, faults, backups, backupsFailed, restores, restoresFailed)
	if backups == 0 {
		t.Errorf("no backup succeeded at %.0f %% faults", rate*100)
	}

	// With the faults off: the repository is sound and every snapshot in it restores
	// to exactly what it was taken of.
	proxy.SetRate(0)
	if out, err := stashJob(t, append(append([]string{"check"}, common...), "--read-data")...); err != nil {
		t.Fatalf("check --read-data after the faulty rounds: %v\n%s", err, out)
	}
	out, err := stashJob(t, append(append([]string{"snapshots"}, common...), "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var snaps []struct {
		ID   string   `json:"id"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("snapshots -o json: %v\n%s", err, out)
	}
	if len(snaps) < backups {
		t.Errorf("%d snapshots, %d backups succeeded", len(snaps), backups)
	}
	for _, sn := range snaps {
		if len(sn.Tags) != 1 || want[sn.Tags[0]] == nil {
			t.Fatalf("snapshot %s has tags %v", sn.ID, sn.Tags)
		}
		target := filepath.Join(dir, "final-"+sn.ID[:8])
		if out, err := stashJob(t, append(append([]string{"restore"}, common...), sn.ID, "--target", target)...); err != nil {
			t.Errorf("snapshot %s (%s) does not restore: %v\n%s", sn.ID[:8], sn.Tags[0], err, out)
			continue
		}
		if diff := testutil.DiffTrees(want[sn.Tags[0]], testutil.TreeDigest(t, filepath.Join(target, src))); diff != "" {
			t.Errorf("snapshot %s (%s) restores differently: %s", sn.ID[:8], sn.Tags[0], diff)
		}
		os.RemoveAll(target)
	}
	figure(t, "S3 through the fault proxy: check --read-data clean, %d snapshots, all restore bit-identically", len(snaps))
}
