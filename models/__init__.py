"""Data models: SQLAlchemy table definitions of the CRM warehouse and of the (simulated) source system."""
