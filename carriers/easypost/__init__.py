"""EasyPost (Trackers API v2): pure request builders, parsing and webhook checks.

The HTTP adapter is written separately; :mod:`carriers.easypost.codes` holds the raw
code tables and :mod:`carriers.easypost.parse` maps payloads to
:class:`~carriers.model.TrackingResult`.
"""

from carriers.easypost import parse
from carriers.easypost.parse import *  # noqa: F403  (the package's API is parse's ``__all__``)

__all__ = parse.__all__
