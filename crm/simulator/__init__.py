"""A simulated consumer lender + jewellery retailer that feeds the pipelines (`crm simulate`) and reacts to campaigns."""

from crm.simulator.config import SEGMENTS, FaultConfig, Reaction, SimulationConfig
from crm.simulator.inbox import RECEIVED_COLUMNS, read_received, received_key
from crm.simulator.provider import LocalProvider
from crm.simulator.world import SimulationSummary, simulate

__all__ = [
    "RECEIVED_COLUMNS",
    "SEGMENTS",
    "FaultConfig",
    "LocalProvider",
    "Reaction",
    "SimulationConfig",
    "SimulationSummary",
    "read_received",
    "received_key",
    "simulate",
]
