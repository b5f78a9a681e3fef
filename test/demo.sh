#!/bin/bash
# demo.sh - what `make demo` runs: bring up the local cluster, deploy a sample workload
# with data, and run the job image in the cluster against it.
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
IMAGE=$(kubectl-stash version -o json | sed -n 's/.*"jobImage": "\(.*\)".*/\1/p')
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

say "running the job image in a Job with its own ServiceAccount"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: stash-job, namespace: $NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: stash-job, namespace: $NS}
rules: [{apiGroups: [batch], resources: [jobs], verbs: [get, patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: stash-job, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: stash-job}
subjects: [{kind: ServiceAccount, name: stash-job, namespace: $NS}]
YAML
kubectl -n $NS delete job probe --ignore-not-found >/dev/null
kubectl -n $NS apply -f - >/dev/null <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: probe}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: stash-job
      restartPolicy: Never
      containers:
      - name: stash-job
        image: $IMAGE
        imagePullPolicy: Never
        args: [probe]
        env:
        - {name: STASH_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: STASH_JOB_NAME, valueFrom: {fieldRef: {fieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}}
        - {name: STASH_POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: STASH_NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
YAML
kubectl -n $NS wait --for=condition=Complete job/probe --timeout=120s
echo "annotation written by the job: $(kubectl -n $NS get job probe -o jsonpath='{.metadata.annotations.kubectl-stash\.io/probe}')"

say "demo done; the cluster is still up:"
echo "  export KUBECONFIG=$KUBECONFIG PATH=$PWD/bin:$(make -s kubectl-path):\$PATH"
echo "  kubectl -n $NS get all      # look around"
echo "  make cluster-down           # remove everything"
