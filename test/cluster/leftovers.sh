#!/bin/bash
# leftovers.sh - print anything of the test cluster still on this machine; exit 1 if any.
# Used after `make cluster-down` (and by the e2e suite's teardown check).
CLUSTER_DIR=${CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-stash/cluster}
found=0
say() { echo "leftover: $*"; found=1; }
for p in /proc/[0-9]*; do
  cmd=$( { tr '\0' ' ' < $p/cmdline; } 2>/dev/null) || continue
  case "$cmd" in *"$CLUSTER_DIR/"*) say "process ${p#/proc/}: ${cmd:0:120}";; esac
done
grep -F " $CLUSTER_DIR/" /proc/self/mountinfo | awk '{print $5}' | while read -r m; do echo "leftover: mount $m"; done
grep -qF " $CLUSTER_DIR/" /proc/self/mountinfo && found=1
ip link show cni0 >/dev/null 2>&1 && say "bridge cni0"
grep -q ' 10.200.0.1/' <<<"$(ip addr show dev lo)" && say "address 10.200.0.1 on lo"
for t in filter nat mangle; do
  c=$(iptables -w -t $t -S 2>/dev/null | grep -E '^-N (KUBE-|CNI-)' | awk '{print $2}' | tr '\n' ' ')
  [ -n "$c" ] && say "iptables $t chains: $c"
done
[ -f "$CLUSTER_DIR/run/sysctl.orig" ] && say "sysctls not restored ($CLUSTER_DIR/run/sysctl.orig)"
[ $found = 0 ] && echo "no leftovers: no process, mount, bridge, address, iptables chain or sysctl change"
exit $found
