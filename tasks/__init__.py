"""Prefect tasks: thin wrappers that do IO and carry retries, names and artifacts; logic lives in `crm`."""
