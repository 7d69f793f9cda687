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
  local pid
  for pid in "${SUPERVISED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
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
