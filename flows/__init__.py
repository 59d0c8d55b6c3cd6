"""Prefect flows: thin DAGs that wire tasks together. Each takes the business date `as_of`."""
