"""RunChannel: the one place a distributed run's workers and its launcher meet (a Ray actor).

It lives as long as the launcher's connection, so it outlasts a worker group that Ray restarts:
- events: the chief's engine events and every worker's progress, taken by the launcher in order;
- the roster: which process (host, pid) holds each rank, counted per attempt, so the chief knows
  when Ray has restarted the group and can write workers.json;
- the run folder and the restarts so far, so a restarted chief continues the same run;
- a stop requested by the user, and a fatal error after which restarting would not help.

Only plain data goes in and out. Ray runs one method at a time, in the order each caller sent them.
"""

from __future__ import annotations

from typing import Any


class RunChannel:
    def __init__(self, workers: int):
        self.workers = workers
        self.events: list[Any] = []
        self.joins: dict[int, int] = {}
        self.roster: dict[int, dict[str, Any]] = {}
        self.run_dir = ""
        self.restarts: list[dict[str, Any]] = []
        self.stop = False
        self.fatal = ""

    def put(self, event: Any) -> None:
        self.events.append(event)

    def take(self) -> list[Any]:
        events, self.events = self.events, []
        return events

    def flush(self) -> None:
        """Returns once every call this caller made before it has run."""

    def join(self, rank: int, host: str, pid: int, problem: str = "") -> int:
        """Registers a worker process; returns the attempt it belongs to (0 first, 1 after a restart)."""
        self.joins[rank] = self.joins.get(rank, 0) + 1
        self.roster[rank] = {"rank": rank, "host": host, "pid": pid, "problem": problem}
        return self.joins[rank] - 1

    def members(self, attempt: int) -> list[dict[str, Any]] | None:
        """Every rank's process once all of them have joined `attempt`, else None."""
        if len(self.joins) < self.workers or min(self.joins.values()) <= attempt:
            return None
        return [self.roster[rank] for rank in sorted(self.roster)]

    def set_run_dir(self, run_dir: str) -> None:
        self.run_dir = run_dir

    def get_run_dir(self) -> str:
        return self.run_dir

    def add_restart(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        self.restarts.append(record)
        return list(self.restarts)

    def get_restarts(self) -> list[dict[str, Any]]:
        return list(self.restarts)

    def request_stop(self) -> None:
        self.stop = True

    def stop_requested(self) -> bool:
        return self.stop

    def set_fatal(self, message: str) -> None:
        self.fatal = self.fatal or message

    def get_fatal(self) -> str:
        return self.fatal
