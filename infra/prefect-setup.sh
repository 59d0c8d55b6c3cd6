#!/usr/bin/env bash
# Creates what the deployments in prefect.yaml expect on a Prefect server (idempotent):
# the process work pool that runs the flows, and one single-slot global concurrency limit per
# message provider in config/sending.yaml (`provider-<name>`: two dispatch runs never send
# through the same provider at once; flows use them with strict=True, so a missing one fails).
set -euo pipefail
cd "$(dirname "$0")/.."
prefect work-pool inspect crm-process >/dev/null 2>&1 || prefect work-pool create crm-process --type process
for provider in $(python -c "from crm.sending import load_sending_config; print(' '.join(load_sending_config().used_providers()))"); do
  prefect gcl inspect "provider-$provider" >/dev/null 2>&1 || prefect gcl create "provider-$provider" --limit 1
done
echo "work pool crm-process and provider limits ready; now: prefect deploy --all && prefect worker start --pool crm-process"
