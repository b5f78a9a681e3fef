# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backupsession sample-backup-sts-manual: the trigger verb names sessions itself (<config>-<random suffix>)
