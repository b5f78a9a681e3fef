cat > source-data-claim.yaml <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  labels:
    app: restore-demo
  name: source-data
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
  storageClassName: standard
EOF
kubectl stash restore statefulset/restore-demo -n demo \
    --name restore-new-sts \
    --repo minio-repo \
    --from-config sts-backup \
    --rule 'targetHosts=host-2;sourceHost=host-0;snapshots=4bc2f5a1' \
    --rule 'targetHosts=;sourceHost=;paths=/source/data' \
    --include '*.db' \
    --exclude '/source/data/tmp/*' \
    --replicas 3 \
    --volume-claim-template source-data-claim.yaml \
    --volume-mount source-data:/source/data \
    --timeout 30m0s \
    --service-account restore-sa
