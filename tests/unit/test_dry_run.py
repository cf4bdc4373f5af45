"""The dry-run recorders keep a bounded memory however long the daemon runs."""

from __future__ import annotations

import asyncio

from tracker.notify.base import (
    DRY_RUN_MEMORY,
    DryRunAlertSender,
    DryRunChannel,
    OutgoingAlert,
    OutgoingNotice,
)


def test_dry_run_channel_accepts_everything_and_remembers_only_the_latest() -> None:
    """Every notice is accepted with a message id; only the newest DRY_RUN_MEMORY are kept."""
    channel = DryRunChannel()
    total = DRY_RUN_MEMORY + 50

    async def send_all() -> list[str | None]:
        ids = []
        for n in range(total):
            notice = OutgoingNotice(n, f"A{n}", "sms", "13800138000", "正文", f"notice-{n}")
            ids.append((await channel.send(notice)).message_id)
        return ids

    ids = asyncio.run(send_all())
    assert ids[-1] == f"dry-run-{total - 1}" and len(set(ids)) == total
    assert len(channel.sent) == DRY_RUN_MEMORY
    assert channel.sent[0].notice_id == 50 and channel.sent[-1].notice_id == total - 1


def test_dry_run_alert_sender_is_bounded_too() -> None:
    """The alert recorder keeps at most DRY_RUN_MEMORY alerts."""
    sender = DryRunAlertSender()

    async def send_all() -> None:
        for n in range(DRY_RUN_MEMORY + 5):
            assert (await sender.send(OutgoingAlert(n, "dry-run", {}, f"alert-{n}"))).ok

    asyncio.run(send_all())
    assert len(sender.sent) == DRY_RUN_MEMORY
