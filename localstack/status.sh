#!/usr/bin/env bash
# Prints each emulator's state. Exit status 0 if all (or all those named) are ready, 1 if not.
#   --quiet   print nothing, only the exit status
set -euo pipefail
# shellcheck source=localstack/_lib.sh
source "$(dirname "$0")/_lib.sh"
quiet=0
args=()
for a in "$@"; do
  case "$a" in
    -q | --quiet) quiet=1 ;;
    *) args+=("$a") ;;
  esac
done
parse_services "${args[@]+"${args[@]}"}"
need_python

rc=0
for s in "${SELECTED[@]}"; do
  port=$(port_of "$s")
  probe_code "$s"
  pid=$(our_pid "$s")
  owner=$(port_owner "$port")
  case "$PROBE_CODE" in
    0) state=running ;;
    1) if [ -n "$pid" ]; then state=starting; else state=stopped; fi ;;
    2) state=starting ;;
    3) state="port-taken" ;;
    5) state=stale ;;
    4) if [ -n "$pid" ]; then state=starting; else state="port-taken"; fi ;;
  esac
  [ "$PROBE_CODE" = 0 ] || rc=1
  if [ "$quiet" = 0 ]; then
    who=""
    if [ -n "$owner" ]; then
      owner_pid=${owner#pid }
      owner_pid=${owner_pid%%,*}
      if is_ours "$owner_pid"; then who="$owner (ours)"; else who="$owner (not started by localstack/)"; fi
    elif [ -n "$pid" ]; then
      who="pid $pid (ours)"
    fi
    printf '%-10s %-10s 127.0.0.1:%-5s %s\n' "$s" "$state" "$port" "${who:+$who; }$PROBE_DETAIL"
    [ "$state" = running ] || [ "$state" = stopped ] || printf '%-10s log: %s\n' "" "$(log_file "$s")"
  fi
done
exit "$rc"
