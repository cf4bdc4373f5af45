"""A deterministic fake tracking source for ``tracker demo`` and tests.

Tracking numbers choose a scenario (``SB`` + two-digit code + serial; see
:mod:`carriers.sandbox.scenarios`); :mod:`carriers.sandbox.parse` tells each scenario's
story as courier-style Chinese scans; :class:`~carriers.sandbox.adapter.SandboxSource`
serves them through the common :class:`~carriers.base.TrackingSource` protocol.
"""

from carriers.sandbox.adapter import SandboxSource
from carriers.sandbox.scenarios import SCENARIO_CODES

__all__ = ["SCENARIO_CODES", "SandboxSource"]
