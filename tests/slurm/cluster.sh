#!/usr/bin/env bash
# A throw-away single-node SLURM cluster (munged, slurmctld, slurmd; all as root):
#   eval "$(tests/slurm/cluster.sh up STATE_DIR)"   # prints `export SLURM_CONF=...`
#   tests/slurm/cluster.sh down STATE_DIR            # stops what `up` started; idempotent
# Configs, spool/state dirs, logs, pid files and munge's own key and socket all live in
# STATE_DIR (SLURM reaches munged through AuthInfo=socket=...; /etc/munge is not used).
# The one file outside it: /etc/slurm/slurm.conf, a symlink to STATE_DIR/slurm.conf while
# the cluster is up (see link_etc_conf). The node has one fake GPU (gres.conf File=/dev/null):
# --gpus=1 jobs run one at a time with CUDA_VISIBLE_DEVICES=0.
# `up` exits 0 once the node is idle (a second `up` reuses a live cluster), 1 if it did not
# come up (log tails on stderr), 2 on bad usage, 3 if it cannot run here (not root; SLURM
# missing and no apt-get), for test fixtures to skip. Ports: 6817/6818, or
# $SLURM_CLUSTER_CTLD_PORT/$SLURM_CLUSTER_SLURMD_PORT.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

usage() { echo "usage: $0 up|down STATE_DIR" >&2; exit 2; }
[[ $# -eq 2 && -n $2 ]] || usage
CMD=$1
STATE=$(realpath -m -- "$2")
# slurm.conf cannot quote paths, and a unix socket path has at most 107 bytes.
[[ $STATE =~ ^[^[:space:]]{1,80}$ ]] || { echo "STATE_DIR must be <= 80 chars, no spaces" >&2; exit 2; }
CONF=$STATE/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
CTLD_PORT=${SLURM_CLUSTER_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CLUSTER_SLURMD_PORT:-6818}
DAEMONS=(munged slurmctld slurmd)
export SLURM_CONF=$CONF

log() { echo "cluster.sh: $*" >&2; }
skip() { log "cannot run here: $*"; exit 3; }

ensure_installed() {
  [[ $(id -u) -eq 0 ]] || skip "must be root (the daemons run as root)"
  hash sbatch squeue sinfo scancel scontrol slurmctld slurmd munged 2>/dev/null && return 0
  command -v apt-get >/dev/null || skip "SLURM is not installed and apt-get is unavailable"
  log "installing slurmctld slurmd slurm-client munge with apt-get ..."
  # Keep the packages' own services from starting (the Docker-style policy-rc.d).
  local policy=/usr/sbin/policy-rc.d added=0 rc=0 aptlog
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && added=1; fi
  local install=(apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120
    slurmctld slurmd slurm-client munge)
  aptlog=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  "${install[@]}" >"$aptlog" 2>&1 ||
    { apt-get update -q >>"$aptlog" 2>&1 && "${install[@]}" >>"$aptlog" 2>&1; } || rc=$?
  ((added)) && rm -f $policy
  ((rc)) && { tail -n 20 "$aptlog" >&2; rm -f "$aptlog"; skip "apt-get install failed"; }
  rm -f "$aptlog"
}

# ---- process bookkeeping: pids live in STATE/run/NAME.pid (the daemons write them) ----
pidfile() { echo "${2:-$STATE}/run/$1.pid"; } # NAME [STATE_DIR]
alive() { grep -q '^State:[[:space:]]*[^Z]' "/proc/$1/status" 2>/dev/null; } # zombies are dead
any_alive() { local p; for p; do alive "$p" && return 0; done; return 1; }
live_pid() { # NAME [STATE_DIR]: prints the recorded pid of daemon NAME if it is alive and is NAME
  local pid
  pid=$(cat "$(pidfile "$1" "${2:-}")" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] && alive "$pid" && echo "$pid"
}
node_state() { timeout 10 sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1; }
proc_tree() { local c; for c in $(pgrep -P "$1"); do proc_tree "$c"; done; echo "$1"; }

stop_daemons() { # SIGTERM the named daemons together, wait up to 20 s, then SIGKILL
  local d pid pids=() i=0
  for d in "$@"; do
    if pid=$(live_pid "$d"); then kill -TERM "$pid" 2>/dev/null && pids+=("$pid"); fi
  done
  while any_alive "${pids[@]}" && ((i++ < 100)); do sleep 0.2; done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then log "pid $pid ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" || true; fi
  done
  for d in "$@"; do
    if live_pid "$d" >/dev/null; then log "could not stop $d"; else rm -f "$(pidfile "$d")"; fi
  done
}

down() {
  [[ -d $STATE/run ]] || return 0
  local jobs=() tree=() i pid
  # Cancel this cluster's jobs first, so that no job outlives slurmd.
  if live_pid slurmctld >/dev/null && live_pid munged >/dev/null; then
    mapfile -t jobs < <(timeout 10 squeue -h -o %i 2>/dev/null)
    if ((${#jobs[@]})); then
      timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
      for ((i = 0; i < 30; i++)); do
        [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
        sleep 0.5
      done
    fi
  fi
  stop_daemons slurmd slurmctld # they may still want munged while they shut down
  stop_daemons munged
  # Safety net: job steps that survived (their slurmstepd carries our SLURM_CONF).
  for pid in $(pgrep -x slurmstepd); do
    if grep -qzxF "SLURM_CONF=$CONF" "/proc/$pid/environ" 2>/dev/null; then
      mapfile -t tree < <(proc_tree "$pid")
      kill -KILL "${tree[@]}" 2>/dev/null || true
    fi
  done
  unlink_etc_conf
}

# snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable, SLURM_CONF too,
# from the environment of the `srun` it runs inside each job, so that srun reads the
# default /etc/slurm/slurm.conf (or a configless cache under /run/slurm, which in turn
# needs munged on /run/munge). Hence the symlink, unless someone else's config is there.
# A link left by a cluster of this script that was never taken down (its process killed
# before `down`) is stale once none of that cluster's daemons is alive: it is replaced.
# (tests/slurm_utils.py makes the same judgement in Python, for test sessions.)
stale_link() { # TARGET: a slurm.conf of this script's making whose daemons are all gone
  local dir=${1%/slurm.conf} d
  [[ $1 == */slurm.conf && -d $dir/run && -d $dir/munge ]] || return 1
  head -n1 "$1" 2>/dev/null | grep -q '^# Generated by tests/slurm/cluster.sh' || return 1
  # no pid file yet: a cluster coming up, unless its config is older than 5 minutes
  compgen -G "$dir/run/*.pid" >/dev/null || [[ -n $(find "$1" -mmin +5 2>/dev/null) ]] || return 1
  for d in "${DAEMONS[@]}"; do live_pid "$d" "$dir" >/dev/null && return 1; done
  return 0
}
link_etc_conf() {
  local cur
  cur=$(readlink "$ETC_CONF") || cur=
  if [[ -n $cur && $cur != "$CONF" ]] && stale_link "$cur"; then
    log "replacing $ETC_CONF -> $cur (a cluster that is no longer up)"
  fi
  if [[ ! -e $ETC_CONF && ! -L $ETC_CONF ]] ||
    [[ -n $cur && ($cur == "$CONF" || ! -e $cur) ]] || stale_link "$cur"; then
    mkdir -p "${ETC_CONF%/*}" && ln -sfn "$CONF" "$ETC_CONF"
  else
    log "warning: $ETC_CONF is not ours; srun inside Snakemake jobs will read it, not $CONF"
  fi
}
unlink_etc_conf() {
  if [[ $(readlink "$ETC_CONF" 2>/dev/null) == "$CONF" ]]; then rm -f "$ETC_CONF" 2>/dev/null || true; fi
}

write_configs() {
  # The hardware as slurmd detects it; RealMemory keeps a 5% margin (a node configured
  # with more memory than slurmd finds is drained for "Low RealMemory").
  local hw mem cpus
  hw=$(slurmd -C 2>/dev/null | head -n1) || true
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [[ -n $mem ]] || mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  mem=$((mem * 95 / 100))
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  [[ -n $cpus ]] || cpus=$(nproc)
  hw=$(grep -o 'CPUs=[0-9]* .*ThreadsPerCore=[0-9]*' <<<"$hw") || hw="CPUs=$cpus"
  # SlurmctldHost/NodeAddr are 127.0.0.1, so the hostname need not resolve.
  cat >"$CONF" <<EOF
# Generated by tests/slurm/cluster.sh: a single-node test cluster.
ClusterName=rnnrepro
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
GresTypes=gpu
MinJobAge=300
ReturnToService=2
KillWait=5
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 $hw RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  # Read from the directory of slurm.conf. No cgroup.conf: no cgroup plugin is used.
  echo "Name=gpu File=/dev/null" >"$STATE/gres.conf"
}

start_daemons() {
  local key=$STATE/munge/munge.key
  if [[ ! -s $key ]]; then # this cluster's own key; /etc/munge/munge.key is not used
    (umask 077 && dd if=/dev/urandom of="$key" bs=1024 count=1 status=none)
  fi
  # Each daemon forks into the background: their stdio must not hold the caller's pipes
  # (`eval "$(cluster.sh up ...)"` would hang), nor may they inherit the lock on fd 9.
  munged --force --key-file="$key" --socket="$STATE/munge/munge.socket" \
    --pid-file="$(pidfile munged)" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munged.seed" </dev/null >>"$STATE/log/munged.out" 2>&1 9>&-
  # -c: start from a clean job/node state (job ids still continue where they were).
  slurmctld -c -f "$CONF" </dev/null >>"$STATE/log/slurmctld.out" 2>&1 9>&-
  slurmd -f "$CONF" </dev/null >>"$STATE/log/slurmd.out" 2>&1 9>&-
}

wait_idle() { # up to 60 s until sinfo shows the node idle; resume it if drained/down
  local i st d
  for ((i = 0; i < 240; i++)); do # 4 polls a second
    st=$(node_state) || true
    case $st in
      idle | mix | alloc) return 0 ;;
      *drain* | drng | down | fail*) ((i < 8)) ||
        timeout 10 scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    for d in "${DAEMONS[@]}"; do # a daemon that died will not come back: fail fast
      ((i < 12)) || live_pid "$d" >/dev/null || { log "$d is not running"; return 1; }
    done
    sleep 0.25
  done
  return 1
}

up() {
  ensure_installed
  mkdir -p "$STATE"/{run,log,ctld,slurmd,munge}
  exec 9>"$STATE/run/lock" # serialises `up`/`down` calls on one STATE_DIR
  flock -w 120 9
  local d alive=1 f
  for d in "${DAEMONS[@]}"; do live_pid "$d" >/dev/null || alive=0; done
  if ((alive)) && [[ $(node_state) =~ ^(idle|mix|alloc)$ ]]; then
    log "reusing the running cluster in $STATE"
    link_etc_conf
  else
    down # a stale or partial cluster: restart it cleanly
    write_configs
    link_etc_conf
    start_daemons || true
    if ! wait_idle; then
      log "the cluster did not come up; node state: '$(node_state || true)'"
      for f in "$STATE"/log/*; do echo "==> $f <==" >&2; tail -n 20 "$f" >&2; done
      down
      exit 1
    fi
  fi
  echo "export SLURM_CONF=$CONF"
}

case $CMD in
  up) up ;;
  down)
    if [[ -w $STATE/run ]]; then exec 9>"$STATE/run/lock"; flock -w 120 9 || true; fi
    down || true
    ;;
  *) usage ;;
esac
