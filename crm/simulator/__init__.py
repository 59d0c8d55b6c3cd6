"""A simulated consumer lender + jewellery retailer that feeds the pipelines (`crm simulate`)."""

from crm.simulator.config import FaultConfig, SimulationConfig
from crm.simulator.world import SimulationSummary, simulate

__all__ = ["FaultConfig", "SimulationConfig", "SimulationSummary", "simulate"]
