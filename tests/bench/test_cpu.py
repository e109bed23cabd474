"""The machine's CPU readings the benchmarks report beside their figures."""

from __future__ import annotations

from bench.cpu import machine_ticks, stolen_share

STAT = "cpu  1129968 9261 196753 1224970 17542 0 27061 38006 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
LATER = "cpu  1130968 9261 196853 1225770 17542 0 27061 38106 0 0\n"


def test_it_reads_all_of_the_machines_time_and_the_stolen_part():
    # user + nice + system + idle + iowait + irq + softirq + steal; guest time is within user.
    assert machine_ticks(STAT) == (2643561, 38006)


def test_the_stolen_share_is_the_steal_over_all_time_between_two_readings():
    assert stolen_share(machine_ticks(STAT), machine_ticks(LATER)) == 0.05  # 100 of 2,000
    assert stolen_share(machine_ticks(STAT), machine_ticks(STAT)) == 0.0


def test_this_machine_can_be_read():
    total, steal = machine_ticks()
    assert total > steal >= 0
