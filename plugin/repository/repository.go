// Package repository is the plugin's side of a repository Secret: it builds the Secret
// `kubectl stash repo create` writes, reads one back into a Repository (URL, password,
// backend credentials, the claim of a pvc:// repository) with errors that name the Secret
// and the fix, gives a Job's pod what it needs to reach the repository (envFrom, the claim
// mount), and opens the repository from the user's machine through the engine.
//
// The Secret's format (internal/api is the contract):
//
//	metadata.labels:
//	  app.kubernetes.io/managed-by: kubectl-stash
//	  kubectl-stash.io/repository:  NAME
//	type: Opaque
//	data:
//	  STASH_REPOSITORY: s3://bucket/prefix?region=…  (or gs://, azblob://, file://, pvc://CLAIM/dir)
//	  STASH_PASSWORD:   the repository password
//	  AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, …: backend credentials, under the names their SDKs read
//
// Every key becomes an environment variable of the pods that use the repository (envFrom),
// so every key must be a valid environment variable name.
package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-stash/kubectl-stash/internal/api"
)

// Repository is a repository Secret, read and checked.
type Repository struct {
	// Name and Namespace are the Secret's.
	Name      string
	Namespace string
	// URL is STASH_REPOSITORY as stored: a gocloud.dev/blob URL, or pvc://CLAIM/sub/dir.
	URL string
	// Password is STASH_PASSWORD.
	Password string
	// Env holds every other key of the Secret: the backend's credentials.
	Env map[string]string
	// Claim is the PersistentVolumeClaim of a pvc:// repository, else "".
	Claim string
	// PodURL is the URL a pod opens: for pvc:// the file:// URL below api.RepositoryMountPath
	// where PodAccess mounts the claim, else URL.
	PodURL string
	// Managed reports whether kubectl stash created the Secret (it has our labels).
	Managed bool
	// Secret is the object read, for callers that print or update it.
	Secret *corev1.Secret
}

// ErrNotFound is wrapped by Get's error when the Secret does not exist.
var ErrNotFound = errors.New("repository secret not found")

// NotFoundError says which Secret is missing and how to create it.
type NotFoundError struct{ Name, Namespace string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("secret %q not found in namespace %q: create it with kubectl stash repo create %s -n %s --url URL --generate-password",
		e.Name, e.Namespace, e.Name, e.Namespace)
}

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// Get reads the repository Secret name in namespace ns. Its error names the Secret and the
// fix: a missing Secret (wrapping ErrNotFound), a missing or empty key, an invalid URL.
func Get(ctx context.Context, c kubernetes.Interface, ns, name string) (*Repository, error) {
	s, err := c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{Name: name, Namespace: ns}
	}
	if err != nil {
		return nil, fmt.Errorf("read repository secret %q in namespace %q: %w", name, ns, err)
	}
	return FromSecret(s)
}

// FromSecret checks a Secret and reads the repository it describes. The Secret need not
// carry our labels: a hand-written one (GitOps) works when its keys are right.
func FromSecret(s *corev1.Secret) (*Repository, error) {
	data := secretData(s)
	fix := fmt.Sprintf("add the key, or recreate the secret with kubectl stash repo create %s -n %s --url URL --overwrite", s.Name, s.Namespace)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("secret %q in namespace %q is not a usable repository: %s (%s)", s.Name, s.Namespace, fmt.Sprintf(format, a...), fix)
	}
	for _, k := range []string{api.SecretKeyRepository, api.SecretKeyPassword} {
		v, ok := data[k]
		if !ok {
			return nil, bad("it has no key %s", k)
		}
		if strings.TrimSpace(v) == "" {
			return nil, bad("its key %s is empty", k)
		}
	}
	r := &Repository{
		Name:      s.Name,
		Namespace: s.Namespace,
		URL:       strings.TrimSpace(data[api.SecretKeyRepository]),
		Password:  data[api.SecretKeyPassword],
		Env:       map[string]string{},
		Managed:   IsManaged(s),
		Secret:    s,
	}
	if err := ValidateURL(r.URL); err != nil {
		return nil, fmt.Errorf("secret %q in namespace %q, key %s: %w", s.Name, s.Namespace, api.SecretKeyRepository, err)
	}
	for k, v := range data {
		if k != api.SecretKeyRepository && k != api.SecretKeyPassword {
			r.Env[k] = v
		}
	}
	r.PodURL = r.URL
	if claim, fileURL, ok, err := api.PVCRepository(r.URL); ok {
		if err != nil {
			return nil, fmt.Errorf("secret %q in namespace %q, key %s: %w", s.Name, s.Namespace, api.SecretKeyRepository, err)
		}
		r.Claim, r.PodURL = claim, fileURL
	}
	return r, nil
}

// secretData is what the API server stores: data, with stringData written over it (a
// Secret read from a manifest, or from a fake clientset, may still have stringData).
func secretData(s *corev1.Secret) map[string]string {
	out := make(map[string]string, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// IsManaged reports whether kubectl stash created s: it has the managed-by label and the
// repository label naming s.
func IsManaged(s *corev1.Secret) bool {
	return s.Labels[api.LabelManagedBy] == api.ManagedByValue && s.Labels[api.LabelRepository] == s.Name
}

// CredentialKeys lists the names of the backend credentials, sorted (their values are secret).
func (r *Repository) CredentialKeys() []string {
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DisplayURL is the URL without user info and secret-looking parameters, for messages.
func (r *Repository) DisplayURL() string { return DisplayURL(r.URL) }

// NewSecret builds the Secret of a repository (see the package documentation). ns may be
// empty, for a manifest that takes the namespace it is applied to.
func NewSecret(name, ns, url, password string, env map[string]string) *corev1.Secret {
	data := map[string][]byte{
		api.SecretKeyRepository: []byte(url),
		api.SecretKeyPassword:   []byte(password),
	}
	for k, v := range env {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels: map[string]string{
				api.LabelManagedBy:  api.ManagedByValue,
				api.LabelRepository: name,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// List returns the repository Secrets (those labelled api.LabelRepository) of namespace
// ns, or of every namespace when ns is "", sorted by namespace and name.
func List(ctx context.Context, c kubernetes.Interface, ns string) ([]corev1.Secret, error) {
	l, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: api.LabelRepository})
	if err != nil {
		where := fmt.Sprintf("namespace %q", ns)
		if ns == "" {
			where = "any namespace"
		}
		return nil, fmt.Errorf("list repository secrets in %s: %w", where, err)
	}
	items := l.Items
	sort.Slice(items, func(i, j int) bool {
		if items[i].Namespace != items[j].Namespace {
			return items[i].Namespace < items[j].Namespace
		}
		return items[i].Name < items[j].Name
	})
	return items, nil
}
