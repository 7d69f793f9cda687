#!/usr/bin/env bash
# The container's entry point: one process per container, chosen by the first argument.
set -euo pipefail
cd /srv/support
APP=.venv/app/bin/python
case "${1:-web}" in
  web) exec "$APP" -m handoff serve ;;
  migrate) exec "$APP" -m handoff migrate ;;
  actions)
    exec env SANIC_HOST=0.0.0.0 ACTION_SERVER_SANIC_WORKERS="${SUPPORT_ACTION_WORKERS:-2}" \
        "$APP" -m rasa_sdk --actions actions -p "${SUPPORT_ACTION_PORT:-5055}" ;;
  rasa)
    eval "$("$APP" scripts/cluster_config.py rasa-env)"
    exec env PYTHONPATH=/srv/support .venv/rasa/bin/rasa run -m "$(ls models/*.tar.gz | head -1)" \
        --enable-api --auth-token "$SUPPORT_RASA_TOKEN" -i 0.0.0.0 -p "${SUPPORT_RASA_PORT:-5005}" \
        --credentials credentials.yml --endpoints deploy/endpoints.cluster.yml ;;
  *) echo "usage: web | rasa | actions | migrate" >&2; exit 2 ;;
esac
