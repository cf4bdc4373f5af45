"""The report as JSON for other systems.

The object has these members (``meta.schema_version`` changes when one changes meaning):

* ``meta``: ``kind`` ("daily"), ``date``, ``timezone``, ``window_start``/``window_end`` (the
  24 h covered), ``period_start``/``period_end`` (the 30 days of trends, scorecard and
  regions), ``generated_at``, ``shop``, ``schema_version``;
* ``headline``: ``open_total``, ``open_by_kind`` {kind: {severity: n}}, ``opened``,
  ``resolved``, ``auto_resolved``, ``resolved_by_agent``, ``escalated``, ``acknowledged``,
  ``oldest_open`` [...], ``notices_sent``, ``buyers_notified``, ``notices_failed``,
  ``notices_waiting``, ``alerts_dead``, ``alerts_retrying``, ``alerts_undelivered``;
* ``actions``: the most urgent open tickets (``actions_total`` = all open), each with
  order, kind, courier, tracking number, destination, last scan, evidence summary,
  suggested action and ``open_hours``;
* ``trends``: ``days``, ``opened_by_kind`` {kind: [n per day]}, ``resolved`` [n per day],
  ``open_age`` [{label, min_hours, max_hours, total, by_kind}];
* ``couriers`` and ``lanes`` (``lane`` set): shipments, delivered, on_time, late, undecided,
  on_time_rate, median/p90 transit days (nearest rank over whole hours), exceptions
  {kind: parcels}, exception_rates, exception_total, exceptional, exception_rate, lost;
* ``regions``: per destination province the period's parcels (``shipments``), parcels
  with a ticket per kind (``by_kind``, summed in ``exceptions``) and with any
  (``exceptional``, ``exception_rate``), and tickets open now (``open_now``);
  ``disruptions``: promotions and holidays; ``freshness``: per tracking source.

Times are ISO 8601 with the shop's offset; rates are fractions (0.0-1.0) or null.
"""

from __future__ import annotations

import json

from tracker.report.model import DailyReport

__all__ = ["render_json"]


def render_json(report: DailyReport) -> str:
    """Pretty-printed UTF-8 JSON (Chinese characters kept as they are, not escaped)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
