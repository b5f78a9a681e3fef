# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   restore statefulset-restore: the manifest restores the snapshots of whichever backup configuration writes to repository local-repo, which the plugin finds when it runs; give --from-config CONFIG
#   restore statefulset-restore: the container securityContext has no flag form (--run-as-user and --run-as-group make one that drops every capability)
#   restore statefulset-restore: imagePullSecrets has no flag: use the manifest (kubectl stash restore -f)
#   restore statefulset-restore: tempDir medium has no flag: use the manifest (kubectl stash restore -f)
