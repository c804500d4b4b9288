"""Two shards of a real chapter in two processes at once, against one process: the same units, the same numbers."""
import json
import os
import subprocess
import sys
import time

VOLATILE = {"seconds", "finished_at"}  # when and how fast a unit ran; everything else must match exactly


def train(results, *extra):
    env = {**os.environ, "WEIGHTSHARING_RESULTS": str(results), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "weightsharing", "run", "salimbeni_pairs", "--budget", "smoke",
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(results):
    lines = (results / "salimbeni_pairs" / "smoke" / "runs.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {json.dumps(r["key"], sort_keys=True): {k: v for k, v in r.items() if k not in VOLATILE} for r in records}


def test_two_shards_in_two_processes_equal_one_process_unit_for_unit(tmp_path):
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    start = time.perf_counter()
    shards = [train(sharded, "--shard", f"{i}/2") for i in (1, 2)]
    outs = [p.communicate() for p in shards]
    assert [p.returncode for p in shards] == [0, 0], outs
    two = time.perf_counter() - start
    start = time.perf_counter()
    one = train(single, "--shard", "1/1")
    out = one.communicate()
    assert one.returncode == 0, out
    print(f"two shards in parallel {two:.1f} s, one process {time.perf_counter() - start:.1f} s")

    union, whole = stored(sharded), stored(single)
    assert union.keys() == whole.keys() and len(union) > 10
    assert union == whole  # number for number
    trained = [int(o.split("done in")[1].split(":")[1].split()[0]) for o, _ in outs]
    assert all(t > 0 for t in trained) and sum(trained) == len(whole)  # each shard trained its part, none twice

    # a plain run after the shards trains nothing: every unit is reused
    check = subprocess.run([sys.executable, "-c", (
        "from weightsharing import runs; from weightsharing.papers import salimbeni_pairs as S; "
        f"st = runs.Store(r'{sharded}/salimbeni_pairs/smoke/runs.jsonl', log=lambda s: None); "
        "S.train(S.BUDGETS['smoke'], st); print(st.computed, st.reused)")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["0", str(len(whole))]
