import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from weightsharing.context import resolve_budget
from weightsharing.errors import UserError
from weightsharing.provenance import git_sha, provenance, trained_provenance
from weightsharing.store import Store, parse_shard, shard_of, sweep
from weightsharing.summary import read_summaries, write_summary


def units(n):
    return [{"rev": 1, "model": "m", "seed": s} for s in range(n)]


class Killed(Exception):
    pass


def test_interrupted_sweep_resumes_without_redoing_finished_units(tmp_path):
    path = tmp_path / "runs.jsonl"
    calls, interrupt = [], [3]

    def work(key):
        if key["seed"] in interrupt:
            interrupt.clear()
            raise Killed  # interrupted while training the 4th unit
        calls.append(key["seed"])
        return {"metric": key["seed"] * 10}

    with pytest.raises(Killed):
        sweep(Store(path, log=lambda s: None), units(6), key=lambda u: u, run=work, describe=lambda k, r: "")
    assert calls == [0, 1, 2] and len(path.read_text().splitlines()) == 3

    store = Store(path, log=lambda s: None)
    records = sweep(store, units(6), key=lambda u: u, run=work, describe=lambda k, r: "")
    assert calls == [0, 1, 2, 3, 4, 5]  # 0-2 were not trained again
    assert [r["metric"] for r in records] == [0, 10, 20, 30, 40, 50]
    assert (store.computed, store.reused) == (3, 3)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files behind


SLOW_SWEEP = """
import sys, time
from weightsharing.store import Store, parse_shard, sweep
units = [{"rev": 1, "seed": s} for s in range(50)]
def work(key):
    time.sleep(0.05)
    return {"metric": key["seed"]}
sweep(Store(sys.argv[1], log=lambda s: None), units, key=lambda u: u, run=work, describe=lambda k, r: "")
"""


def test_sweep_killed_with_sigkill_keeps_every_finished_unit(tmp_path):
    path = tmp_path / "runs.jsonl"
    child = subprocess.Popen([sys.executable, "-c", SLOW_SWEEP, str(path)])
    for _ in range(600):  # wait (up to a minute) until a few units are stored, then kill mid-sweep
        if path.exists() and len(path.read_text().splitlines()) >= 5:
            break
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    warnings = []
    store = Store(path, log=warnings.append)
    assert warnings == []  # every line on disk is a whole record: nothing to reject
    done = len(store)
    assert 5 <= done < 50
    calls = []
    store.log = lambda s: None
    sweep(store, [{"rev": 1, "seed": s} for s in range(50)], key=lambda u: u,
               run=lambda k: calls.append(k) or {"metric": 0}, describe=lambda k, r: "")
    assert len(calls) == 50 - done and len(Store(path)) == 50


def test_truncated_last_line_is_reported_kept_aside_and_recomputed(tmp_path):
    path = tmp_path / "runs.jsonl"
    store = Store(path, log=lambda s: None)
    for key in units(3):
        store.run(key, lambda: {"metric": 1})
    text = path.read_text()
    path.write_text(text[:-25])  # a write cut short
    messages = []
    store = Store(path, log=messages.append)
    assert len(messages) == 1 and "line(s) 3 of 3" in messages[0] and "runs.jsonl.rejected" in messages[0]
    assert len(store) == 2 and units(3)[2] not in store
    assert (tmp_path / "runs.jsonl.rejected").read_text() == text[:-25].splitlines()[2] + "\n"
    assert len(path.read_text().splitlines()) == 2  # the store on disk is whole again
    store.run(units(3)[2], lambda: {"metric": 2})
    assert store.computed == 1


def test_fresh_ignores_stored_units(tmp_path):
    path = tmp_path / "runs.jsonl"
    Store(path).run(units(1)[0], lambda: {"metric": 1})
    store = Store(path, fresh=True)
    record = store.run(units(1)[0], lambda: {"metric": 2})
    assert record["metric"] == 2 and store.computed == 1


def test_key_order_does_not_matter(tmp_path):
    store = Store(tmp_path / "runs.jsonl")
    store.run({"a": 1, "b": 2}, lambda: {"x": 1})
    assert {"b": 2, "a": 1} in store


def test_records_carry_time_and_provenance(tmp_path):
    record = Store(tmp_path / "runs.jsonl").run({"k": 1}, lambda: {"x": 1})
    assert record["seconds"] >= 0 and record["finished_at"] and record["device"] == "cpu"
    assert record["commit"] == git_sha()  # the code that trained it, "+dirty" if lib/ had changes
    assert json.loads((tmp_path / "runs.jsonl").read_text())["key"] == {"k": 1}


def test_trained_provenance_counts_units_per_commit_and_spans_their_times():
    records = [{"commit": "a", "finished_at": "2026-12-01T10:00:00+00:00"},
               {"commit": "b", "finished_at": "2026-12-02T09:00:00+00:00"},
               {"commit": "a", "finished_at": "2026-12-01T11:00:00+00:00", "commit_inferred": True}]
    assert trained_provenance(records) == {
        "commits": {"a": 1, "b": 1, "a (inferred)": 1}, "from": "2026-12-01T10:00:00+00:00",
        "to": "2026-12-02T09:00:00+00:00"}


def test_unknown_budget_names_the_choices():
    with pytest.raises(UserError, match="choose one of smoke, cpu, paper"):
        resolve_budget({"smoke": 1, "cpu": 2, "paper": 3}, "gpu", "salimbeni_pairs")


def test_summary_rejects_an_unknown_verdict(tmp_path):
    store = Store(tmp_path / "runs.jsonl")
    with pytest.raises(ValueError, match="verdict"):
        write_summary("x", "smoke", store=store, prov=provenance(), wall_seconds=1,
                           claims=[{"id": "A", "claim": "", "verdict": "probably", "evidence": ""}], tables={})


def test_corrupt_summary_is_a_one_line_error(results):
    (results / "x" / "cpu").mkdir(parents=True)
    (results / "x" / "cpu" / "summary.json").write_text("{")
    with pytest.raises(UserError, match="rerun its notebook"):
        read_summaries()


def test_units_no_longer_planned_are_dropped_and_reported(tmp_path):
    store = Store(tmp_path / "runs.jsonl", log=lambda s: None)
    for key in units(4):
        store.run(key, lambda: {"metric": 1})
    messages = []
    store = Store(tmp_path / "runs.jsonl", log=messages.append)
    sweep(store, units(2), key=lambda u: u, run=lambda k: {"metric": 2}, describe=lambda k, r: "")
    assert store.drop_unused() == 2 and len(Store(tmp_path / "runs.jsonl")) == 2
    assert "dropped 2 stored unit(s)" in messages[-1]


def test_items_with_equal_keys_train_once_and_come_back_in_plan_order(tmp_path):
    calls = []
    plan = [("E1", 0), ("E2", 1), ("E1", 1), ("E2", 0)]  # (experiment, seed); the key ignores the experiment
    records = sweep(Store(tmp_path / "runs.jsonl", log=lambda s: None), plan, key=lambda it: {"seed": it[1]},
                         run=lambda it: calls.append(it) or {"seed": it[1]}, describe=lambda it, r: "")
    assert calls == [("E1", 0), ("E2", 1)] and [r["seed"] for r in records] == [0, 1, 1, 0]


def test_summary_is_strict_json_without_nan_or_infinity(tmp_path):
    import json

    import numpy as np

    store = Store(tmp_path / "runs.jsonl")
    path = write_summary("x", "smoke", store=store, prov=provenance(), wall_seconds=1,
                              claims=[{"id": "X1", "claim": "c", "verdict": "holds", "evidence": "e"}],
                              tables={"t": [{"ours": float("nan"), "paper": np.float64(0.5), "n": np.int64(2),
                                             "inf": float("inf"), "arr": np.array([1.0, np.nan])}]})

    def refuse(name):
        raise ValueError(f"non-JSON constant {name}")

    row = json.loads(path.read_text(), parse_constant=refuse)["tables"]["t"][0]
    assert row == {"ours": None, "paper": 0.5, "n": 2, "inf": None, "arr": [1.0, None]}


WRITER = """
import sys, time
from weightsharing.store import Store, parse_shard, sweep
first, last, shard = int(sys.argv[2]), int(sys.argv[3]), parse_shard(sys.argv[4] if len(sys.argv) > 4 else None)
store = Store(sys.argv[1], log=lambda s: None, shard=shard)
def work(key):
    time.sleep(0.02)
    return {"metric": key["seed"] * 10}
sweep(store, [{"rev": 1, "seed": s} for s in range(first, last)], key=lambda u: u, run=work,
           describe=lambda k, r: "")
"""


def test_two_writers_at_once_lose_nothing_and_store_no_unit_twice(tmp_path):
    path = tmp_path / "runs.jsonl"
    # overlapping plans started together: 0-59 and 30-89, each writing every unit as it finishes
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), a, b]) for a, b in (("0", "60"), ("30", "90"))]
    assert [w.wait() for w in writers] == [0, 0]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    seeds = [r["key"]["seed"] for r in lines]
    assert sorted(seeds) == list(range(90))  # every unit, once
    assert all(r["metric"] == r["key"]["seed"] * 10 for r in lines)


def test_shards_partition_the_units_and_their_union_is_the_whole_plan(tmp_path):
    path = tmp_path / "runs.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), "0", "40", f"{i}/3"]) for i in (1, 2, 3)]
    assert [w.wait() for w in writers] == [0, 0, 0]
    stored = Store(path)
    assert len(stored) == 40
    by_shard = {i: {r["key"]["seed"] for r in stored.records.values() if shard_of(r["key"], 3) == i} for i in (1, 2, 3)}
    assert all(len(v) > 0 for v in by_shard.values())  # every shard had work: the hash spreads the units
    calls = []
    sweep(Store(path, log=lambda s: None), [{"rev": 1, "seed": s} for s in range(40)], key=lambda u: u,
               run=lambda k: calls.append(k) or {}, describe=lambda k, r: "")
    assert calls == []  # a plain run after the shards reuses every unit


def test_a_sharded_sweep_leaves_the_other_shards_units_as_none(tmp_path):
    store = Store(tmp_path / "runs.jsonl", log=lambda s: None, shard=(2, 2))
    records = sweep(store, units(10), key=lambda u: u, run=lambda u: {"m": u["seed"]}, describe=lambda k, r: "")
    mine = [u["seed"] for u in units(10) if shard_of(u, 2) == 2]
    assert [r["m"] for r in records if r is not None] == mine and records.count(None) == 10 - len(mine)


def test_a_group_key_keeps_dependent_units_in_one_shard(tmp_path):
    plan = [{"rev": 1, "exp": e, "stage": s} for e in range(8) for s in ("CNN", "FCN")]
    owned = []
    for i in (1, 2):
        store = Store(tmp_path / f"{i}.jsonl", log=lambda s: None, shard=(i, 2))
        recs = sweep(store, plan, key=lambda u: u, run=lambda u: {}, describe=lambda k, r: "",
                          group=lambda u: {"exp": u["exp"]})
        owned.append({u["exp"] for u, r in zip(plan, recs) if r is not None})
        assert all((r is None) == (recs[j ^ 1] is None) for j, r in enumerate(recs))  # both stages or neither
    assert owned[0] | owned[1] == set(range(8)) and not owned[0] & owned[1]


def test_a_stack_trains_its_missing_seeds_together_and_shares_their_seconds(tmp_path):
    plan = [{"rev": 1, "config": c, "seed": s} for c in "ab" for s in range(3)]
    stack = lambda u: {"config": u["config"]}
    path = tmp_path / "runs.jsonl"
    sweep(Store(path, log=lambda s: None), [plan[1]], key=lambda u: u, run=lambda u: {"m": u["seed"]},
               describe=lambda k, r: "")  # seed 1 of "a" trained alone before
    calls = []

    def run_stack(items):
        calls.append([u["seed"] for u in items])
        time.sleep(0.05 * len(items))
        return [{"m": u["seed"]} for u in items]

    records = sweep(Store(path, log=lambda s: None), plan, key=lambda u: u, run=None, describe=lambda k, r: "",
                         stack=stack, run_stack=run_stack)
    assert calls == [[0, 2], [0, 1, 2]]  # the stored seed is reused, each configuration's others train at once
    assert [r["m"] for r in records] == [u["seed"] for u in plan]
    a = [r for r in records if r["key"]["config"] == "a" and r["key"]["seed"] != 1]
    assert all(r["stacked"] == 2 for r in a) and a[0]["seconds"] == a[1]["seconds"] >= 0.05
    for i in (1, 2):  # sharded by the stack key: a configuration's seeds never split between shards
        store = Store(tmp_path / f"{i}.jsonl", log=lambda s: None, shard=(i, 2))
        recs = sweep(store, plan, key=lambda u: u, run=None, describe=lambda k, r: "", stack=stack,
                          run_stack=lambda items: [{} for _ in items])
        assert len({r is None for u, r in zip(plan, recs) if u["config"] == "a"}) == 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_one_line(text):
    with pytest.raises(UserError, match="not I/N"):
        parse_shard(text)


def test_fresh_and_shard_together_are_refused(tmp_path):
    with pytest.raises(UserError, match="cannot be combined"):
        Store(tmp_path / "runs.jsonl", fresh=True, shard=(1, 2))


def test_a_strict_store_refuses_uncommitted_code_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("weightsharing.store.git_sha", lambda: "0123456789ab+dirty")
    trained = []
    store = Store(tmp_path / "runs.jsonl", strict=True, budget="cpu", log=lambda s: None)
    with pytest.raises(UserError, match="budget 'cpu' stores only units trained from committed code") as e:
        store.run({"seed": 0}, lambda: trained.append(1) or {"m": 1})
    assert "\n" not in str(e.value) and not trained  # refused before any training
    smoke = Store(tmp_path / "smoke.jsonl", log=lambda s: None)  # smoke is not strict: allowed, and marked
    assert smoke.run({"seed": 0}, lambda: {"m": 1})["commit"].endswith("+dirty")


def test_a_strict_store_retrains_units_from_uncommitted_code_and_replaces_them(tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    monkeypatch.setattr("weightsharing.store.git_sha", lambda: "0123456789ab+dirty")
    loose = Store(path, log=lambda s: None)
    loose.run({"seed": 0}, lambda: {"m": "dirty"})
    loose.run({"seed": 1}, lambda: {"m": "dirty"})
    monkeypatch.setattr("weightsharing.store.git_sha", lambda: "0123456789ab")
    said = []
    store = Store(path, strict=True, budget="cpu", log=said.append)
    assert said and "2 stored unit(s) were trained from uncommitted code" in said[0]
    assert store.run({"seed": 0}, lambda: {"m": "clean"})["m"] == "clean"
    on_disk = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["key"]["seed"], r["commit"]) for r in on_disk] == [(0, "0123456789ab")]  # seed 1 (dirty, unused) gone


def test_minutes_table_sums_chapters_and_compares_with_the_baseline():
    from weightsharing import performance as P

    summaries = [{"slug": "a", "compute_seconds": 600.0}, {"slug": "b", "compute_seconds": 4200.0}]
    table = P.minutes_table(summaries, {"training_minutes": {"a": 20.0}}).set_index("chapter")
    assert table.loc["a", "now (min)"] == 10 and table.loc["a", "change (min)"] == -10
    assert np.isnan(table.loc["b", "before (min)"]) and table.loc["b", "now (min)"] == 70
    assert table.loc["whole book", "now (min)"] == 80 and table.loc["whole book", "before (min)"] == 20
    assert np.isnan(table.loc["whole book", "aim (min)"]) and table.loc["a", "aim (min)"] == P.CHAPTER_AIM_MINUTES == 120


def test_a_stack_trains_at_most_max_stack_units_at_a_time(tmp_path):
    from weightsharing.store import Store, sweep

    sizes = []

    def run_stack(items):
        sizes.append(len(items))
        return [{"value": i} for i in items]

    store = Store(tmp_path / "runs.jsonl", log=lambda s: None)
    records = sweep(store, list(range(25)), key=lambda i: {"seed": i}, run=lambda i: {"value": i},
                    describe=lambda i, r: str(i), stack=lambda i: {"arm": "a"}, run_stack=run_stack, max_stack=10)
    assert sizes == [10, 10, 5] and [r["value"] for r in records] == list(range(25))
