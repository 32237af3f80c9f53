"""A test hook that makes a run process send a signal at a known update.

``SPIN_BENCH_TEST_SIGNAL_AT="<step>:<signal>[:mid][:group]"``, e.g. ``"17:SIGINT:mid:group"``:

- ``<step>``: the update that sends it (1 is a run's first update);
- ``<signal>``: a signal name (SIGINT, SIGTERM, SIGKILL, SIGSTOP, ...), or ``KeyboardInterrupt`` to raise that
  exception in place, as an interrupt delivered as an exception does (Ray's cancel, a non-main thread);
- ``mid``: send it inside that update, right after its first optimizer step (where a Ctrl-C can land), instead
  of after the update returns;
- ``group``: send it to the whole process group (what a terminal's Ctrl-C does), instead of this process only.

Fault tests use it to stop training at a known point instead of after a sleep. Unset, nothing changes.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

ENV_VAR = "SPIN_BENCH_TEST_SIGNAL_AT"
_FLAGS = ("mid", "group")
RAISE = "KeyboardInterrupt"


@dataclass(frozen=True)
class SignalAt:
    """When and where the hook sends its signal."""

    step: int
    """The update that sends it (1 is a run's first update)."""
    signum: signal.Signals | None
    """The signal; None raises KeyboardInterrupt in place instead."""
    mid: bool = False
    """Inside the update, after its first optimizer step; else after the update returns."""
    group: bool = False
    """To the whole process group; else to this process."""

    def send(self) -> None:
        if self.signum is None:
            raise KeyboardInterrupt
        if self.group:
            os.killpg(os.getpgid(0), self.signum)
        else:
            os.kill(os.getpid(), self.signum)


def parse_signal_at(text: str) -> SignalAt:
    """``"<step>:<signal>[:mid][:group]"`` -> SignalAt; ValueError naming the bad part and what is allowed."""
    parts = text.split(":")
    usage = f"{ENV_VAR}={text!r}: expected <step>:<signal>[:mid][:group], e.g. 17:SIGINT:mid"
    if len(parts) < 2 or not parts[0].isdigit() or int(parts[0]) < 1:
        raise ValueError(usage)
    try:
        signum = None if parts[1] == RAISE else signal.Signals[parts[1]]
    except KeyError:
        raise ValueError(f"{usage}; {parts[1]!r} is neither a signal name nor {RAISE}") from None
    flags = parts[2:]
    if any(flag not in _FLAGS for flag in flags) or len(set(flags)) != len(flags):
        raise ValueError(f"{usage}; flags are {', '.join(_FLAGS)}")
    return SignalAt(int(parts[0]), signum, "mid" in flags, "group" in flags)


def arm_test_signal(agent) -> None:
    """Wrap ``agent`` so that it sends the signal that ``$SPIN_BENCH_TEST_SIGNAL_AT`` asks for (if set)."""
    text = os.environ.get(ENV_VAR)
    if not text:
        return
    at = parse_signal_at(text)
    if at.mid:
        sent = []

        def after_optimizer_step(optimizer, args, kwargs) -> None:
            if agent.step + 1 == at.step and not sent:  # the update in progress has not counted itself yet
                sent.append(True)
                at.send()

        for optimizer in agent._optimizers().values():
            optimizer.register_step_post_hook(after_optimizer_step)
        return
    update = agent.update

    def update_then_signal(batch):
        metrics = update(batch)
        if agent.step == at.step:
            at.send()
        return metrics

    agent.update = update_then_signal
