# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   backup wordpress-backup member deployment/wordpress: the alias "wordpress" has no flag in a batch (--member KIND/NAME:PATHS)
#   backup wordpress-backup member deployment/wordpress: volume mounts have no flag in a batch (--member KIND/NAME:PATHS)
