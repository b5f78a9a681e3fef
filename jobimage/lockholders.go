package jobimage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServiceAccountTokenPath is where the kubelet mounts a pod's ServiceAccount token.
const ServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// PodLockHolders identify a job pod's repository locks by the pod, and decide that the
// holder of another lock has ended by asking the API server about its pod. A host pod
// killed with SIGKILL (OOM, a node lost) leaves its lock behind; without this, that lock
// would block the next prune, or a killed prune's lock every backup, until it goes stale.
//
// A holder is "k8s:<ServiceAccount UID>/<namespace>/<pod>/<pod UID>", read from the
// pod's own token. The ServiceAccount's UID is what makes the answer safe: two clusters
// (or namespaces) backing up into one bucket never share it, so a pod of another cluster
// that this API server does not know is never taken for gone.
type PodLockHolders struct {
	Client kubernetes.Interface
	self   podIdentity
}

type podIdentity struct {
	ServiceAccountUID, Namespace, Pod, PodUID string
}

func (p podIdentity) String() string {
	return "k8s:" + p.ServiceAccountUID + "/" + p.Namespace + "/" + p.Pod + "/" + p.PodUID
}

func parseHolder(h string) (podIdentity, bool) {
	rest, ok := strings.CutPrefix(h, "k8s:")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 {
		return podIdentity{}, false
	}
	for _, s := range parts {
		if s == "" {
			return podIdentity{}, false
		}
	}
	return podIdentity{parts[0], parts[1], parts[2], parts[3]}, true
}

// NewPodLockHolders reads the pod's identity from its ServiceAccount token (a projected,
// pod-bound token carries the pod's name and UID).
func NewPodLockHolders(client kubernetes.Interface, tokenPath string) (*PodLockHolders, error) {
	raw, err := os.ReadFile(tokenPath)
	if err != nil {
		return nil, err
	}
	id, err := tokenIdentity(string(raw))
	if err != nil {
		return nil, fmt.Errorf("service account token %s: %w", tokenPath, err)
	}
	return &PodLockHolders{Client: client, self: id}, nil
}

// tokenIdentity reads the claims of a pod-bound ServiceAccount token. The signature is
// not checked: the pod reads its own token, and only names itself with it.
func tokenIdentity(token string) (podIdentity, error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return podIdentity{}, fmt.Errorf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return podIdentity{}, fmt.Errorf("claims: %w", err)
	}
	var claims struct {
		K8s struct {
			Namespace string `json:"namespace"`
			Pod       struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"pod"`
			ServiceAccount struct {
				UID string `json:"uid"`
			} `json:"serviceaccount"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return podIdentity{}, fmt.Errorf("claims: %w", err)
	}
	id := podIdentity{ServiceAccountUID: claims.K8s.ServiceAccount.UID, Namespace: claims.K8s.Namespace,
		Pod: claims.K8s.Pod.Name, PodUID: claims.K8s.Pod.UID}
	if _, ok := parseHolder(id.String()); !ok {
		return podIdentity{}, fmt.Errorf("the token is not bound to a pod (claims %+v)", claims.K8s)
	}
	return id, nil
}

// Self is this pod's holder name.
func (h *PodLockHolders) Self() string { return h.self.String() }

// Gone reports whether the pod holding a lock has ended: it is a pod of this
// ServiceAccount (same cluster and namespace) and the API server says it no longer
// exists, was replaced by another pod of the same name, or has terminated. Anything else
// (another cluster, an error) answers false.
func (h *PodLockHolders) Gone(ctx context.Context, holder string) bool {
	id, ok := parseHolder(holder)
	if !ok || id.ServiceAccountUID != h.self.ServiceAccountUID || id.Namespace != h.self.Namespace {
		return false
	}
	pod, err := h.Client.CoreV1().Pods(id.Namespace).Get(ctx, id.Pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		return false
	}
	if string(pod.UID) != id.PodUID {
		return true
	}
	return podEnded(pod)
}

// podEnded: the pod's phase is final, or every container of it has terminated.
func podEnded(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return true
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Terminated == nil {
			return false
		}
	}
	return true
}
