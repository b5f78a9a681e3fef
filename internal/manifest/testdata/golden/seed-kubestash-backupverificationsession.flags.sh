# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backupverificationsession freq-backup-demo-storage-1730194200: verification has no command line here yet
