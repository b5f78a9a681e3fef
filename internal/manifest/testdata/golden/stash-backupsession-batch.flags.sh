# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backupsession wordpress-backup-manual1: the trigger verb names sessions itself (<config>-<random suffix>)
