#!/bin/bash
# demo.sh - what `make demo` runs: bring up the local cluster, deploy a sample StatefulSet
# with different data per replica, back it up with kubectl stash (a configuration, two
# sessions), show the sessions and snapshots, restore into a new StatefulSet of 5 replicas
# with the seed's restore rules, start it, and compare.
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
VOLUMES=$(dirname "$KUBECONFIG")/volumes/demo

say "a clean namespace $NS (a previous demo's is removed first)"
kubectl delete namespace $NS --ignore-not-found --wait=true >/dev/null
kubectl delete pv -l app.kubernetes.io/part-of=stash-demo --ignore-not-found >/dev/null
rm -rf "$VOLUMES"
kubectl create namespace $NS >/dev/null

# volume NAME: a hostPath PersistentVolume on the node, reserved for claim NAME of $NS
volume() {
  mkdir -p "$VOLUMES/$1"
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: stash-demo-$1, labels: {app.kubernetes.io/part-of: stash-demo}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [${2:-ReadWriteOnce}]
  storageClassName: manual
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: $NS, name: $1}
  hostPath: {path: $VOLUMES/$1, type: DirectoryOrCreate}
YAML
}
# statefulset NAME REPLICAS: pods that mount their claim source-data at /source/data
statefulset() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: $1, namespace: $NS}
spec:
  replicas: $2
  serviceName: $1
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        imagePullPolicy: Never
        volumeMounts: [{name: source-data, mountPath: /source/data}]
  volumeClaimTemplates:
  - metadata: {name: source-data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: manual
      resources: {requests: {storage: 1Gi}}
YAML
  kubectl -n $NS rollout status statefulset/$1 --timeout=180s
}

say "a sample StatefulSet of 3 replicas, each with its own data"
for i in 0 1 2; do
  volume source-data-sample-$i
  d=$VOLUMES/source-data-sample-$i
  echo "I am sample-$i" > "$d/replica.txt"
  mkdir -p "$d/records"
  for f in 1 2 3; do head -c 50000 /dev/urandom | base64 > "$d/records/sample-$i-$f.txt"; done
  ln -sf replica.txt "$d/whoami"
done
statefulset sample 3
(cd "$VOLUMES" && ls -lR source-data-sample-1 | head -12)

say "a repository on a PersistentVolumeClaim (pvc://), created by a Job in the cluster"
volume repo ReadWriteMany
kubectl apply -f - >/dev/null <<YAML
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
kubectl stash backup statefulset/sample -n $NS --repo demo-repo --paths /source/data --keep-last 3

say "a backup session: a session Job and one host Job per replica, one snapshot each"
kubectl stash trigger sample-backup -n $NS --wait
echo "change a file on host-1 and back up again (unchanged files are not read again)"
echo "changed $(date)" >> "$VOLUMES/source-data-sample-1/replica.txt"
kubectl stash trigger sample-backup -n $NS --wait
kubectl stash get bc -n $NS
kubectl stash get bs -n $NS
LAST=$(kubectl stash get bs -n $NS -o json | sed -n 's/.*"name": "\(sample-backup-[a-z0-9]*\)".*/\1/p' | head -1)
kubectl stash describe bs "$LAST" -n $NS
kubectl stash snapshots --repo demo-repo -n $NS --via-job

say "restore into a NEW StatefulSet of 5 replicas (the seed's rules: host-3 and host-4 get host-1's data)"
for i in 0 1 2 3 4; do volume source-data-recovered-$i; done
cat > "$VOLUMES/claim.yaml" <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: source-data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
YAML
kubectl stash restore statefulset/recovered -n $NS --repo demo-repo --from-config sample-backup \
  --name statefulset-restore --replicas 5 --volume-claim-template "$VOLUMES/claim.yaml" \
  --volume-mount source-data:/source/data \
  --rule 'targetHosts=host-3,host-4;sourceHost=host-1;paths=/source/data' \
  --rule 'targetHosts=;sourceHost=;paths=/source/data' --wait
kubectl stash get restore -n $NS
kubectl stash describe restore statefulset-restore -n $NS

say "the StatefulSet created now starts with its data"
statefulset recovered 5
for i in 0 1 2 3 4; do
  src=$i; [ $i -ge 3 ] && src=1
  diff -r "$VOLUMES/source-data-sample-$src" "$VOLUMES/source-data-recovered-$i" \
    && echo "recovered-$i holds exactly what sample-$src held (host-$src's data)"
done

say "demo done; the cluster is still up:"
echo "  export KUBECONFIG=$KUBECONFIG PATH=$PWD/bin:$(make -s kubectl-path):\$PATH"
echo "  kubectl -n $NS get all,pvc      # look around"
echo "  make cluster-down               # remove everything"
