#!/usr/bin/env bash
# Creates what the deployments in prefect.yaml expect on a Prefect server (idempotent):
# the work pool that runs the flows, and one single-slot global concurrency limit per message
# provider in config/sending.yaml (`provider-<name>`: two dispatch runs never send through the
# same provider at once; flows use them with strict=True, so a missing one fails).
#   bash infra/prefect-setup.sh          # process work pool crm-process (the default)
#   bash infra/prefect-setup.sh docker   # Docker work pool crm-docker from infra/docker/work-pool.json
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-process}" in
  process)
    pool=crm-process
    prefect work-pool inspect "$pool" >/dev/null 2>&1 || prefect work-pool create "$pool" --type process ;;
  docker)
    pool=crm-docker
    prefect work-pool inspect "$pool" >/dev/null 2>&1 ||
      prefect work-pool create "$pool" --type docker --base-job-template infra/docker/work-pool.json ;;
  *)
    echo "usage: bash infra/prefect-setup.sh [process|docker]" >&2; exit 3 ;;
esac
for provider in $(python -c "from crm.sending import load_sending_config; print(' '.join(load_sending_config().used_providers()))"); do
  prefect gcl inspect "provider-$provider" >/dev/null 2>&1 || prefect gcl create "provider-$provider" --limit 1
done
if [ "$pool" = crm-process ]; then
  echo "work pool crm-process and provider limits ready; now: prefect deploy --all && prefect worker start --pool crm-process"
else
  echo "work pool crm-docker and provider limits ready; now: prefect deploy --all --pool crm-docker && prefect worker start --pool crm-docker --type docker"
fi
