cat > local-demo-repo.password <<'EOF'
not-a-real-password
EOF
kubectl stash repo create local-demo-repo -n demo \
    --url pvc://backup-pvc/demo/sample-sts \
    --password-file local-demo-repo.password \
    --init
kubectl stash restore statefulset/sample-sts -n demo \
    --name sample-restore \
    --repo local-demo-repo \
    --rule 'targetHosts=host-0,host-2;sourceHost=' \
    --exclude '*.log' \
    --timeout 45m0s
