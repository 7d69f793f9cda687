# Starting, watching and stopping the processes of `./assistant up` and `./assistant cluster`.
# Sourced by ./assistant; needs RUN_DIR and LOG_DIR. Each process logs to LOG_DIR/NAME.log
# and leaves its pid in RUN_DIR/NAME.pid (the e2e tests kill processes by that file).

SUPERVISED_PIDS=()
SUPERVISED_NAMES=()

supervise_start() {  # supervise_start NAME COMMAND...
  local name="$1"; shift
  "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  SUPERVISED_PIDS+=("$!"); SUPERVISED_NAMES+=("$name")
  echo "$!" > "$RUN_DIR/$name.pid"
}

supervise_stop() {  # stops every process, then the script
  trap - INT TERM
  echo "==> stopping" >&2
  local pid i waited=0
  for pid in "${SUPERVISED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Like systemd's TimeoutStopSec: a process still running after the grace period is killed,
  # so Ctrl-C always stops everything. Nothing depends on a polite stop: every message is
  # stored before it is handled and unfinished ones are handled again at the next start.
  while ((waited < ${SUPPORT_STOP_GRACE_SECONDS:-20} * 10)); do
    local alive=0
    for pid in "${SUPERVISED_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
    waited=$((waited + 1))
  done
  for i in "${!SUPERVISED_PIDS[@]}"; do
    if kill -0 "${SUPERVISED_PIDS[$i]}" 2>/dev/null; then
      echo "!!! ${SUPERVISED_NAMES[$i]} did not stop within ${SUPPORT_STOP_GRACE_SECONDS:-20}s: killed" >&2
      pkill -KILL -P "${SUPERVISED_PIDS[$i]}" 2>/dev/null || true
      kill -KILL "${SUPERVISED_PIDS[$i]}" 2>/dev/null || true
    fi
  done
  for pid in "${SUPERVISED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$RUN_DIR"/*.pid
  echo "==> stopped" >&2
  exit 0
}

# Keeps running while any process lives; says loudly when one stops (the others go on).
supervise_wait() {
  while ((${#SUPERVISED_PIDS[@]})); do
    local alive=() alive_names=() i
    for i in "${!SUPERVISED_PIDS[@]}"; do
      if kill -0 "${SUPERVISED_PIDS[$i]}" 2>/dev/null; then
        alive+=("${SUPERVISED_PIDS[$i]}"); alive_names+=("${SUPERVISED_NAMES[$i]}")
      else
        echo "!!! ${SUPERVISED_NAMES[$i]} stopped (see $LOG_DIR/${SUPERVISED_NAMES[$i]}.log)" >&2
        rm -f "$RUN_DIR/${SUPERVISED_NAMES[$i]}.pid"
      fi
    done
    SUPERVISED_PIDS=("${alive[@]+"${alive[@]}"}")
    SUPERVISED_NAMES=("${alive_names[@]+"${alive_names[@]}"}")
    sleep 1 &
    wait $! || true
  done
}
