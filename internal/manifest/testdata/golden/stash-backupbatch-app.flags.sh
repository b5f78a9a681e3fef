# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backup wordpress-backup: the members have different exclude patterns, and --exclude gives every member the same
