#!/usr/bin/env bash
# Start (or stop) a Dask cluster for framestream's flows on this machine:
#   - one `dask scheduler` on HOST:PORT;
#   - with NVIDIA GPUs (nvidia-smi lists them and `import dask_cuda` works): one
#     `dask cuda worker` process, which runs one worker per visible GPU, each with the
#     resource GPU=1 (CUDA_VISIBLE_DEVICES picks the GPUs);
#   - otherwise (or with --cpu): N CPU `dask worker` processes.
# Every process is started in its own process group and its id written to the pid
# file, one "role pid" per line; --stop stops those groups (TERM, then KILL after a grace
# period) and removes the file. Logs go next to the pid file.
#
#   deploy/start-cluster.sh --host 0.0.0.0 --port 8786            # on the GPU box
#   FRAMESTREAM_SCHEDULER=tcp://gpu-box:8786 framestream run deploy/configs/hourly_score.yaml
#   deploy/start-cluster.sh --stop
#
# Workers on other machines join with
#   dask cuda worker tcp://SCHEDULER:8786 --resources GPU=1     (or `dask worker ...`)
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/start-cluster.sh [options]      start a scheduler and workers
       deploy/start-cluster.sh --stop [--pid-file FILE]

options:
  --host HOST          address the scheduler listens on (default 127.0.0.1)
  --port PORT          scheduler port (default 8786)
  --workers N          CPU workers when there is no GPU (default: number of cores)
  --threads N          threads per CPU worker (default 1)
  --memory-limit SIZE  memory per worker, e.g. 4GiB (default: auto)
  --cpu                CPU workers even where GPUs are present
  --dashboard ADDR     scheduler dashboard address, e.g. :8787 (default: off)
  --python PY          Python with framestream and dask installed
                       (default: $PYTHON, else .venv/bin/python, else python3)
  --pid-file FILE      where the process ids go
                       (default: $FRAMESTREAM_HOME/cluster/cluster.pids)
  --timeout SECONDS    how long to wait for the scheduler and workers (default 60)
  --stop               stop the processes listed in the pid file
  -h, --help           this help

Prints the scheduler address (tcp://HOST:PORT) on the last line of its output.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
host=127.0.0.1
port=8786
workers=""
threads=1
memory_limit=auto
force_cpu=0
dashboard=""
python=${PYTHON:-}
pid_file=""
timeout=60
stop=0

die() { echo "start-cluster.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --host) host=${2:?--host needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --workers) workers=${2:?--workers needs a value}; shift 2 ;;
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --memory-limit) memory_limit=${2:?--memory-limit needs a value}; shift 2 ;;
    --cpu) force_cpu=1; shift ;;
    --dashboard) dashboard=${2:?--dashboard needs a value}; shift 2 ;;
    --python) python=${2:?--python needs a value}; shift 2 ;;
    --pid-file) pid_file=${2:?--pid-file needs a value}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    --stop) stop=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done

if [ -z "$pid_file" ]; then
  pid_file="${FRAMESTREAM_HOME:-$HOME/.framestream}/cluster/cluster.pids"
fi
log_dir=$(dirname "$pid_file")

# ---------------------------------------------------------------------------- stop
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
# A process group that is ours: some process in it runs dask (a pid file left behind by a
# rebooted machine may name a group id that an unrelated program has since been given).
ours() { ps -eo pgid=,args= 2>/dev/null | awk -v g="$1" '$1 == g' | grep -q -- '-m dask'; }

stop_cluster() {
  if [ ! -f "$pid_file" ]; then
    echo "no cluster to stop: $pid_file does not exist"
    return 0
  fi
  local role pid pids=() waited
  # workers first, so that they do not try to reconnect to a scheduler that is gone
  while read -r role pid; do
    [ -n "${pid:-}" ] && ours "$pid" || continue
    if [ "$role" = scheduler ]; then pids+=("$pid"); else pids=("$pid" "${pids[@]}"); fi
  done < "$pid_file"
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    waited=0
    while group_alive "$pid" && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    if group_alive "$pid"; then
      echo "process group $pid did not stop after 10 s; killing it" >&2
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  rm -f "$pid_file"
  echo "stopped ${#pids[@]} process group(s) listed in $pid_file"
}

if [ "$stop" = 1 ]; then
  stop_cluster
  exit 0
fi

# ---------------------------------------------------------------------------- start
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
command -v "$python" >/dev/null || die "no Python at '$python' (use --python PATH)"
"$python" -c "import distributed" 2>/dev/null \
  || die "'$python' cannot import distributed; install framestream first (pip install -e .)"

case "$port" in ''|*[!0-9]*) die "--port must be a number, got '$port'" ;; esac
case "$threads" in ''|*[!0-9]*|0) die "--threads must be a positive number, got '$threads'" ;; esac
case "$timeout" in ''|*[!0-9]*|0) die "--timeout must be whole seconds, got '$timeout'" ;; esac
if [ -n "$workers" ]; then
  case "$workers" in
    ''|*[!0-9]*|0) die "--workers must be a positive number, got '$workers'" ;;
  esac
else
  workers=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
fi

address="tcp://$host:$port"
connect_host=$host
if [ "$host" = 0.0.0.0 ]; then connect_host=127.0.0.1; fi
connect_address="tcp://$connect_host:$port"

if [ -f "$pid_file" ]; then
  while read -r _ pid; do
    if [ -n "${pid:-}" ] && ours "$pid"; then
      die "a cluster started from $pid_file is still running (pid $pid); run with --stop first"
    fi
  done < "$pid_file"
  rm -f "$pid_file"
fi
mkdir -p "$log_dir"
: > "$pid_file"

port_open() {
  "$python" - "$connect_host" "$port" <<'EOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
EOF
}

if port_open; then
  rm -f "$pid_file"
  die "something is already listening on $connect_host:$port; pick another --port"
fi

# Job control: every background job gets its own process group (pgid = its pid), so
# --stop can end a worker together with the processes its nanny started.
set -m

# start ROLE COMMAND...: run COMMAND in the background, log to ROLE.log, record its pid.
start() {
  local role=$1; shift
  "$@" > "$log_dir/$role.log" 2>&1 < /dev/null &
  echo "$role $!" >> "$pid_file"
  echo "started $role (pid $!): $*"
}

fail() {
  echo "start-cluster.sh: $*" >&2
  echo "logs are in $log_dir; stopping what was started" >&2
  stop_cluster >&2 || true
  exit 1
}

scheduler_args=(--host "$host" --port "$port")
if [ -n "$dashboard" ]; then
  scheduler_args+=(--dashboard-address "$dashboard")
else
  scheduler_args+=(--no-dashboard)
fi
start scheduler "$python" -m dask scheduler "${scheduler_args[@]}"

waited=0
until port_open; do
  sleep 0.2
  waited=$((waited + 1))
  if [ "$waited" -ge $((timeout * 5)) ]; then
    fail "the scheduler did not listen on $connect_address within ${timeout} s"
  fi
done

n_gpus=0
if [ "$force_cpu" = 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
  n_gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    n_gpus=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c . || true)
  fi
  if [ "$n_gpus" -gt 0 ] && ! "$python" -c "import dask_cuda" 2>/dev/null; then
    echo "found $n_gpus GPU(s) but '$python' cannot import dask_cuda" \
      "(pip install -e '.[gpu]'); starting CPU workers" >&2
    n_gpus=0
  fi
fi

worker_common=(--no-dashboard --death-timeout 60 --memory-limit "$memory_limit")
if [ "$n_gpus" -gt 0 ]; then
  # One process; dask-cuda runs one worker per visible GPU, each pinned to its device.
  start cuda-workers "$python" -m dask cuda worker "$connect_address" \
    --resources "GPU=1" "${worker_common[@]}"
  expected=$n_gpus
else
  for i in $(seq 1 "$workers"); do
    start "worker-$i" "$python" -m dask worker "$connect_address" \
      --nthreads "$threads" --nworkers 1 --name "cpu-$i" "${worker_common[@]}"
  done
  expected=$workers
fi

worker_pids=$(awk '$1 != "scheduler" {print $2}' "$pid_file" | paste -sd, -)
if ! "$python" - "$connect_address" "$expected" "$timeout" "$worker_pids" <<'EOF'
import sys
import time

import psutil
from distributed import Client

address, n, timeout, pids = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


deadline = time.monotonic() + timeout
try:
    with Client(address, timeout=timeout) as client:
        while (joined := len(client.scheduler_info(n_workers=-1)["workers"])) < n:
            dead = [pid for pid in map(int, pids.split(",")) if not running(pid)]
            if dead:
                sys.exit(f"worker process(es) {dead} exited; see their logs")
            if time.monotonic() > deadline:
                sys.exit(f"only {joined} of {n} workers joined within {timeout:g} s")
            time.sleep(0.2)
except OSError as exc:
    sys.exit(f"cannot connect to {address}: {exc}")
EOF
then
  fail "the workers did not all join $connect_address"
fi

kind="CPU worker(s)"
if [ "$n_gpus" -gt 0 ]; then kind="GPU worker(s)"; fi
echo "cluster ready: $expected $kind; pids in $pid_file, logs in $log_dir"
advertised=$address
if [ "$host" = 0.0.0.0 ]; then advertised="tcp://$(hostname):$port"; fi
echo "use it with: export FRAMESTREAM_SCHEDULER=$advertised"
echo "$advertised"
