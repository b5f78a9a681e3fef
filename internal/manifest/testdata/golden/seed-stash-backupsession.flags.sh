# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backupsession deployment-backup-2do7af: the trigger verb names sessions itself (<config>-<random suffix>)
