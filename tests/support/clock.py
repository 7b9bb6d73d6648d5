"""One fixed rate-limit window for a test that must not cross into the next one."""

from __future__ import annotations

from types import SimpleNamespace

from mcpservers import limits

# The middle of a minute (and of an hour and a day): a window that a test of a few seconds stays in.
MID_WINDOW = 1_800_000_030.0


def one_rate_window(monkeypatch) -> None:
    """Hold the rate limiter's clock still: leases taken at the start stay valid to the end.

    A window that ends during a test makes a call take a new lease (in a worker thread), and a
    fixed-window limit starts counting again, either of which a test that counts would see.
    """
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: MID_WINDOW))
