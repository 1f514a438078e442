# Shared by the scripts in localstack/ (sourced, not run). Paths, messages, apt, probes.
# Exports inside ( ) subshells are meant to stay there:
# shellcheck shell=bash disable=SC2030,SC2031

FMN_LS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FMN_REPO_DIR=$(cd "$FMN_LS_DIR/.." && pwd)
: "${FMN_LOCAL_DIR:=$FMN_REPO_DIR/.local}"
mkdir -p "$FMN_LOCAL_DIR"
FMN_LOCAL_DIR=$(cd "$FMN_LOCAL_DIR" && pwd)
export FMN_LOCAL_DIR

VENV_LOCALSTACK="$FMN_LOCAL_DIR/venv-localstack"
VENV_MOTO="$FMN_LOCAL_DIR/venv-moto"
DDB_DIR="$FMN_LOCAL_DIR/dynamodb-local"
LOG_DIR="$FMN_LOCAL_DIR/logs"
RUN_DIR="$FMN_LOCAL_DIR/run"
LS_STATE_DIR="$FMN_LOCAL_DIR/localstack"
# Where LocalStack's DynamoDB looks for its DynamoDB Local ("dynamodb-local" version "2" under its
# var_libs, which FILESYSTEM_ROOT moves into $LS_STATE_DIR/filesystem); install.sh fills it.
LS_DDB_DIR="$LS_STATE_DIR/filesystem/var/lib/localstack/lib/dynamodb-local/2"

# The emulators: name, port. Ports are fixed: the code's defaults (crates/fmn-aws/src/config.rs)
# and env.sh name them.
LOCALSTACK_PORT=4566
DYNAMODB_PORT=8000
MOTO_PORT=5055
SERVICES_ALL=(localstack dynamodb moto)

# Timeout for start.sh / reset.sh waits, seconds.
: "${FMN_EMULATOR_TIMEOUT:=120}"

# The python used for probes (stdlib only) and to create the venvs.
: "${FMN_PYTHON:=}"
if [ -z "$FMN_PYTHON" ]; then
  if command -v python3.11 >/dev/null 2>&1; then FMN_PYTHON=python3.11
  else FMN_PYTHON=python3; fi
fi

say() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_of() {
  case "$1" in
    localstack) echo "$LOCALSTACK_PORT" ;;
    dynamodb) echo "$DYNAMODB_PORT" ;;
    moto) echo "$MOTO_PORT" ;;
    *) die "unknown service '$1'" ;;
  esac
}

label_of() {
  case "$1" in
    localstack) echo "LocalStack (SQS, SES v1, EventBridge, Scheduler, SSM; CloudFormation and what it creates)" ;;
    dynamodb) echo "DynamoDB Local" ;;
    moto) echo "moto server (SES v2)" ;;
  esac
}

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# apt-get, with 'apt-get update' done at most once per script run.
_APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need to install $* but apt-get is not available; install them by hand"
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: $*"
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$_APT_UPDATED" = 0 ]; then
    say "apt-get update"
    "${sudo_cmd[@]}" apt-get update -qq || die "apt-get update failed"
    _APT_UPDATED=1
  fi
  say "apt-get install $*"
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" || die "apt-get install $* failed"
}

# Make sure a command exists, installing the Debian package(s) that provide it if not.
need_cmd() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  apt_install "$@"
  hash -r
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is still missing after installing $*"
}

need_python() {
  command -v "$FMN_PYTHON" >/dev/null 2>&1 ||
    die "no '$FMN_PYTHON' found; Python 3.11 is needed (set FMN_PYTHON to its path)"
}

# probe.py: stdlib-only health checks and port-owner lookups.
probe() { "$FMN_PYTHON" "$FMN_LS_DIR/probe.py" "$@"; }

# Serialise start/stop/reset (separate from the lock the integration tests take around start.sh).
take_lock() {
  mkdir -p "$RUN_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$RUN_DIR/emulators.lock"
    if ! flock -n 9; then
      say "waiting for another localstack/ script to finish (lock $RUN_DIR/emulators.lock)"
      flock -w 300 9 || die "another localstack/ script still holds $RUN_DIR/emulators.lock after 300 s"
    fi
  fi
}

# The pid in a service's pid file, if that process is alive and is ours (its command line names
# our .local directory); empty otherwise.
our_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && is_ours "$pid"; then echo "$pid"; fi
}

# A process exists and is not a zombie.
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1 || true)
  [ -n "$state" ] && [ "$state" != Z ]
}

# A process is ours if it is alive and its command line mentions FMN_LOCAL_DIR.
is_ours() {
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$FMN_LOCAL_DIR/"
}

# --- starting and stopping -------------------------------------------------------------------

# probe_code SERVICE: sets PROBE_CODE (0 ready, 1 down, 2 starting, 3 foreign, 4 no HTTP answer,
# 5 LocalStack with a service of SERVICES disabled: needs a restart)
# and PROBE_DETAIL.
probe_code() {
  PROBE_DETAIL=$(probe check "$1" "$(port_of "$1")") && PROBE_CODE=0 || PROBE_CODE=$?
}

# The process listening on a port: "pid N, name X", or empty.
port_owner() { probe owner "$1"; }
port_owner_pid() { port_owner "$1" | sed -n 's/^pid \([0-9]*\),.*/\1/p'; }

installed() {
  case "$1" in
    localstack) [ -f "$VENV_LOCALSTACK/.fmn-requirements.sha256" ] && [ -f "$LS_DDB_DIR/.fmn-stamp" ] ;;
    moto) [ -f "$VENV_MOTO/.fmn-requirements.sha256" ] ;;
    dynamodb) [ -f "$DDB_DIR/DynamoDBLocal.jar" ] ;;
  esac
}

# Runs a service in the background, detached (own session: a Ctrl-C in the terminal that ran
# start.sh does not reach it), without the AWS_* client settings of the calling shell.
launch() {
  local name=$1 log pid
  shift
  log=$(log_file "$name")
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  [ -f "$log" ] && mv -f "$log" "$log.1"
  printf '=== %s: %s\n' "$(date -Is)" "$*" >"$log"
  (
    for var in $(compgen -e); do
      case "$var" in AWS_*) unset "$var" ;; esac
    done
    # Close inherited descriptors (our lock, or the one `flock FILE start.sh` holds): a service
    # that kept them would hold the lock for as long as it runs.
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec nohup setsid "$@" >>"$log" 2>&1 </dev/null
  ) &
  pid=$!
  echo "$pid" >"$(pid_file "$name")"
  info "$name: started, pid $pid, log $log"
}

launch_localstack() {
  local root="$LS_STATE_DIR"
  mkdir -p "$root/filesystem" "$root/config"
  # OVERRIDE_IN_DOCKER=0: LocalStack would otherwise take this machine for its own container
  # (it finds /.dockerenv) and use /var/lib/localstack and /tmp/localstack. FILESYSTEM_ROOT and
  # CONFIG_DIR keep its files under .local/localstack (its tmp: filesystem/tmp/localstack). The rest switches off
  # everything that would go to the internet (certificate download, analytics, DNS server).
  # SERVICES: what the app uses (sqs, ses, events, scheduler, ssm) and what CloudFormation needs
  # to create the stack's other resources in infra/rehearse.sh (cloudformation, iam, sts, sns,
  # cloudwatch, dynamodb). The app's DynamoDB stays DynamoDB Local on 8000; LocalStack's own
  # dynamodb runs the same jar (install.sh links it into LS_DDB_DIR) in memory
  # (DYNAMODB_IN_MEMORY=1). CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES=0: a resource type LocalStack
  # cannot create fails the stack instead of being skipped as if created.
  # SQS_ENDPOINT_STRATEGY=off + LOCALSTACK_HOST: queue URLs are
  # http://127.0.0.1:4566/000000000000/<name>, which need no DNS.
  # GATEWAY_SERVER: 4.6.0's default, twisted, ignores the host of GATEWAY_LISTEN and listens on
  # 0.0.0.0:4566; hypercorn honours 127.0.0.1 but answers "Connection: close" unless the client
  # asks for keep-alive. FMN_LOCALSTACK_GATEWAY_SERVER=hypercorn picks it.
  (
    cd "$root" || exit 1
    export GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" LOCALSTACK_HOST="127.0.0.1:$LOCALSTACK_PORT"
    export SERVICES=sqs,ses,events,scheduler,ssm,cloudformation,iam,sts,sns,cloudwatch,dynamodb
    export EAGER_SERVICE_LOADING=1 DYNAMODB_IN_MEMORY=1 CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES=0
    export GATEWAY_SERVER="${FMN_LOCALSTACK_GATEWAY_SERVER:-twisted}"
    export OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$root/filesystem" CONFIG_DIR="$root/config"
    export PERSISTENCE=0
    export SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 SQS_ENDPOINT_STRATEGY=off
    export LOCALSTACK_CLI=0 DEBUG=0 PYTHONUNBUFFERED=1
    launch localstack "$VENV_LOCALSTACK/bin/python" -m localstack.runtime.main
  )
}

launch_dynamodb() {
  # No option to bind one address: DynamoDB Local (Jetty) listens on all interfaces.
  (
    cd "$DDB_DIR" || exit 1
    launch dynamodb java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" \
      -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$DYNAMODB_PORT"
  )
}

launch_moto() {
  (
    cd "$FMN_LOCAL_DIR" || exit 1
    export PYTHONUNBUFFERED=1
    launch moto "$VENV_MOTO/bin/python" "$VENV_MOTO/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  )
}

foreign_port_error() {
  local service=$1 port owner
  port=$(port_of "$service")
  owner=$(port_owner "$port")
  die "port $port in use by another process (${owner:-owner unknown}), not $(label_of "$service"): $PROBE_DETAIL. Stop it, or stop the emulators that use it (localstack/stop.sh only stops its own)"
}

# start_services SERVICE...: starts those not running, then waits until all are ready. Checks
# every port first, so a port taken by something else fails before anything is started.
start_services() {
  local s port pid owner_pid to_wait=() to_launch=()
  for s in "$@"; do
    port=$(port_of "$s")
    probe_code "$s"
    case "$PROBE_CODE" in
      0)
        info "$s: already running on 127.0.0.1:$port ($PROBE_DETAIL)"
        continue
        ;;
      2)
        info "$s: already starting on 127.0.0.1:$port"
        to_wait+=("$s")
        continue
        ;;
      5) die "$s on 127.0.0.1:$port: $PROBE_DETAIL" ;;
      3 | 4)
        owner_pid=$(port_owner_pid "$port")
        if [ -n "$owner_pid" ] && is_ours "$owner_pid"; then
          info "$s: our process (pid $owner_pid) holds port $port but is not ready: waiting"
          to_wait+=("$s")
          continue
        fi
        foreign_port_error "$s"
        ;;
    esac
    # Nothing answers on 127.0.0.1:port.
    pid=$(our_pid "$s")
    if [ -n "$pid" ]; then
      info "$s: pid $pid (ours) is still starting: waiting"
      to_wait+=("$s")
      continue
    fi
    owner_pid=$(port_owner_pid "$port")
    if [ -n "$owner_pid" ]; then
      PROBE_DETAIL="it listens on port $port but not on 127.0.0.1"
      foreign_port_error "$s"
    fi
    installed "$s" || die "$(label_of "$s") is not installed in $FMN_LOCAL_DIR: run localstack/install.sh"
    to_launch+=("$s")
  done
  for s in "${to_launch[@]+"${to_launch[@]}"}"; do
    "launch_$s"
    to_wait+=("$s")
  done
  [ ${#to_wait[@]} -eq 0 ] || wait_ready "${to_wait[@]}"
}

print_log_tail() {
  local log
  log=$(log_file "$1")
  if [ -f "$log" ]; then
    printf -- '--- last 30 lines of %s ---\n' "$log" >&2
    tail -n 30 "$log" >&2
    printf -- '---\n' >&2
  fi
}

# wait_ready SERVICE...: polls until each answers its health check; fails on timeout, on a
# service's process exiting, or on a foreign process taking its port.
wait_ready() {
  local t0=$SECONDS pending=("$@") next_report=$((SECONDS + 5)) s still pidf pid
  say "waiting for ${pending[*]} (timeout ${FMN_EMULATOR_TIMEOUT} s)"
  while [ ${#pending[@]} -gt 0 ]; do
    still=()
    for s in "${pending[@]}"; do
      probe_code "$s"
      case "$PROBE_CODE" in
        0)
          info "$s: ready after $((SECONDS - t0)) s ($PROBE_DETAIL)"
          ;;
        5) die "$s: $PROBE_DETAIL" ;;
        3 | 4)
          pid=$(port_owner_pid "$(port_of "$s")")
          if [ -n "$pid" ] && is_ours "$pid"; then still+=("$s"); else foreign_port_error "$s"; fi
          ;;
        *)
          pidf=$(pid_file "$s")
          if [ -s "$pidf" ] && ! alive "$(cat "$pidf")"; then
            print_log_tail "$s"
            rm -f "$pidf"
            die "$s exited while starting (log: $(log_file "$s"))"
          fi
          still+=("$s")
          ;;
      esac
    done
    pending=("${still[@]+"${still[@]}"}")
    [ ${#pending[@]} -gt 0 ] || break
    if [ $((SECONDS - t0)) -ge "$FMN_EMULATOR_TIMEOUT" ]; then
      for s in "${pending[@]}"; do
        probe_code "$s"
        warn "$s: not ready after $FMN_EMULATOR_TIMEOUT s: $PROBE_DETAIL"
        print_log_tail "$s"
      done
      die "timed out after $FMN_EMULATOR_TIMEOUT s waiting for ${pending[*]}; left running (localstack/stop.sh stops it; FMN_EMULATOR_TIMEOUT=<s> waits longer)"
    fi
    if [ "$SECONDS" -ge "$next_report" ]; then
      for s in "${pending[@]}"; do
        probe_code "$s"
        info "still waiting ($((SECONDS - t0))/$FMN_EMULATOR_TIMEOUT s) for $s: $PROBE_DETAIL"
      done
      next_report=$((SECONDS + 5))
    fi
    sleep 0.5
  done
}

# stop_services SERVICE...: stops ours (pid file, then the owner of the port if it is ours),
# leaves anything else alone, and waits for the ports to be free.
stop_services() {
  local s port pid pids owner waited
  for s in "$@"; do
    port=$(port_of "$s")
    pids=()
    pid=$(our_pid "$s")
    [ -z "$pid" ] || pids+=("$pid")
    pid=$(port_owner_pid "$port")
    if [ -n "$pid" ]; then
      if is_ours "$pid"; then
        [[ " ${pids[*]-} " == *" $pid "* ]] || pids+=("$pid")
      else
        owner=$(port_owner "$port")
        warn "$s: port $port is held by another process ($owner), not started by localstack/: left alone"
      fi
    fi
    if [ ${#pids[@]} -eq 0 ]; then
      info "$s: not running"
      rm -f "$(pid_file "$s")"
      continue
    fi
    info "$s: stopping pid ${pids[*]}"
    for pid in "${pids[@]}"; do signal_tree TERM "$pid"; done
    waited=0
    while :; do
      local any_alive=0
      for pid in "${pids[@]}"; do
        if alive "$pid"; then any_alive=1; fi
      done
      [ "$any_alive" = 1 ] || break
      if [ "$waited" -ge 40 ]; then
        warn "$s: pid ${pids[*]} did not stop after 20 s: killing"
        for pid in "${pids[@]}"; do signal_tree KILL "$pid"; done
        sleep 0.5
        break
      fi
      sleep 0.5
      waited=$((waited + 1))
    done
    rm -f "$(pid_file "$s")"
  done
  # Wait for the ports to be free (of our processes).
  for s in "$@"; do
    port=$(port_of "$s")
    for _ in $(seq 1 40); do
      pid=$(port_owner_pid "$port")
      { [ -z "$pid" ] || ! is_ours "$pid"; } && break
      sleep 0.5
    done
    pid=$(port_owner_pid "$port")
    if [ -n "$pid" ] && is_ours "$pid"; then die "$s: port $port still held by pid $pid"; fi
  done
}

# Signals a process and, when it leads its own process group (setsid), the whole group.
signal_tree() {
  local sig=$1 pid=$2 pgid
  pgid=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f3 || true)
  if [ -n "$pgid" ] && [ "$pgid" = "$pid" ]; then
    kill "-$sig" -- "-$pid" 2>/dev/null || true
  else
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
}

# Parses "all" or service names.
parse_services() {
  SELECTED=()
  if [ $# -eq 0 ]; then SELECTED=("${SERVICES_ALL[@]}"); return; fi
  local a
  for a in "$@"; do
    case "$a" in
      all) SELECTED=("${SERVICES_ALL[@]}") ;;
      localstack | dynamodb | moto) SELECTED+=("$a") ;;
      *) die "unknown service '$a' (expected: localstack, dynamodb, moto, all)" ;;
    esac
  done
}
