"""Campaigns: audiences, cascades, contact budgets, control groups, planning and uplift (issue: campaigns)."""
