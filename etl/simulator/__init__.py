"""A simulated Azure DevOps organization served over real HTTP on loopback.

`SimulatedOrganization` plans a deterministic organization from a seed; `start_server` serves it
with the Azure DevOps REST URL layout, so the ETL, its tests, the demo and the benchmarks all run
against the same code path as production.
"""

from etl.simulator.faults import Faults
from etl.simulator.model import SimulatedOrganization
from etl.simulator.server import SimulatorServer, start_server

__all__ = ["Faults", "SimulatedOrganization", "SimulatorServer", "start_server"]
