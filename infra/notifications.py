"""Failure notifications: a Prefect automation that calls a webhook when a CRM flow run fails or crashes.

    CRM_ALERT_WEBHOOK_URL=https://chat.example.com/hooks/... python infra/notifications.py

Run it against the Prefect server (PREFECT_API_URL) after `prefect deploy --all`. It is
idempotent: the webhook block `crm-alerts` is overwritten and the automation
`crm-flow-run-failed` replaced. The message names the flow run, its state message (the one-line
error of cli/errors.py) and a link to the run in the UI; it carries no personal data. To send
e-mail instead, create an e-mail notification block in the UI and point the automation's action
at it. Exit codes follow the CLI's: 3 when the webhook address is missing.
"""

from __future__ import annotations

import contextlib
import os
import sys

from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.exceptions import ObjectNotFound

BLOCK = "crm-alerts"
AUTOMATION = "crm-flow-run-failed"
SUBJECT = "CRM: {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = "{{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }} {{ flow_run|ui_url }}"


def main() -> int:
    url = os.environ.get("CRM_ALERT_WEBHOOK_URL", "").strip()
    if not url:
        print("CRM_ALERT_WEBHOOK_URL is not set: give the webhook address that receives the alerts", file=sys.stderr)
        return 3
    block = CustomWebhookNotificationBlock(
        name=BLOCK,
        url=url,
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
        allow_private_urls=True,  # company chat and alert gateways usually live on the internal network
    )
    block_id = block.save(BLOCK, overwrite=True)
    with contextlib.suppress(ObjectNotFound, ValueError):  # first run: nothing to replace
        Automation.read(name=AUTOMATION).delete()
    Automation(
        name=AUTOMATION,
        description="A CRM flow run (deployments tagged crm) failed or crashed.",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.crm"},
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    ).create()
    print(f"automation {AUTOMATION} calls the webhook block {BLOCK} when a crm flow run fails or crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
