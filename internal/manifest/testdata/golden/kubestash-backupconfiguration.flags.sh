cat > s3-demo-repo.password <<'EOF'
not-a-real-password
EOF
cat > s3-demo-repo.env <<'EOF'
AWS_ACCESS_KEY_ID=minio
AWS_SECRET_ACCESS_KEY=minio123
EOF
kubectl stash repo create s3-demo-repo -n demo \
    --url 's3://kubestash/demo/demo/sample-sts?endpoint=http://minio.storage.svc:9000&region=us-east-1&request_checksum_calculation=when_required&response_checksum_validation=when_required&use_path_style=true' \
    --password-file s3-demo-repo.password \
    --from-env-file s3-demo-repo.env \
    --init
# the KubeStash session demo-session of sample-backup-sts
kubectl stash backup statefulset/sample-sts -n demo \
    --name sample-backup-sts \
    --repo s3-demo-repo \
    --paths /source/data \
    --exclude /source/data/lost+found \
    --exclude '*.tmp' \
    --volume-mount source-data:/source/data \
    --schedule '*/5 * * * *' \
    --keep-last 5 \
    --keep-daily 7 \
    --keep-weekly 4 \
    --history-limit 3 \
    --timeout 1h30m0s \
    --memory-limit 1Gi \
    --nice 5 \
    --node-selector kubernetes.io/os=linux \
    --toleration dedicated:NoSchedule \
    --service-account backup-sa \
    --cache-size 512Mi
