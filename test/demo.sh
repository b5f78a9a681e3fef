#!/bin/bash
# demo.sh - what `make demo` runs: bring up the local cluster, deploy a sample workload
# with data, back it up with kubectl stash (a configuration, two sessions), list the
# snapshots, and restore the latest one from the repository and compare.
# The cluster stays up afterwards so you can look around; `make cluster-down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "building the binaries and the job image"
make -s build image
say "starting the local cluster (first run builds Kubernetes from source: ~10-15 min)"
make -s cluster-up
export KUBECONFIG=$(make -s kubeconfig)
export PATH=$PWD/bin:$(make -s kubectl-path):$PATH
NS=stash-demo
NODE_DIR=$(dirname "$KUBECONFIG")/volumes/demo-data

say "deploying a sample workload with data (namespace $NS)"
mkdir -p "$NODE_DIR"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: stash-demo-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: $NS, name: data}
  hostPath: {path: $NODE_DIR, type: DirectoryOrCreate}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        imagePullPolicy: Never
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: data}
YAML
for i in 1 2 3; do head -c 100000 /dev/urandom | base64 > "$NODE_DIR/file-$i.txt"; done
kubectl -n $NS rollout status deploy/web --timeout=120s
ls -l "$NODE_DIR"

say "a repository on a PersistentVolumeClaim (pvc://), created by a Job in the cluster"
REPO_DIR=$(dirname "$KUBECONFIG")/volumes/demo-repo
mkdir -p "$REPO_DIR"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: stash-demo-repo}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  storageClassName: manual
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: $NS, name: repo}
  hostPath: {path: $REPO_DIR, type: DirectoryOrCreate}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: repo, namespace: $NS}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
YAML
PASSWORD_FILE=$(dirname "$KUBECONFIG")/demo-password
[ -s "$PASSWORD_FILE" ] || head -c 24 /dev/urandom | base64 > "$PASSWORD_FILE"
kubectl stash repo create demo-repo -n $NS --url pvc://repo/ --password-file "$PASSWORD_FILE" --init --overwrite

say "the backup configuration: a CronJob (run only when triggered), its ServiceAccount and Role"
kubectl stash backup deployment/web -n $NS --repo demo-repo --paths /data --keep-last 3

say "a backup session now: a session Job, one host Job, one snapshot of /data"
kubectl stash trigger web-backup -n $NS --wait
echo "change a file, back up again (unchanged files are not read again)"
echo "changed $(date)" >> "$NODE_DIR/file-2.txt"
kubectl stash trigger web-backup -n $NS --wait
kubectl stash get bc -n $NS
kubectl stash get bs -n $NS
LAST=$(kubectl stash get bs -n $NS -o json | sed -n 's/.*"name": "\(web-backup-[a-z0-9]*\)".*/\1/p' | head -1)
kubectl stash describe bs "$LAST" -n $NS
kubectl stash snapshots --repo demo-repo -n $NS --via-job

say "restore the latest snapshot of host-0 from the repository and compare"
RESTORE=$(mktemp -d /tmp/stash-demo-restore.XXXXXX)
stash-job restore --repo "file://$REPO_DIR" --password-file "$PASSWORD_FILE" latest --host host-0 --path /data --target "$RESTORE"
diff -r "$NODE_DIR" "$RESTORE/data" && echo "restored tree is identical to the volume ($RESTORE/data)"

say "demo done; the cluster is still up:"
echo "  export KUBECONFIG=$KUBECONFIG PATH=$PWD/bin:$(make -s kubectl-path):\$PATH"
echo "  kubectl -n $NS get all      # look around"
echo "  make cluster-down           # remove everything"
