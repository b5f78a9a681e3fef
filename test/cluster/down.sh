#!/bin/bash
# down.sh [--purge] - stop everything up.sh started (by PID file / by our containerd socket path),
# tear down pod sandboxes, kube-proxy iptables rules, mounts, the cni0 bridge, and restore the
# sysctls kubelet/kube-proxy changed.
#   --purge   also delete all cluster state ($CLUSTER_DIR/run: etcd data, PKI, containerd store).
#             Built binaries ($CLUSTER_DIR/bin) and Go caches ($CLUSTER_DIR/cache) are kept.
# It also removes the node address up.sh added to lo. Running it with nothing up is harmless.
set -uo pipefail
CLUSTER_DIR=${CLUSTER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-stash/cluster}
BIN=${BIN_DIR:-$CLUSTER_DIR/bin}
RUN=$CLUSTER_DIR/run
PIDS=$RUN/pids
CTRD_SOCK=$RUN/containerd/containerd.sock
PURGE=0; [ "${1:-}" = "--purge" ] && PURGE=1
export PATH=$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "[down] $*" >&2; }

stop() { # name [timeout]
  local n=$1 to=${2:-15} p
  [ -f $PIDS/$n.pid ] || return 0
  p=$(cat $PIDS/$n.pid)
  # only signal the PID if it is still our process (its command line references $RUN)
  if kill -0 $p 2>/dev/null && grep -qF "$RUN/" <<<"$(tr '\0' ' ' 2>/dev/null < /proc/$p/cmdline)"; then
    kill -TERM $p
    for _ in $(seq 1 $((to * 10))); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
    kill -0 $p 2>/dev/null && { log "$n ($p) did not stop, SIGKILL"; kill -KILL $p; sleep 0.2; }
    log "stopped $n ($p)"
  fi
  rm -f $PIDS/$n.pid
}

remove_node_ip() { # the address up.sh put on lo
  local ip; ip=$(cat $RUN/node-ip 2>/dev/null || echo 10.200.0.1)
  # no `ip | grep -q` under pipefail: grep quitting early makes ip die of SIGPIPE, the test false
  ip addr del $ip/32 dev lo 2>/dev/null && log "removed $ip from lo"
  return 0
}
[ -d $RUN ] || { remove_node_ip; log "nothing to do ($RUN missing)"; exit 0; }

# 1. kubelet first, so it does not restart pods while we remove them
stop kubelet
# 2. remove all pod sandboxes through CRI (containerd runs CNI DEL, removes netns, unmounts rootfs)
if [ -S $CTRD_SOCK ] && [ -f $PIDS/containerd.pid ] && kill -0 "$(cat $PIDS/containerd.pid)" 2>/dev/null; then
  timeout 120 $BIN/k8s cri-rmp unix://$CTRD_SOCK >/dev/null || log "cri-rmp reported errors"
fi
# 3. kube-proxy + its iptables rules
stop kube-proxy
[ -x $BIN/kube-proxy ] && $BIN/kube-proxy --cleanup >/dev/null 2>&1 || true
# 4. containerd, then any shim still attached to *our* socket (matched by full socket path)
stop containerd 20
for d in /proc/[0-9]*; do
  if grep -q -- "containerd-shim.* -address $CTRD_SOCK" <<<"$(tr '\0' ' ' 2>/dev/null < $d/cmdline)"; then
    log "killing leftover shim ${d#/proc/}"; kill -KILL ${d#/proc/} 2>/dev/null
  fi
done
# containerd 1.6 hard-codes shim sockets to /run/containerd/s; drop stale ones once no
# containerd or shim runs on this machine any more
if [ -d /run/containerd/s ] && ! pgrep -x containerd >/dev/null && ! pgrep -f containerd-shim >/dev/null; then
  rm -f /run/containerd/s/*
fi
# safety net: any process still in a kubelet pod cgroup belongs to this cluster's pods
# (e.g. if cri-rmp could not run); kill those by PID, then remove the empty pod cgroups
for p in $(grep -l ':memory:/kubepods' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
  log "killing leftover pod process $p"; kill -KILL $p 2>/dev/null
done
sleep 0.2
for h in /sys/fs/cgroup/*/kubepods; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# 5. control plane
stop kube-scheduler; stop kube-controller-manager; stop kube-apiserver 30; stop etcd 30
# 6. unmount anything left under $RUN (deepest first)
awk -v r="$RUN/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
done
# 7. kubelet's own iptables chains (kube-proxy --cleanup does not remove these)
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  $ipt -w -D INPUT -j KUBE-FIREWALL 2>/dev/null; $ipt -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
  $ipt -w -F KUBE-FIREWALL 2>/dev/null; $ipt -w -X KUBE-FIREWALL 2>/dev/null
  for t in mangle nat filter; do $ipt -w -t $t -X KUBE-KUBELET-CANARY 2>/dev/null; done
  $ipt -w -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null
done
# pod network leftovers: CNI ipMasq rules/chains tagged with our network name (normally removed
# by CNI DEL during cri-rmp; left behind if containerd was gone)
iptables -w -t nat -S POSTROUTING 2>/dev/null | grep -F 'name: \"podnet\"' | while read -r r; do
  eval "iptables -w -t nat ${r/-A /-D }"
done
for c in $(iptables -w -t nat -S 2>/dev/null | grep -F 'name: \"podnet\"' | awk '$1=="-A" && $2 ~ /^CNI-/ {print $2}' | sort -u); do
  iptables -w -t nat -F $c; iptables -w -t nat -X $c
done
# an empty CNI- chain with no rule: a pod's CNI ADD cut short after creating it (the
# cluster-fault tests kill containers and restart the kubelet); -X refuses a chain that
# anything still jumps to, so only an orphan goes
nat=$(iptables -w -t nat -S 2>/dev/null)
for c in $(awk '$1=="-N" && $2 ~ /^CNI-/ {print $2}' <<<"$nat"); do
  grep -q -- "-A $c " <<<"$nat" || iptables -w -t nat -X $c 2>/dev/null || true
done
if grep -q 'inet 10.244.0.1/' <<<"$(ip -4 addr show dev cni0 2>/dev/null)"; then ip link del cni0 && log "deleted bridge cni0"; fi
rm -rf $RUN/cni/ipam/*
rm -f /var/lib/cni/results/podnet-*            # libcni result cache (hard-coded path in containerd 1.6)
# kubelet's hard-coded /var/log/containers symlinks that point into our pod log dir
for l in /var/log/containers/*.log; do
  [ -L "$l" ] && case "$(readlink "$l")" in "$RUN"/*) rm -f "$l";; esac
done
rm -f /var/lib/kubelet/device-plugins/kubelet.sock
rmdir /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null   # only if empty
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null
# 8. sysctls (recorded by up.sh before kubelet/kube-proxy touched them)
if [ -f $RUN/sysctl.orig ]; then
  while read -r k v; do sysctl -qw "$k=$v" 2>/dev/null; done < $RUN/sysctl.orig
  rm -f $RUN/sysctl.orig
  log "restored sysctls"
fi
remove_node_ip
if [ $PURGE = 1 ]; then
  rm -rf $RUN
  log "purged $RUN"
fi
log "done"
