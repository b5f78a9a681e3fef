@echo off
rem Shell completion of `kubectl stash` through kubectl (1.26 or later): kubectl runs this
rem file, found on PATH as kubectl_complete-stash.cmd, when you press TAB after `kubectl stash`.
kubectl stash __complete %*
