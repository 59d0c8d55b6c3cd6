#!/usr/bin/env bash
# Creates what the deployments in prefect.yaml expect on a Prefect server (idempotent):
# the process work pool that runs the flows.
set -euo pipefail
prefect work-pool inspect crm-process >/dev/null 2>&1 || prefect work-pool create crm-process --type process
echo "work pool crm-process ready; now: prefect deploy --all && prefect worker start --pool crm-process"
