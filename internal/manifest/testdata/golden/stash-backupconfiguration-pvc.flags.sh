cat > local-repo.password <<'EOF'
not-a-real-password
EOF
kubectl stash repo create local-repo \
    --url pvc://backup-pvc/repos/nfs \
    --password-file local-repo.password \
    --init
kubectl stash backup pvc/nfs-pvc \
    --name nfs-pvc-backup \
    --repo local-repo \
    --paths /source/data \
    --mount-path /source/data \
    --schedule @daily \
    --keep-last 5 \
    --history-limit 1
