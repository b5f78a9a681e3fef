kubectl stash backup -n demo \
    --batch shop-backup \
    --repo gcs-repo \
    --member deployment/wordpress:/var/www/html \
    --member statefulset/wordpress-db:dump=mysql \
    --member-hook 'deployment/wordpress:pre-backup=wp maintenance-mode activate' \
    --member-hook 'deployment/wordpress:post-backup-http=POST http://:8080/purge' \
    --schedule @daily \
    --keep-last 5 \
    --history-limit 1
