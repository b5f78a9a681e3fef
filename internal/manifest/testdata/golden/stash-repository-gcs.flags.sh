cat > gcs-repo.password <<'EOF'
not-a-real-password
EOF
cat > gcs-repo.env <<'EOF'
GOOGLE_APPLICATION_CREDENTIALS={"type": "service_account"}
GOOGLE_PROJECT_ID=my-project
EOF
kubectl stash repo create gcs-repo -n demo \
    --url gs://stash-testing/demo/deployment \
    --password-file gcs-repo.password \
    --from-env-file gcs-repo.env \
    --init
