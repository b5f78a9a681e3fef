kubectl stash backup deployment/shop -n shop \
    --name shop-backup \
    --repo s3-repo \
    --paths /var/lib/shop \
    --pre-backup 'sync && touch /var/lib/shop/.backup-marker' \
    --post-backup-http 'POST http://alerts.ops.svc:8080/backup-failed' \
    --post-backup-policy OnFailure \
    --schedule @hourly \
    --keep-last 24 \
    --history-limit 1
