"""What every HTTP tracking adapter shares: client, rate budget, auth circuit, retries.

Nothing here knows a provider: :class:`HttpSource` is the base adapter class,
:func:`send` the polite request helper, :data:`GUARDS` the process-wide per-source budgets
and circuits, :class:`SharedClient` the one lazily created client a set of sources shares.
"""

from carriers.transport.budget import Denial, DenialReason, RateBudget
from carriers.transport.circuit import AuthCircuit
from carriers.transport.client import ClientLease, SharedClient, make_client
from carriers.transport.guard import GUARDS, GuardRegistry, ProviderGuard
from carriers.transport.memo import Memo
from carriers.transport.options import OptionError, base_url, optional_str, positive, require_str
from carriers.transport.request import Reply, RetryPolicy, Sleep, admit, parse_retry_after, send
from carriers.transport.source import HttpSource, QueryParser

__all__ = [
    "GUARDS",
    "AuthCircuit",
    "ClientLease",
    "Denial",
    "DenialReason",
    "GuardRegistry",
    "HttpSource",
    "Memo",
    "OptionError",
    "ProviderGuard",
    "QueryParser",
    "RateBudget",
    "Reply",
    "RetryPolicy",
    "SharedClient",
    "Sleep",
    "admit",
    "base_url",
    "make_client",
    "optional_str",
    "parse_retry_after",
    "positive",
    "require_str",
    "send",
]
