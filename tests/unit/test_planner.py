"""`workload plan`: the plan it picks fits every limit it models, and a plan that breaks one is
refused with one line naming it (ConfigError, exit 78)."""

from __future__ import annotations

import pytest

from workload import budget, cli, errors, ops, planner
from workload.argo import status

pytestmark = pytest.mark.unit
HUNDRED_K = planner.Request(files=100_000, file_bytes=14 * 10**6, storage="oss")


def test_a_hundred_thousand_shards_get_a_plan_within_every_limit():
    plan = planner.choose(HUNDRED_K)
    assert not plan.problems
    assert plan.size.total_bytes <= status.MAX_WORKFLOW_SIZE
    assert all(lv.memory_mb <= 2048 * planner.MEMORY_HEADROOM for lv in plan.levels)
    assert all(lv.gets_per_s <= 2000 and lv.puts_per_s <= 2000 for lv in plan.levels)
    assert plan.levels[0].files == 100_000 and plan.levels[-1].final
    assert sum(lv.pods for lv in plan.levels[:-1]) + 1 == plan.pods
    # every fan-in the planner turned down breaks a limit it names
    for k in planner.FAN_INS:
        other = planner.evaluate(HUNDRED_K, k)
        assert other.problems or (other.makespan_s, other.bytes_moved) >= (
            plan.makespan_s,
            plan.bytes_moved,
        )


def test_a_bigger_read_budget_is_taken_only_where_request_rates_need_it():
    from workload.storage.readahead import READ_AHEAD_BUDGET

    small = planner.choose(planner.Request(files=128, file_bytes=14 * 10**6, storage="oss"))
    assert small.read_budget == READ_AHEAD_BUDGET  # the pods' default
    big = planner.choose(HUNDRED_K)
    assert (
        big.read_budget > READ_AHEAD_BUDGET
        and planner.as_dict(big)["read_budget"] == big.read_budget
    )
    at_default = planner.evaluate(HUNDRED_K, big.fan_in)  # its inputs read a column at a time
    assert any(p.startswith("request rate:") for p in at_default.problems)
    assert max(lv.gets_per_s for lv in big.levels) < max(lv.gets_per_s for lv in at_default.levels)
    assert "read budget" in planner.describe(big)


def test_metrics_outputs_go_first_and_ten_thousand_files_at_fan_in_two_do_not_fit():
    plan = planner.evaluate(planner.Request(files=6_000, file_bytes=14 * 10**6), 2)
    assert not plan.metrics_output and plan.size.fits
    pods = [lv.pods for lv in plan.levels]
    spec = plan.size.spec_bytes
    assert not status.size(pods, fan_in=2, form=plan.form, spec_bytes=spec).fits
    more = planner.evaluate(planner.Request(files=10_000, file_bytes=14 * 10**6), 2)
    assert any(p.startswith("workflow size:") for p in more.problems)


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--fan-in", "8"], "MAX_WORKFLOW_SIZE"),
        (["--pod-memory", "256Mi"], "memory: "),
        (["--storage", "tape"], "--storage 'tape'"),
    ],
)
def test_a_plan_that_breaks_a_limit_is_refused_in_one_line(capsys, args, phrase):
    code = cli.main(["plan", "--files", "100000", "--file-bytes", "14MB", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == errors.EXIT_CONFIG
    assert len(err) == 1 and phrase in err[0]


def test_the_seed_case_prints_its_levels(capsys):
    assert cli.main(["plan", "--files", "128", "--file-bytes", "9.4MB", "--fan-in", "2"]) == 0
    out = capsys.readouterr().out
    assert "fan-in 2, 2 process levels" in out
    lines = out.splitlines()
    table = lines[[line.split()[0] for line in lines].index("level") + 1 :]
    assert [line.split()[0] for line in table[:3]] == ["l1", "l2", "final"]


def test_batches_shrink_with_the_fan_in_so_the_rows_in_flight_do_not_grow():
    width = budget.row_width(ops.get("merge").schema(1))
    inflight = [k * budget.batch_rows(k, 65_536) for k in (4, 8, 16, 32, 64)]
    assert inflight == [budget.LEVEL_ROWS] * 5
    assert budget.batch_rows(2, 65_536) == 65_536  # the setting caps it
    assert budget.batch_rows(1000, 65_536) == budget.MIN_BATCH_ROWS
    local = [budget.project(fan_in=k, row_bytes=width, columns=4, file_bytes=10**7,
                            file_rows=10**6, object_store=False) for k in (8, 64)]  # fmt: skip
    assert sum(local[1].values()) - sum(local[0].values()) < 20  # MB: readers only
