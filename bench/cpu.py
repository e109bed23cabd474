"""CPU seconds of processes, from /proc (Linux): the one reader every benchmark uses."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (not its children's)."""
    return _stat(pid)[1]


def _stat(pid: int) -> tuple[int, float, float]:
    """A process's parent, its own CPU seconds (user + system) and those of its reaped
    children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return int(fields[1]), own, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


def _process_table() -> dict[int, tuple[int, float, float]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while the table was read
    return table


def _tree_cpu(table: dict, root: int) -> float:
    """CPU seconds of a process and its descendants, living or gone: a PostgreSQL backend that
    exits moves its time into the postmaster's reaped-children time."""
    children = defaultdict(list)
    for pid, (parent, _, _) in table.items():
        children[parent].append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1] + table[pid][2]
            todo += children[pid]
    return total


def cpu_snapshot(trees: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, and of this process alone ("bench": its
    reaped children are the worker and the like, counted under their own names)."""
    table = _process_table()
    snapshot = {name: _tree_cpu(table, pid) for name, pid in trees.items()}
    snapshot["bench"] = table[os.getpid()][1]
    return snapshot


def machine_ticks(stat: str | None = None) -> tuple[int, int]:
    """The machine's CPU time so far in clock ticks, all of it and the part the hypervisor
    gave to other guests ("steal"), from /proc/stat's first line."""
    line = (stat if stat is not None else Path("/proc/stat").read_text()).split("\n", 1)[0]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in line.split()[1:9])
    return user + nice + system + idle + iowait + irq + softirq + steal, steal


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Of the machine's CPU time between two readings, the share stolen by the host: a run
    on a virtual machine whose neighbours are busy is slower, and this says so."""
    total = after[0] - before[0]
    return round((after[1] - before[1]) / total, 3) if total > 0 else 0.0


def cpu_used(before: dict, after: dict, names: tuple[str, ...]) -> dict[str, float]:
    used = {name: round(after[name] - before[name], 2) for name in names if name in before}
    used["total"] = round(sum(used.values()), 2)
    return used


def _local_pid(pid: int, program: str) -> int | None:
    """The pid if that process runs here and is `program` (a remote server's is not ours)."""
    try:
        return pid if Path(f"/proc/{pid}/comm").read_text().startswith(program) else None
    except FileNotFoundError:
        return None


def server_pids() -> dict[str, int]:
    """PostgreSQL's postmaster and the Redis server, where they run on this machine."""
    from django.db import connection

    from errorsink.connections import redis_client

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = _local_pid(cursor.fetchone()[0], "postgres")
    pids = {}
    if backend is not None:
        pids["postgres"] = _stat(backend)[0]
    redis_pid = _local_pid(int(redis_client().info("server")["process_id"]), "redis")
    if redis_pid is not None:
        pids["redis"] = redis_pid
    if "postgres" not in pids:
        print("PostgreSQL is not on this machine: its CPU is not counted", file=sys.stderr)
    return pids


def program_cpu_seconds(program: str) -> float:
    """CPU seconds used so far by this machine's processes named ``program`` (``postgres``: the
    embedded server's or a local one's; 0 when it runs elsewhere). Processes that ended are not
    counted: the worker's connections live as long as the worker."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == program:
                total += process_cpu_seconds(int(comm.parent.name))
        except OSError:
            continue  # ended while being read
    return total
