# The command line cannot say everything these manifests do (--ignore-unsupported: warn and leave it out):
#   restore wordpress-db-restore: the hooks have different containers, and --hook-container gives one for all of them
#   restore wordpress-db-restore: the post-restore request GET wordpress.demo.svc:80/maintenance?state=off: headers have no flag
