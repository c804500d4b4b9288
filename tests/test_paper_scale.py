"""Every model and optimizer configuration of every budget, `paper` included, before any GPU sees it: parameter
counts at full size (on the meta device), and one real training step at batch 2 on the CPU."""
import math

import pytest
import torch

from weightsharing import planning
from weightsharing.papers import IMPLEMENTED, paper

CASES = [(slug, budget) for slug in IMPLEMENTED for budget in ("smoke", "cpu", "paper")]


def distinct(slug, budget):
    module = paper(slug)
    return planning.distinct_configs(module.planned(module.BUDGETS[budget]))


@pytest.mark.parametrize("slug", IMPLEMENTED)
def test_every_paper_budget_model_has_the_specs_parameter_count_at_full_size(slug):
    units = distinct(slug, "paper")
    assert units and all(u.expected_params is not None for u in units)
    for u in units:
        with torch.device("meta"):
            model = u.build()
        assert sum(p.numel() for p in model.parameters()) == u.expected_params, u.config


@pytest.mark.slow
@pytest.mark.parametrize("slug,budget", CASES)
def test_one_training_step_of_every_distinct_configuration(slug, budget):
    for u in distinct(slug, budget):
        metric = u.step()
        assert math.isfinite(metric), u.config


@pytest.mark.parametrize("slug", IMPLEMENTED)
def test_plan_estimates_are_positive_and_count_each_unit_once(slug):
    module = paper(slug)
    units = module.planned(module.BUDGETS["paper"])
    est = planning.estimate(units)
    distinct = {repr(u.key) if u.key is not None else f"{u.experiment}/{u.label}" for u in units}
    assert len(est) == len(distinct) and len(units) >= len(distinct)  # a unit two experiments share: one row
    assert (est.pflop > 0).all() and (est.gpu_hours > 0).all()


def test_forward_macs_count_a_shared_branch_once_per_image():
    from weightsharing.planning import model_macs as forward_macs
    from weightsharing.papers.salimbeni_pairs import models as M

    mlp = 196 * 1000 + 1000 * 10
    head = 20 * 15 + 15 * 1
    assert forward_macs(M.ARMS["WS2"].build(), (2, 14, 14)) == 2 * mlp + head  # one branch, both images
    assert forward_macs(M.ARMS["FCNN3"].build(), (2, 14, 14)) == 2 * mlp + head  # two branches, one image each
    conv = 5 * 9 * 12 * 12 + 8 * 5 * 9 * 10 * 10 + 800 * 200 + 200 * 10
    assert forward_macs(M.ARMS["WS3"].build(), (2, 14, 14)) == 2 * conv + head
