"""The statistics behind verdicts and the verdict rule: Welch and one-sample t with degrees of freedom, TOST, Holm,
the run minimum, the regime check, rule history, and leave-one-run-out fragility."""
import numpy as np
import pytest
from scipy import stats

from weightsharing import metrics, verdicts
from weightsharing.verdicts import Finding, Rule, judge

RULE = Rule(id="T", claim="a claim", rule="a rule", regime="the mechanism can act")


def test_welch_matches_scipy_and_reports_satterthwaite_degrees_of_freedom():
    a, b = [0.61, 0.64, 0.60, 0.66], [0.55, 0.58, 0.50]
    c = metrics.welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert c.p == pytest.approx(ref.pvalue) and c.t == pytest.approx(ref.statistic)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    assert c.df == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2))
    lo, hi = c.interval(0.95)
    assert lo == pytest.approx(c.diff - stats.t.ppf(0.975, c.df) * c.se)
    assert c.p_above() == pytest.approx(ref.pvalue / 2)  # one-sided in the observed direction


def test_a_contrast_of_two_arms_is_welchs_test():
    a, b = [1.0, 1.2, 0.9], [0.5, 0.7, 0.4, 0.6]
    c, w = metrics.linear_contrast({"a": a, "b": b}, {"a": 1, "b": -1}), metrics.welch(a, b)
    assert (c.diff, c.se, c.df, c.p) == pytest.approx((w.diff, w.se, w.df, w.p))


def test_holm_can_turn_a_passing_raw_p_into_a_failing_one():
    raw = [0.03, 0.04, 0.20]
    adjusted = metrics.holm(raw)
    assert raw[0] < 0.05 and adjusted[0] == pytest.approx(0.09)  # 3 x 0.03: the family does not reject
    assert adjusted == sorted(adjusted) and adjusted[2] == pytest.approx(0.20)
    assert metrics.holm([0.001, 0.04]) == pytest.approx([0.002, 0.04])


def test_equivalence_holds_for_a_tight_small_difference():
    rng = np.random.default_rng(0)
    a, b = 0.80 + 0.002 * rng.standard_normal(10), 0.801 + 0.002 * rng.standard_normal(10)
    eq = metrics.equivalence(metrics.welch(a, b), 0.01)
    assert eq.equivalent and eq.p < 0.05


def test_equivalence_fails_by_lack_of_power_even_when_the_estimate_is_inside_the_margin():
    a, b = [0.80, 0.84, 0.77], [0.81, 0.78, 0.83]  # means 0.803 and 0.807: inside ±0.01, but noisy
    c = metrics.welch(a, b)
    eq = metrics.equivalence(c, 0.01)
    assert abs(c.diff) < 0.01 and not eq.equivalent and c.p > 0.05  # non-significance does not make it equivalent
    f = Finding(eq.equivalent, min(c.p_above(0.01), c.p_below(-0.01)) < 0.05, str(eq), 3, True)
    assert judge(RULE, f)["verdict"] == "inconclusive"


def test_a_failed_regime_check_turns_a_contradiction_into_not_reproduced():
    contradicted = Finding(support=False, against=True, evidence="significantly reversed", n_runs=5, regime=True)
    assert judge(RULE, contradicted)["verdict"] == "contradicted"
    small = Finding(support=False, against=True, evidence="significantly reversed", n_runs=5, regime=False,
                    regime_evidence="the baseline reached 60 % training accuracy")
    out = judge(RULE, small)
    assert out["verdict"] == "not reproduced at this budget" and "Regime check FAILED" in out["evidence"]
    assert out["regime"] == {"check": "the mechanism can act", "passed": False}
    supported = Finding(support=True, against=False, evidence="", n_runs=5, regime=False)
    assert judge(RULE, supported)["verdict"] == "holds"


def test_fewer_than_three_runs_is_not_assessed():
    f = Finding(support=True, against=False, evidence="two seeds", n_runs=2, regime=True)
    out = judge(RULE, f)
    assert out["verdict"] == "not assessed" and "fewer than 3 runs" in out["evidence"] and out["n_runs"] == 2
    exact = Finding(support=True, against=False, evidence="an identity, no runs", n_runs=None)
    assert judge(Rule(id="E", claim="c", rule="r"), exact)["verdict"] == "holds"


def _mean_claim(runs: dict[str, float]):
    """A toy chapter: claim T holds when the mean of the runs is significantly above 0.5 (one-sample t)."""
    def claims_without(left_out):
        kept = [v for k, v in runs.items() if k != left_out]
        c = metrics.one_sample(kept, 0.5)
        return [judge(RULE, Finding(c.significant() > 0, c.significant() < 0, str(c), len(kept), True))]
    return claims_without


def test_a_verdict_one_outlier_decides_is_fragile_and_names_it():
    runs = {"seed 0": 0.60, "seed 1": 0.61, "seed 2": 0.59, "seed 3": 0.05}  # seed 3 got stuck
    (claim,) = verdicts.leave_one_out(_mean_claim(runs), runs)
    assert claim["verdict"] == "inconclusive" and claim["fragile"] is True
    assert claim["decided_by"] == [{"run": "seed 3", "verdict": "holds", "reason": "verdict changes"}]
    assert "without seed 3 it would be 'holds'" in claim["evidence"] and claim["runs_left_out"] == 4


def test_leaving_one_of_three_runs_out_tests_the_direction_not_the_run_minimum():
    runs = {"seed 0": 0.70, "seed 1": 0.71, "seed 2": 0.72}
    (claim,) = verdicts.leave_one_out(_mean_claim(runs), runs)
    assert claim["verdict"] == "holds" and claim["fragile"] is False  # not 'not assessed' with 2 runs left


def test_a_claim_whose_evidence_shrinks_without_a_run_is_fragile():
    def claims_without(left_out):
        cells = ("cifar10", "cifar100") if left_out != "the only cifar100 run" else ("cifar10",)
        return [judge(RULE, Finding(True, False, "e", 3, True, cells=cells))]

    (claim,) = verdicts.leave_one_out(claims_without, ["the only cifar100 run", "a cifar10 run"])
    assert claim["verdict"] == "holds" and claim["fragile"] is True
    assert claim["decided_by"][0]["reason"] == "evidence shrinks (cifar100 drops out)"


def test_a_claim_that_disappears_without_a_run_rests_on_it():
    def claims_without(left_out):
        return [] if left_out == "the only run" else [judge(RULE, Finding(True, False, "e", 3, True))]

    (claim,) = verdicts.leave_one_out(claims_without, ["the only run", "an unrelated run"])
    assert claim["fragile"] is True and claim["decided_by"][0]["reason"] == "evidence shrinks"


def test_claims_that_cannot_be_recomputed_are_not_called_robust():
    def claims_without(left_out):
        if left_out == "needed":
            raise KeyError("FCNet")
        return [judge(RULE, Finding(True, False, "e", 3, True))]

    (claim,) = verdicts.leave_one_out(claims_without, ["needed", "other"])
    assert claim["fragile"] is None and "not assessed" in claim["evidence"]
    assert verdicts.fragility_counts([claim]) == {"robust": 0, "fragile": 0, "not assessed": 1}


@pytest.mark.parametrize("slug", ["zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets",
                                  "neyshabur_betalasso"])
def test_every_chapter_declares_its_claims_with_a_rule_and_disjoint_lines(slug):
    rules = verdicts.rules(slug)
    assert rules and all(r.rule and r.claim for r in rules.values())
    spans = sorted(r.lines for r in rules.values())
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # git blame attributes each line to one claim
    for r in rules.values():
        if r.larger_run:
            assert r.larger_run["budget"] in ("cpu", "paper") and r.larger_run["experiments"]


def test_a_rule_edited_after_any_of_its_runs_is_flagged_with_the_earlier_verdict(monkeypatch):
    monkeypatch.setattr(verdicts, "rule_changed", lambda slug, rule: ("abc123", "2026-12-01T00:00:00+00:00"))
    monkeypatch.setattr(verdicts, "_summary_before", lambda slug, budget, commit: {"Z1": "does not hold"})
    seen = {"id": "Z1", "first_unit": "2026-11-30T00:00:00+00:00", "newest_unit": "2026-12-02T00:00:00+00:00"}
    fixed_first = {"id": "Z2", "first_unit": "2026-12-02T00:00:00+00:00", "newest_unit": "2026-12-03T00:00:00+00:00"}
    verdicts.annotate([seen, fixed_first], "zhang_locality", "cpu")
    # a first seed had finished before the rule was written: flagged, even though newer runs came after it
    assert seen["rule_changed_after_results"] is True and seen["earlier_verdict"] == "does not hold"
    assert fixed_first["rule_changed_after_results"] is False and fixed_first["earlier_verdict"] is None
