"""The run context, the results type every paper returns, the notebook helper that shows them, and seeding."""
import pandas as pd
import pytest
import torch

from weightsharing.chapter import Chapter
from weightsharing.context import RunContext, configure_torch
from weightsharing.errors import UserError
from weightsharing.results import Results
from weightsharing.train import seeded


def test_opening_a_context_checks_the_budget_and_device_in_one_line(results):
    from weightsharing.papers import chang_arbnets

    with pytest.raises(UserError, match="unknown budget 'gpu' for chang_arbnets: choose one of smoke, cpu, paper"):
        RunContext.open(chang_arbnets, "gpu")
    with pytest.raises(UserError, match="not a torch device"):
        RunContext.open(chang_arbnets, "smoke", device="gpu0")
    ctx = RunContext.open(chang_arbnets, "smoke", shard=(1, 2))
    assert ctx.budget is chang_arbnets.BUDGETS["smoke"] and ctx.store.shard == (1, 2) and not ctx.store.strict
    assert ctx.store.path == results / "chang_arbnets" / "smoke" / "runs.jsonl"
    assert RunContext.open(chang_arbnets, "cpu").store.strict  # every budget but smoke stores only committed code


def test_configure_torch_sets_the_thread_count_once_from_the_argument_or_the_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        configure_torch("cpu", threads=1)
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("WEIGHTSHARING_THREADS", "2")
        configure_torch("cpu")
        assert torch.get_num_threads() == 2
        tf32 = torch.backends.cuda.matmul.allow_tf32
        configure_torch("cpu", threads=1)
        assert torch.backends.cuda.matmul.allow_tf32 == tf32  # TF32 is switched on for CUDA only
    finally:
        torch.set_num_threads(before)


def test_results_keep_shown_and_saved_tables_apart_and_refuse_one_name_for_two_things():
    import matplotlib.pyplot as plt

    res = Results()
    frame = pd.DataFrame({"a": [1, 2]})
    assert res.table("t", frame, save=True) is frame and res.saved == {"t": [{"a": 1}, {"a": 2}]}
    res.table("shown only", frame)
    assert "shown only" in res.tables and "shown only" not in res.saved
    fig = plt.figure()
    res.figure("f", fig)
    assert not plt.fignum_exists(fig.number)  # closed: drawn where the chapter shows it, not where it was made
    with pytest.raises(ValueError, match="'t' is already a table"):
        res.figure("t", plt.figure())
    with pytest.raises(ValueError, match="'f' is already a figure"):
        res.table("f", frame)
    res.glue_all({"x": 1}, prefix="p_")
    assert res.values == {"p_x": 1}


def test_chapter_show_says_what_an_empty_table_means_and_skips_a_figure_this_budget_does_not_draw(capsys):
    res = Results()
    res.table("stuck", pd.DataFrame(), empty="no run got stuck")
    res.figure("ablation", None)
    ch = Chapter.__new__(Chapter)  # show needs no context
    ch.show(res, "stuck")
    ch.show(res, "ablation")
    assert capsys.readouterr().out == "no run got stuck\n"
    with pytest.raises(KeyError):
        ch.show(res, "typo")


def test_seeded_draws_the_init_and_the_batch_order_from_the_unit_key_alone():
    g = seeded(7)
    w, order = torch.randn(3), torch.randperm(5, generator=g)
    torch.randn(100)  # whatever else ran in between
    g2 = seeded(7)
    assert torch.equal(torch.randn(3), w) and torch.equal(torch.randperm(5, generator=g2), order)
    assert torch.equal(torch.randperm(5, generator=seeded(99, order=7)), order)  # order seeded apart from init
