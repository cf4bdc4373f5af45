"""17TRACK (api.17track.net, Tracking API v2.2): pure request bodies, parsing and webhook checks.

The HTTP adapter (``adapter.py``) is written separately; this package only holds the
pure parts: :mod:`carriers.track17.codes` (raw code tables) and
:mod:`carriers.track17.parse` (payload -> :class:`~carriers.model.TrackingResult`).
"""

from carriers.track17 import parse
from carriers.track17.parse import *  # noqa: F403  (the package's API is parse's ``__all__``)

__all__ = parse.__all__
