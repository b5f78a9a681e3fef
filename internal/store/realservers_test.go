//go:build objectstores

// The conformance suite against real object-store servers: S3 (VersityGW), GCS
// (fake-gcs-server) and Azure (Azurite) on 127.0.0.1, started by
//
//	make objectstores-up && make test-objectstores
//
// which exports the URLs and credentials below (test/objectstores/objectstores.sh).

package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"

	"github.com/kubectl-stash/kubectl-stash/internal/store"
	"github.com/kubectl-stash/kubectl-stash/internal/store/storetest"
)

// servers lists each server's URL variable and the variables its driver reads.
var servers = []struct {
	name   string
	urlEnv string
	creds  []string
}{
	{"s3", "STASH_TEST_S3_URL", []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
	{"gcs", "STASH_TEST_GCS_URL", []string{"STORAGE_EMULATOR_HOST"}},
	{"azblob", "STASH_TEST_AZBLOB_URL", []string{"AZURE_STORAGE_CONNECTION_STRING"}},
}

// env returns the variable or fails the test: with the objectstores tag, a server
// that is not configured is an error, not a reason to skip.
func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: start the servers with `make objectstores-up` and run `make test-objectstores`", name)
	}
	return v
}

// withPath returns rawURL with p appended to its path (the key prefix).
func withPath(t *testing.T, rawURL, p string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parsing the server URL: %v", err)
	}
	u.Path = "/" + path.Join(strings.Trim(u.Path, "/"), p)
	return u.String()
}

// runID makes this run's prefix unique, so reruns against the same servers never
// meet an earlier run's objects.
func runID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "conformance-" + hex.EncodeToString(b)
}

func TestRealServers(t *testing.T) {
	run := runID(t)
	t.Logf("key prefix of this run: %s/", run)
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			base := env(t, srv.urlEnv)
			for _, c := range srv.creds {
				env(t, c)
			}
			root := withPath(t, base, run)
			rootStore := openT(t, root)
			if err := rootStore.Check(t.Context()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			t.Cleanup(func() { deleteAll(t, rootStore) })

			storetest.RunPrefixed(t, func(t *testing.T, prefix string) *store.Store {
				return openT(t, withPath(t, root, prefix))
			})
		})
	}
}

// deleteAll removes what the run wrote, through the Store under test.
func deleteAll(t *testing.T, s *store.Store) {
	ctx := context.Background() // t.Context() is done when cleanups run
	var keys []string
	if err := s.List(ctx, "", func(o store.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
	}
	var left int
	if err := s.List(ctx, "", func(store.Object) error { left++; return nil }); err != nil || left != 0 {
		t.Errorf("cleanup: %d objects left after deleting %d (%v)", left, len(keys), err)
	}
}

// TestRealServersCheck: Check tells a missing bucket and bad credentials apart, with
// the errors the real services give.
func TestRealServersCheck(t *testing.T) {
	missing := "stash-missing-" + runID(t)[len("conformance-"):]
	for _, srv := range servers {
		t.Run(srv.name+"/missing bucket", func(t *testing.T) {
			u, err := url.Parse(env(t, srv.urlEnv))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = missing
			err = openT(t, u.String()).Check(t.Context())
			if !errors.Is(err, store.ErrNoBucket) || !strings.Contains(err.Error(), missing) {
				t.Fatalf("Check of a missing bucket = %v, want ErrNoBucket naming it", err)
			}
		})
	}

	// Wrong credentials. The GCS emulator does not check credentials at all, and the
	// drivers read theirs from the environment once per process, so these buckets
	// are built here with explicit credentials.
	t.Run("s3/wrong secret", func(t *testing.T) {
		u, err := url.Parse(env(t, "STASH_TEST_S3_URL"))
		if err != nil {
			t.Fatal(err)
		}
		c := s3.New(s3.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(u.Query().Get("endpoint")),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(env(t, "AWS_ACCESS_KEY_ID"), "not-the-secret", ""),
		})
		b, err := s3blob.OpenBucket(t.Context(), c, u.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkDenied(t, store.NewFromBucket(b, u.String(), store.Options{}), "not-the-secret")
	})
	t.Run("azblob/wrong key", func(t *testing.T) {
		u, err := url.Parse(env(t, "STASH_TEST_AZBLOB_URL"))
		if err != nil {
			t.Fatal(err)
		}
		cs := wrongAccountKey(env(t, "AZURE_STORAGE_CONNECTION_STRING"))
		c, err := container.NewClientFromConnectionString(cs, u.Host, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := azureblob.OpenBucket(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkDenied(t, store.NewFromBucket(b, u.String(), store.Options{}), "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3JvbmdrZXk=")
	})
}

// checkDenied wants Check and an upload to fail with ErrPermission, at once (no retries),
// with an error that names the bucket's URL and not the secret.
func checkDenied(t *testing.T, s *store.Store, secret string) {
	t.Helper()
	defer s.Close()
	start := time.Now()
	for what, err := range map[string]error{"Check": s.Check(t.Context()), "Put": s.Put(t.Context(), "denied", []byte("x"))} {
		if !errors.Is(err, store.ErrPermission) {
			t.Errorf("%s with wrong credentials = %v, want ErrPermission", what, err)
			continue
		}
		if !strings.Contains(err.Error(), s.URL()) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s with wrong credentials: %q should name %s and not the secret", what, err, s.URL())
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("wrong credentials took %s to report: retried", d)
	}
}

// wrongAccountKey replaces the AccountKey of a connection string with another valid
// base64 key.
func wrongAccountKey(cs string) string {
	parts := strings.Split(cs, ";")
	for i, p := range parts {
		if strings.HasPrefix(p, "AccountKey=") {
			parts[i] = "AccountKey=" + "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3JvbmdrZXk="
		}
	}
	return strings.Join(parts, ";")
}
