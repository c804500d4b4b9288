"""Two shards of a real chapter in two processes at once, each with its own store (as two GPU runners would), merged
by `python -m weightsharing merge`, against one process: the same units, the same numbers."""
import json
import os
import subprocess
import sys
import time

import pytest

VOLATILE = {"seconds", "finished_at"}  # when and how fast a unit ran; everything else must match exactly


def train(results, *extra):
    env = {**os.environ, "WEIGHTSHARING_RESULTS": str(results), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "weightsharing", "run", "salimbeni_pairs", "--budget", "smoke",
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(results):
    lines = (results / "salimbeni_pairs" / "smoke" / "runs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {json.dumps(r["key"], sort_keys=True): {k: v for k, v in r.items() if k not in VOLATILE} for r in records}


@pytest.mark.slow
def test_two_shard_stores_merged_equal_one_process_unit_for_unit(tmp_path, monkeypatch, capsys):
    from weightsharing import cli

    shard_dirs, single, merged = [tmp_path / f"shard{i}" for i in (1, 2)], tmp_path / "single", tmp_path / "merged"
    start = time.perf_counter()
    shards = [train(d, "--shard", f"{i}/2") for i, d in zip((1, 2), shard_dirs)]
    outs = [p.communicate() for p in shards]
    assert [p.returncode for p in shards] == [0, 0], outs
    two = time.perf_counter() - start
    start = time.perf_counter()
    one = train(single, "--shard", "1/1")
    out = one.communicate()
    assert one.returncode == 0, out
    print(f"two shards in parallel {two:.1f} s, one process {time.perf_counter() - start:.1f} s")
    parts = [stored(d) for d in shard_dirs]
    assert all(parts) and not parts[0].keys() & parts[1].keys()  # each shard trained its part, none twice

    monkeypatch.setenv("WEIGHTSHARING_RESULTS", str(merged))
    assert cli.main(["merge", *map(str, shard_dirs)]) == 0
    assert "0 conflicting" in capsys.readouterr().out
    union, whole = stored(merged), stored(single)
    assert union.keys() == whole.keys() and len(union) > 10
    assert union == whole  # number for number

    # merging again adds nothing; a record that disagrees beyond provenance is reported, and the first one kept
    path = shard_dirs[1] / "salimbeni_pairs" / "smoke" / "runs.jsonl"
    lines = path.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["test_acc"] = -1.0
    path.write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    assert cli.main(["merge", *map(str, shard_dirs)]) == 2
    report = capsys.readouterr()
    assert "1 conflicting" in report.out and "disagree beyond provenance" in report.err
    assert stored(merged) == whole
