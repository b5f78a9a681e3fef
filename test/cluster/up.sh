#!/bin/bash
# up.sh - bring up a single-node, real Kubernetes cluster (etcd + kube-apiserver +
# kube-controller-manager + kube-scheduler + containerd/runc + kubelet + kube-proxy + bridge CNI)
# on one Linux machine, with NO container registry access.
#
# Everything is built from the Go module proxy (k8s.io/kubernetes + etcd) or installed via apt
# (containerd, runc, CNI plugins, iptables). Images (pause + any test image) are built locally
# as static Go binaries on an empty base and imported into containerd.
#
# Idempotent: re-running skips what is already built/running. Built binaries are cached in
# $CLUSTER_DIR/bin, keyed on a hash of every build input; Go caches in $CLUSTER_DIR/cache.
# $CLUSTER_DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/kubectl-stash/cluster: outside the clone.
#
# Usage: up.sh                 build what is missing, start the cluster
#        up.sh import TARBALL  import an image tarball (OCI layout or docker archive) into
#                              the running cluster's containerd
#        up.sh stop|start|restart kube-apiserver|kubelet
#                              stop (SIGTERM to the PID this script started, wait for its
#                              exit) or start one component of the running cluster: the
#                              reliability tests' cluster faults (docs/reliability.md)
#
# Env knobs:
#   CLUSTER_DIR   (default: ~/.cache/kubectl-stash/cluster)   all state lives here
#   NODE_IP       (default: 10.200.0.1, added to lo: no test traffic leaves the machine)
#   NODE_NAME     (default: node1)
#   WITH_NODE=0   control plane only (no containerd/kubelet/kube-proxy; pods stay Pending)
#   BUILD_ONLY=1  only build/cache binaries + images, start nothing
#   APT=0         do not apt-get install missing packages
#   BIN_DIR       (default $CLUSTER_DIR/bin)   cached binaries/images; CACHE_DIR (default $CLUSTER_DIR/cache) Go caches
#   WITH_DNS=0    skip CoreDNS (saves its build); pods then use the node's resolv.conf
#
# After it finishes:  export KUBECONFIG=$CLUSTER_DIR/run/admin.kubeconfig ; $CLUSTER_DIR/bin/kubectl get nodes
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Heavy outputs and cluster state live outside the clone, so a fresh clone reuses them.
CLUSTER_DIR=${CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-stash/cluster}
K8S_VERSION=1.34.4            # k8s.io/kubernetes v1.34.4, staging modules v0.34.4
ETCD_VERSION=3.6.4            # go.etcd.io/etcd/server/v3 (the version k8s 1.34.4 itself pins)
GCR_VERSION=v0.20.6           # github.com/google/go-containerregistry (image tarball writer)
PAUSE_IMAGE=registry.k8s.io/pause:3.10   # built locally; name matches containerd/kubelet defaults
NODE_NAME=${NODE_NAME:-node1}
WITH_NODE=${WITH_NODE:-1}
BUILD_ONLY=${BUILD_ONLY:-0}
APT=${APT:-1}
WITH_DNS=${WITH_DNS:-1}       # CoreDNS (minimal plugin set, built from the Go proxy) as a pod
COREDNS_VERSION=1.12.4        # github.com/coredns/coredns (uses client-go v0.34)
COREDNS_IMAGE=local.test/coredns:$COREDNS_VERSION
DNS_IP=10.96.0.10
SERVICE_CIDR=10.96.0.0/16
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16

BIN=${BIN_DIR:-$CLUSTER_DIR/bin}          # built binaries + image tarballs (cache this in CI)
CACHE=${CACHE_DIR:-$CLUSTER_DIR/cache}    # Go module + build caches
SRC=$CLUSTER_DIR/src
RUN=$CLUSTER_DIR/run
PKI=$RUN/pki
LOGS=$RUN/logs
PIDS=$RUN/pids
CTRD_SOCK=$RUN/containerd/containerd.sock
export GOPATH=$CACHE/gopath GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gobuild
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
export PATH=$BIN:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

T0=$(date +%s%N)
ts() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '%4d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }
log() { echo "[$(ts)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
mkdir -p "$BIN" "$SRC" "$RUN" "$PKI" "$LOGS" "$PIDS"

# ---------------------------------------------------------------- packages
need_pkgs() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v ip >/dev/null || missing+=(iproute2)
  # not the cluster's own: the e2e tests drive `kubectl stash watch` in a real terminal
  command -v tmux >/dev/null || missing+=(tmux)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$APT" = 1 ] || die "missing packages: ${missing[*]}"
    log "apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's packages ship systemd units; there is no systemd here, nothing auto-starts.
  fi
}

# ---------------------------------------------------------------- build (cached)
LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS="$LDFLAGS -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(echo $K8S_VERSION | cut -d. -f2) -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
done

write_k8s_module() {
  local d=$SRC/k8s
  mkdir -p $d/cmd/k8s
  local minor; minor=$(echo $K8S_VERSION | cut -d. -f2-)
  {
    echo "module local/k8sbuild"; echo; echo "go 1.24.0"; echo; echo "godebug default=go1.24"; echo
    echo "require ("
    echo "	k8s.io/kubernetes v$K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
    echo ")"; echo; echo "replace ("
    # every k8s.io staging module that k8s.io/kubernetes requires as v0.0.0
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
      cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
      cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
      kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
      mount-utils pod-security-admission sample-apiserver; do
      echo "	k8s.io/$m => k8s.io/$m v0.$minor"
    done
    echo ")"
  } > $d/go.mod.in
  # multi-call ("hyperkube"-style) binary: one link instead of seven
  cat > $d/cmd/k8s/main.go <<'EOF'
// k8s: multi-call binary. Dispatch on basename(argv[0]) (symlinks) or on argv[1].
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "time/tzdata" // CronJob time zones

	etcdmain "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	cm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	cri "k8s.io/cri-client/pkg"
)

// criPods implements the two crictl bits we need: list (cri-ps) and stop+remove all pod
// sandboxes (cri-rmp; containerd then runs CNI DEL, removes netns, unmounts rootfs).
func criPods(endpoint string, remove bool) int {
	rs, err := cri.NewRemoteRuntimeService(endpoint, 20*time.Second, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rc := 0
	for _, p := range pods {
		fmt.Printf("%s %s/%s %s\n", p.Id[:13], p.Metadata.Namespace, p.Metadata.Name, p.State)
		if !remove {
			continue
		}
		if err := rs.StopPodSandbox(ctx, p.Id); err != nil {
			fmt.Fprintln(os.Stderr, "stop", p.Id, err)
			rc = 1
		}
		if err := rs.RemovePodSandbox(ctx, p.Id); err != nil {
			fmt.Fprintln(os.Stderr, "remove", p.Id, err)
			rc = 1
		}
	}
	return rc
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if name == "k8s" && len(os.Args) > 1 {
		name = os.Args[1]
		args = append([]string{name}, os.Args[2:]...)
	}
	os.Args = args
	switch strings.TrimSuffix(name, ".exe") {
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(cm.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	case "etcd":
		etcdmain.Main(os.Args)
	case "cri-ps", "cri-rmp":
		if len(os.Args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: k8s", name, "unix:///path/to/containerd.sock")
			os.Exit(2)
		}
		os.Exit(criPods(os.Args[1], name == "cri-rmp"))
	case "kubectl":
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: k8s {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl|etcd|cri-ps|cri-rmp} [args]")
		os.Exit(2)
	}
}
EOF
}

build_k8s() {
  write_k8s_module
  local id; id=$( (cat $SRC/k8s/go.mod.in $SRC/k8s/cmd/k8s/main.go; echo "$LDFLAGS"; go version) | sha256sum | cut -c1-16)
  if [ -x $BIN/k8s ] && [ "$(cat $BIN/.k8s-build-id 2>/dev/null)" = "$id" ]; then return 0; fi
  log "building k8s multi-call binary (k8s v$K8S_VERSION + etcd v$ETCD_VERSION); a cold build takes about 8-15 min on 2 cores"
  local s=$(date +%s)
  cp $SRC/k8s/go.mod.in $SRC/k8s/go.mod; rm -f $SRC/k8s/go.sum
  ( cd $SRC/k8s && go mod tidy >$LOGS/build-k8s.log 2>&1 &&
    CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o $BIN/k8s.tmp ./cmd/k8s >>$LOGS/build-k8s.log 2>&1 ) \
    || { tail -30 $LOGS/build-k8s.log; die "k8s build failed (see $LOGS/build-k8s.log)"; }
  mv $BIN/k8s.tmp $BIN/k8s
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do ln -sf k8s $BIN/$c; done
  echo "$id" > $BIN/.k8s-build-id
  log "k8s binary built in $(( $(date +%s) - s ))s ($(du -h $BIN/k8s | cut -f1))"
}

write_images_module() {
  local d=$SRC/images
  mkdir -p $d/pause $d/mkimage
  cat > $d/pause/main.go <<'EOF'
// pause: minimal pod sandbox process (stand-in for registry.k8s.io/pause).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for { // reap zombies (shared PID namespace)
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
  cat > $d/mkimage/main.go <<'EOF'
// mkimage: write a single-layer linux/amd64 image (docker-archive tarball, importable with
// `ctr images import`) from local files. No registry access.
// usage: mkimage -tag REF -out FILE.tar [-entrypoint "/bin/x arg"] [-env K=V]... SRC:DST...
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	tag := flag.String("tag", "", "image reference")
	out := flag.String("out", "", "output tarball")
	ep := flag.String("entrypoint", "", "entrypoint (space separated)")
	var env multi
	flag.Var(&env, "env", "K=V (repeatable)")
	flag.Parse()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{"tmp/": true}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 01777, ModTime: epoch})
	for _, a := range flag.Args() {
		src, dst, _ := strings.Cut(a, ":")
		dst = strings.TrimPrefix(dst, "/")
		parts := strings.Split(dst, "/")
		for i := 1; i < len(parts); i++ {
			if d := strings.Join(parts[:i], "/") + "/"; !dirs[d] {
				dirs[d] = true
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0755, ModTime: epoch})
			}
		}
		b, err := os.ReadFile(src)
		if err != nil {
			log.Fatal(err)
		}
		st, _ := os.Stat(src)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dst, Mode: int64(st.Mode().Perm()), Size: int64(len(b)), ModTime: epoch})
		tw.Write(b)
	}
	tw.Close()
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		log.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		log.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	if *ep != "" {
		cf.Config.Entrypoint = strings.Fields(*ep)
	}
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		log.Fatal(err)
	}
	if err := tarball.WriteToFile(*out, ref, img); err != nil {
		log.Fatal(err)
	}
}
EOF
}

build_images() {
  local d=$SRC/images
  write_images_module
  local id; id=$( (echo $GCR_VERSION; cat $d/*/main.go; go version) | sha256sum | cut -c1-16)
  [ -f $BIN/images/pause.tar ] && [ -x $BIN/mkimage ] && [ "$(cat $BIN/images/.build-id 2>/dev/null)" = "$id" ] && return 0
  log "building pause/mkimage and image tarballs"
  if [ "$(cat $d/.gomod-ok 2>/dev/null)" != "$GCR_VERSION" ]; then
    printf 'module local/images\n\ngo 1.24.0\n\nrequire github.com/google/go-containerregistry %s\n' $GCR_VERSION > $d/go.mod
    rm -f $d/go.sum
    ( cd $d && go mod tidy >/dev/null 2>&1 ) || die "images module: go mod tidy failed"
    echo "$GCR_VERSION" > $d/.gomod-ok
  fi
  mkdir -p $BIN/images
  ( cd $d && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $BIN/images/pause ./pause &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $BIN/mkimage ./mkimage ) || die "image tools build failed"
  $BIN/mkimage -tag $PAUSE_IMAGE -out $BIN/images/pause.tar -entrypoint /pause $BIN/images/pause:/pause
  echo "$id" > $BIN/images/.build-id
}

build_coredns() {
  [ "$WITH_DNS" = 1 ] && [ "$WITH_NODE" = 1 ] || return 0
  local d=$SRC/coredns
  mkdir -p $d $BIN/images
  cat > $d/main.go <<'EOF'
// Minimal CoreDNS: only the plugins a test cluster needs (the full build pulls every cloud SDK).
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
EOF
  local id; id=$( (cat $d/main.go; echo $COREDNS_VERSION; go version) | sha256sum | cut -c1-16)
  [ -f $BIN/images/coredns.tar ] && [ "$(cat $BIN/images/.coredns-id 2>/dev/null)" = "$id" ] && return 0
  log "building CoreDNS v$COREDNS_VERSION (minimal plugin set)"
  local s=$(date +%s)
  printf 'module local/coredns\n\ngo 1.24.0\n\nrequire github.com/coredns/coredns v%s\n' $COREDNS_VERSION > $d/go.mod
  rm -f $d/go.sum
  ( cd $d && go mod tidy >$LOGS/build-coredns.log 2>&1 &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $BIN/images/coredns . >>$LOGS/build-coredns.log 2>&1 ) \
    || { tail -20 $LOGS/build-coredns.log; die "coredns build failed"; }
  [ -x $BIN/mkimage ] || build_images
  $BIN/mkimage -tag $COREDNS_IMAGE -out $BIN/images/coredns.tar -entrypoint /coredns $BIN/images/coredns:/coredns
  rm -f $BIN/images/coredns    # only the image tarball is needed (keeps the CI cache small)
  echo "$id" > $BIN/images/.coredns-id
  log "coredns built in $(( $(date +%s) - s ))s"
}

start_coredns() {
  [ "$WITH_DNS" = 1 ] || return 0
  wic $RUN/coredns.yaml <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 2s
        }
        ready
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {containerPort: 53, name: dns, protocol: UDP}
        - {containerPort: 53, name: dns-tcp, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: 8080}, initialDelaySeconds: 10}
        resources: {requests: {cpu: 50m, memory: 50Mi}, limits: {memory: 170Mi}}
        volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes:
      - name: config
        configMap: {name: coredns, items: [{key: Corefile, path: Corefile}]}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
  $BIN/kubectl --kubeconfig=$RUN/admin.kubeconfig apply -f $RUN/coredns.yaml >/dev/null
  log "coredns applied"
}

# ---------------------------------------------------------------- PKI + kubeconfigs
gen_pki() {
  cd $PKI
  # ECDSA P-256 everywhere (RSA-2048 key generation costs seconds on a busy 2-core VM)
  key() { openssl ecparam -name prime256v1 -genkey -noout -out $1 2>/dev/null; }
  for ca in ca front-proxy-ca; do
    [ -f $ca.crt ] || { key $ca.key; openssl req -x509 -new -key $ca.key -out $ca.crt -days 3650 -subj "/CN=$ca" 2>/dev/null; }
  done
  [ -f sa.key ] || { key sa.key; openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null; }
  mkcert() { # name CN O [SANs] [ca]
    local name=$1 cn=$2 o=$3 san=${4:-} ca=${5:-ca}
    [ -f $name.crt ] && return 0
    key $name.key
    local subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o/CN=$cn"
    openssl req -new -key $name.key -out $name.csr -subj "$subj" 2>/dev/null
    { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
      if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"
      else echo "extendedKeyUsage=clientAuth"; fi; } > $name.ext
    openssl x509 -req -in $name.csr -CA $ca.crt -CAkey $ca.key -CAcreateserial -out $name.crt -days 3650 -extfile $name.ext 2>/dev/null
    rm -f $name.csr $name.ext
  }
  mkcert apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP"
  mkcert admin kubernetes-admin system:masters
  mkcert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  mkcert controller-manager system:kube-controller-manager ""
  mkcert scheduler system:kube-scheduler ""
  mkcert kube-proxy system:kube-proxy ""
  mkcert kubelet-client "system:node:$NODE_NAME" system:nodes
  mkcert kubelet "$NODE_NAME" "" "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  mkcert front-proxy-client front-proxy-client "" "" front-proxy-ca
  cd - >/dev/null
  kc() { # file user cert
    local f=$RUN/$1.kubeconfig
    [ -f $f ] && return 0
    cat > $f <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 $PKI/ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 $PKI/$3.crt)
    client-key-data: $(base64 -w0 $PKI/$3.key)
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
  }
  kc admin admin admin
  kc controller-manager system:kube-controller-manager controller-manager
  kc scheduler system:kube-scheduler scheduler
  kc kubelet system:node:$NODE_NAME kubelet-client
  kc kube-proxy system:kube-proxy kube-proxy
}

# ---------------------------------------------------------------- process helpers
# A second cluster on this machine (another checkout, another CLUSTER_DIR) would share these
# ports and the node address; say so instead of half-starting on top of it.
check_ports_free() {
  local port listeners
  for port in 2379 6443 10250; do
    listeners=$(ss -Htlnp "sport = :$port" 2>/dev/null || true)
    [ -n "$listeners" ] || continue
    local pid; pid=$(grep -o 'pid=[0-9]*' <<<"$listeners" | head -1 | cut -d= -f2)
    # ours if it is one of the processes recorded under this cluster's run directory
    local n mine=0
    for n in etcd kube-apiserver kubelet; do
      [ -f $PIDS/$n.pid ] && [ "$(cat $PIDS/$n.pid)" = "$pid" ] && mine=1
    done
    [ $mine = 1 ] || die "port $port is already in use by pid ${pid:-?} ($(tr '\0' ' ' 2>/dev/null </proc/${pid:-0}/cmdline | cut -c1-120)): another cluster runs on this machine; stop it with its own test/cluster/down.sh"
  done
}
# write stdin to $1 only if the content differs (kube-proxy exits when its config file changes)
wic() { local t; t=$(mktemp "$1.XXXX"); cat > "$t"; if cmp -s "$t" "$1"; then rm -f "$t"; else mv "$t" "$1"; fi; }
# alive PID: the process exists and is not a zombie waiting to be reaped
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" != Z ]; }
running() { [ -f $PIDS/$1.pid ] && alive "$(cat $PIDS/$1.pid)"; }
start() { # name cmd...   (detached, own session, pid file, log file)
  local n=$1; shift
  if running $n; then log "$n already running (pid $(cat $PIDS/$n.pid))"; return 0; fi
  setsid "$@" >>$LOGS/$n.log 2>&1 < /dev/null &
  echo $! > $PIDS/$n.pid
  log "started $n (pid $!)"
}
wait_for() { # desc timeout cmd...
  local desc=$1 to=$2; shift 2
  local end=$(( $(date +%s) + to ))
  until "$@" >/dev/null 2>&1; do
    [ $(date +%s) -lt $end ] || die "timeout waiting for $desc"
    sleep 0.3
  done
  log "$desc: ready"
}

# ---------------------------------------------------------------- node IP
detect_node_ip() {
  # The node's address is one this script adds to the loopback device: every component and
  # every pod talks to it, and no test traffic ever leaves the machine.
  NODE_IP=${NODE_IP:-10.200.0.1}
  # `replace` adds the address or keeps it if a previous run left it behind
  ip addr replace $NODE_IP/32 dev lo
  # serving certs carry the node IP: re-issue them if it changed since the last run
  if [ -f $RUN/node-ip ] && [ "$(cat $RUN/node-ip)" != "$NODE_IP" ]; then
    rm -f $PKI/apiserver.* $PKI/kubelet.crt $PKI/kubelet.key
  fi
  echo "$NODE_IP" > $RUN/node-ip
}

# ---------------------------------------------------------------- control plane
start_etcd() {
  mkdir -p $RUN/etcd
  start etcd $BIN/etcd --name default --data-dir $RUN/etcd \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 2147483648 --snapshot-count 10000 --log-level warn
}

start_apiserver() {
  start kube-apiserver $BIN/kube-apiserver \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address=$NODE_IP \
    --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key \
    --client-ca-file=$PKI/ca.crt \
    --kubelet-client-certificate=$PKI/apiserver-kubelet-client.crt --kubelet-client-key=$PKI/apiserver-kubelet-client.key \
    --kubelet-certificate-authority=$PKI/ca.crt --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file=$PKI/sa.pub --service-account-signing-key-file=$PKI/sa.key \
    --service-cluster-ip-range=$SERVICE_CIDR \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --requestheader-client-ca-file=$PKI/front-proxy-ca.crt --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file=$PKI/front-proxy-client.crt --proxy-client-key-file=$PKI/front-proxy-client.key \
    --allow-privileged=true --profiling=false --v=1
}

start_cm_scheduler() {
  start kube-controller-manager $BIN/kube-controller-manager \
    --kubeconfig=$RUN/controller-manager.kubeconfig \
    --authentication-kubeconfig=$RUN/controller-manager.kubeconfig --authorization-kubeconfig=$RUN/controller-manager.kubeconfig \
    --bind-address=127.0.0.1 --leader-elect=false \
    --service-account-private-key-file=$PKI/sa.key --root-ca-file=$PKI/ca.crt --use-service-account-credentials=true \
    --cluster-signing-cert-file=$PKI/ca.crt --cluster-signing-key-file=$PKI/ca.key \
    --allocate-node-cidrs=true --cluster-cidr=$CLUSTER_CIDR --node-cidr-mask-size=24 --service-cluster-ip-range=$SERVICE_CIDR \
    --controllers='*,bootstrapsigner,tokencleaner' --profiling=false --v=1
  start kube-scheduler $BIN/kube-scheduler \
    --kubeconfig=$RUN/scheduler.kubeconfig \
    --authentication-kubeconfig=$RUN/scheduler.kubeconfig --authorization-kubeconfig=$RUN/scheduler.kubeconfig \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
}

# ---------------------------------------------------------------- node
start_containerd() {
  mkdir -p $RUN/containerd/root $RUN/containerd/state $RUN/cni/net.d $RUN/cni/ipam
  wic $RUN/containerd/config.toml <<EOF
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  # This VM's root has every capability except CAP_SYS_RESOURCE, so lowering oom_score_adj
  # (pause gets -998, Guaranteed pods -997) fails inside runc init with
  # "can't get final child's PID from pipe: EOF". Clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
EOF
  wic $RUN/cni/net.d/10-bridge.conflist <<EOF
{
  "cniVersion": "1.0.0",
  "name": "podnet",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$RUN/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR", "gateway": "${POD_CIDR%.0/24}.1"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  start containerd containerd --config $RUN/containerd/config.toml
}

import_images() {
  local ctr="ctr --address $CTRD_SOCK -n k8s.io"
  if [ "$(cat $RUN/containerd/.imported 2>/dev/null)" != "$(cat $BIN/images/.build-id)" ]; then
    $ctr images import $BIN/images/pause.tar >/dev/null
    cp $BIN/images/.build-id $RUN/containerd/.imported
  fi
  if [ "$WITH_DNS" = 1 ] && [ "$(cat $RUN/containerd/.imported-dns 2>/dev/null)" != "$(cat $BIN/images/.coredns-id)" ]; then
    $ctr images import $BIN/images/coredns.tar >/dev/null
    cp $BIN/images/.coredns-id $RUN/containerd/.imported-dns
  fi
  log "images imported: $($ctr images ls -q | grep -v sha256 | tr '\n' ' ')"
}

host_setup() {
  # kubelet would set these itself (and refuses to run with protectKernelDefaults if they differ);
  # remember the original values so down.sh can restore them.
  if [ ! -f $RUN/sysctl.orig ]; then
    for k in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops net.ipv4.ip_forward \
             net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables; do
      v=$(sysctl -n $k 2>/dev/null) && echo "$k $v"
    done > $RUN/sysctl.orig
  fi
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
  mkdir -p $RUN/pod-logs
}

start_kubelet() {
  mkdir -p $RUN/kubelet
  wic $RUN/kubelet-config.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
clusterDomain: cluster.local
$( [ "$WITH_DNS" = 1 ] && echo "clusterDNS: [$DNS_IP]" )
resolvConf: /etc/resolv.conf
podCIDR: $POD_CIDR
maxPods: 50
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
syncFrequency: 10s
volumePluginDir: $RUN/kubelet-plugins
podLogsDir: $RUN/pod-logs
oomScoreAdj: 0   # default -999 needs CAP_SYS_RESOURCE, which this VM does not grant
fileCheckFrequency: 10s
nodeStatusReportFrequency: 1m
EOF
  start kubelet $BIN/kubelet --config=$RUN/kubelet-config.yaml --kubeconfig=$RUN/kubelet.kubeconfig \
    --root-dir=$RUN/kubelet --hostname-override=$NODE_NAME --node-ip=$NODE_IP --v=1
}

start_kube_proxy() {
  wic $RUN/kube-proxy-config.yaml <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $RUN/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, min: 0}
oomScoreAdj: 0
EOF
  start kube-proxy $BIN/kube-proxy --config=$RUN/kube-proxy-config.yaml --v=1
}

# ---------------------------------------------------------------- image loading
# up.sh image REF STATIC_BINARY [ENTRYPOINT]: wrap a static binary into a single-layer image and
# import it into the cluster's containerd (use imagePullPolicy IfNotPresent/Never in pod specs).
load_image() {
  local ref=$1 bin=$2 ep=${3:-}
  [ -f "$bin" ] || die "no such file: $bin"
  [ -x $BIN/mkimage ] || build_images
  local name; name=$(basename "$bin"); ep=${ep:-/$name}
  mkdir -p $RUN/images
  local tar=$RUN/images/$(echo "$ref" | tr '/:@' '___').tar
  $BIN/mkimage -tag "$ref" -out "$tar" -entrypoint "$ep" "$bin:/$name"
  ctr --address $CTRD_SOCK -n k8s.io images import "$tar" >/dev/null
  log "imported $ref ($(du -h "$tar" | cut -f1))"
}

# readiness probes for the data path (Deployment "Available" is not enough: kube-proxy may not
# have programmed the Service yet, and a pod resolving names at that moment fails)
dns_ok() { # send one DNS query for kubernetes.default.svc.cluster.local to the kube-dns ClusterIP
  local r
  r=$(timeout 2 bash -c 'exec 3<>/dev/udp/'$DNS_IP'/53
    printf "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01" >&3
    head -c 2 <&3 | od -An -tx1' 2>/dev/null) || return 1
  [ "$(echo $r | tr -d ' ')" = 1234 ]
}
svc_programmed() { grep -q -- "$1" <<<"$(iptables -w -t nat -S KUBE-SERVICES 2>/dev/null)"; }

# ---------------------------------------------------------------- main
# component stop|start|restart NAME: one component of the running cluster, by the PID file
# this script wrote when it started it (never by name: another cluster may run here).
component() {
  local action=$1 n=$2
  case $n in kube-apiserver|kubelet) ;; *) die "component $n: only kube-apiserver and kubelet can be stopped and started";; esac
  [ -f $RUN/node-ip ] || die "the cluster is not running (no $RUN/node-ip): run 'make cluster-up' first"
  NODE_IP=$(cat $RUN/node-ip)
  if [ $action != start ]; then
    if running $n; then
      local pid; pid=$(cat $PIDS/$n.pid)
      # SIGTERM, and SIGKILL after 5 s: the API server's graceful shutdown would otherwise
      # keep serving for a while, and the tests want the component gone now
      kill -TERM "$pid"
      local i; for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then kill -KILL "$pid"; for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done; fi
      alive "$pid" && die "$n (pid $pid) did not exit"
      log "stopped $n (pid $pid)"
    else
      log "$n was not running"
    fi
  fi
  [ $action = stop ] && return 0
  case $n in
    kube-apiserver) start_apiserver
      wait_for "kube-apiserver /readyz" 120 curl -sf --cacert $PKI/ca.crt https://127.0.0.1:6443/readyz ;;
    kubelet) start_kubelet
      wait_for "node $NODE_NAME Ready" 120 $BIN/kubectl --kubeconfig=$RUN/admin.kubeconfig wait --for=condition=Ready node/$NODE_NAME --timeout=2s ;;
  esac
}

main() {
  if [ "${1:-}" = import ]; then
    [ $# -eq 2 ] && [ -f "$2" ] || die "usage: up.sh import IMAGE.tar (an existing file)"
    [ -S $CTRD_SOCK ] || die "the cluster is not running (no $CTRD_SOCK): run 'make cluster-up' first"
    ctr --address $CTRD_SOCK -n k8s.io images import "$2" >/dev/null || die "ctr could not import $2"
    log "imported $2: $(ctr --address $CTRD_SOCK -n k8s.io images ls -q | grep -v '^sha256:' | grep -v -e pause -e coredns | tr '\n' ' ')"
    return
  fi
  case "${1:-}" in stop|start|restart)
    [ $# -eq 2 ] || die "usage: up.sh stop|start|restart kube-apiserver|kubelet"
    component "$1" "$2"; return ;;
  esac
  if [ "${1:-}" = image ]; then shift; [ $# -ge 2 ] || die "usage: up.sh image REF STATIC_BINARY [ENTRYPOINT]"; load_image "$@"; return; fi
  [ "$(id -u)" = 0 ] || die "must run as root"
  need_pkgs
  command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
  build_k8s &
  local bk=$!
  build_images
  build_coredns
  wait $bk || die "build failed"
  log "binaries ready"
  [ "$BUILD_ONLY" = 1 ] && return 0

  check_ports_free
  detect_node_ip
  gen_pki
  local K="$BIN/kubectl --kubeconfig=$RUN/admin.kubeconfig"
  log "node ip $NODE_IP, node name $NODE_NAME"
  start_etcd
  if [ "$WITH_NODE" = 1 ]; then host_setup; start_containerd; fi
  wait_for "etcd health" 60 curl -sf http://127.0.0.1:2379/health
  start_apiserver
  wait_for "kube-apiserver /readyz" 120 curl -sf --cacert $PKI/ca.crt https://127.0.0.1:6443/readyz
  start_cm_scheduler
  if [ "$WITH_NODE" = 1 ]; then
    wait_for "containerd" 60 ctr --address $CTRD_SOCK version
    import_images
    start_kubelet
    start_kube_proxy
  fi
  wait_for "default serviceaccount" 120 $K get serviceaccount default -n default
  if [ "$WITH_NODE" = 1 ]; then
    start_coredns
    wait_for "node $NODE_NAME Ready" 180 $K wait --for=condition=Ready node/$NODE_NAME --timeout=2s
    wait_for "kube-proxy rules for default/kubernetes" 60 svc_programmed "default/kubernetes:https cluster IP"
    if [ "$WITH_DNS" = 1 ]; then
      wait_for "coredns Available" 180 $K -n kube-system wait --for=condition=Available deployment/coredns --timeout=2s
      wait_for "cluster DNS answering on $DNS_IP" 60 dns_ok
    fi
  fi
  log "cluster up. export KUBECONFIG=$RUN/admin.kubeconfig"
}
main "$@"
