"""CRM retention data platform: domain logic, plain functions testable without Prefect."""
