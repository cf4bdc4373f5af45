"""AfterShip (Tracking API v4): pure request builders, parsing and webhook checks.

The HTTP adapter is written separately; :mod:`carriers.aftership.codes` holds the raw
code tables and :mod:`carriers.aftership.parse` maps payloads to
:class:`~carriers.model.TrackingResult`.
"""

from carriers.aftership import parse
from carriers.aftership.parse import *  # noqa: F403  (the package's API is parse's ``__all__``)

__all__ = parse.__all__
