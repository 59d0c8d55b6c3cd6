"""Shared foundations of every capability: settings, configuration, database, dates, storage, contracts, privacy."""
