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


def test_a_failed_regime_check_makes_any_verdict_out_of_regime_and_keeps_its_leaning():
    contradicted = Finding(support=False, against=True, evidence="significantly reversed", n_runs=5, regime=True)
    assert judge(RULE, contradicted)["verdict"] == "contradicted"
    small = Finding(support=False, against=True, evidence="significantly reversed", n_runs=5, regime=False,
                    regime_evidence="the baseline reached 60 % training accuracy", p=0.01)
    out = judge(RULE, small)
    assert out["verdict"] == "out of regime" and "Regime check FAILED" in out["evidence"]
    assert out["leaning"] == {"direction": "against", "p": 0.01, "significant": True}
    assert out["regime"] == {"check": "the mechanism can act", "passed": False}
    supported = Finding(support=True, against=False, evidence="", n_runs=5, regime=False)
    assert judge(RULE, supported)["verdict"] == "out of regime"  # support on a failed check is not `holds`
    assert judge(RULE, supported)["leaning"]["direction"] == "supports"
    unsure = Finding(support=False, against=False, evidence="", n_runs=5, regime=False, lean=-0.2, p=0.3)
    assert judge(RULE, unsure)["leaning"] == {"direction": "against", "p": 0.3, "significant": False}
    assert "not reproduced at this budget" not in verdicts.VERDICTS


def test_a_claim_with_an_argued_null_regime_is_decided_and_says_why():
    rule = Rule(id="N", claim="c", rule="r", no_regime="about the protocol as published")
    out = judge(rule, Finding(support=True, against=False, evidence="", n_runs=4))
    assert out["verdict"] == "holds"
    assert out["regime"] == {"check": None, "passed": None, "null_because": "about the protocol as published"}


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
    for r in rules.values():  # a claim with no regime check says why it needs none
        assert r.regime or r.no_regime, f"{slug} {r.id}: give a regime check or no_regime"


def test_the_earlier_verdict_is_read_from_the_summary_before_the_rules_last_change(monkeypatch):
    monkeypatch.setattr(verdicts.history, "entry_changes", lambda slug: {"Z1": ("abc123", "2026-12-01T00:00:00+00:00")})
    monkeypatch.setattr(verdicts, "_summary_before", lambda slug, budget, commit: {"Z1": "out of regime"})
    z1, z2 = {"id": "Z1"}, {"id": "Z2"}
    verdicts.annotate([z1, z2], "zhang_locality", "cpu")
    assert z1["earlier_verdict"] == "out of regime" and z1["rule_changed_after_results"] is True
    assert z2["earlier_verdict"] is None and "rule_changed_after_results" not in z2  # left as `judged` set it


# ---------------------------------------------------------------------------------------------- phases on constructed runs

def _git(repo, *args):
    import subprocess

    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A throwaway repository: a commit where exploratory units were trained, the commit that freezes the claim,
    and a later commit where confirmatory units were trained."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    commits = {}
    for name in ("explored", "frozen", "trained"):
        (tmp_path / f"{name}.txt").write_text(name)
        _git(tmp_path, "add", ".")
        _git(tmp_path, "commit", "-q", "-m", name)
        commits[name] = _git(tmp_path, "rev-parse", "HEAD")
    return tmp_path, commits


FROZEN = Rule(id="T", claim="a claim", rule="a rule", regime="the mechanism can act", seeds=(10, 11, 12))


def _chapter(values: dict[int, float], commits: dict[int, str]):
    """A toy chapter of one frozen claim: the runs' mean is significantly above 0.5 (one-sample t). A run is a seed."""
    records = {f"u{s}": {"key": {"arm": "a", "seed": s}, "commit": commits[s], "finished_at": "2026-12-02"}
               for s in values}

    def claims_without(dropped):
        kept = [v for s, v in values.items() if s not in dropped]
        c = metrics.one_sample(kept, 0.5)
        return [judge(FROZEN, Finding(c.significant() > 0, c.significant() < 0, str(c), len(kept), True,
                                      lean=c.diff, p=c.p))]

    return claims_without, records


def _judge(monkeypatch, path, values, commits, frozen_commit, changed_at="2026-12-01T12:00:00+00:00"):
    monkeypatch.setattr(verdicts, "rules", lambda slug: {"T": FROZEN})
    claims_without, records = _chapter(values, commits)
    (c,) = verdicts.judged("toy", claims_without, list(values), origin=lambda s: verdicts.Origin(s, (f"u{s}",)),
                           records=records, changes={"T": (frozen_commit, changed_at)}, seen={}, repo=path)
    return c


def test_a_unit_trained_before_the_freeze_is_refused_as_confirmatory_and_one_trained_after_it_is_accepted(repo):
    path, commits = repo
    run = verdicts.Origin(10, ("u",))

    def accepted(record, origin=run):
        return verdicts.confirmatory(FROZEN, origin, {"u": record}, commits["frozen"], repo=path)

    assert not accepted({"commit": commits["explored"][:12]})
    assert accepted({"commit": commits["trained"][:12]})
    assert accepted({"commit": commits["frozen"][:12]})  # trained from the freeze commit itself
    assert not accepted({"commit": commits["trained"][:12] + "+dirty"})
    assert not accepted({"commit": commits["trained"][:12], "commit_inferred": True})
    assert not accepted({"commit": commits["trained"][:12]}, verdicts.Origin(3, ("u",)))  # not a frozen seed


def test_a_frozen_claim_is_judged_only_on_its_post_freeze_seeds_with_the_exploratory_verdict_beside_it(repo, monkeypatch):
    path, commits = repo
    explored, trained = commits["explored"][:12], commits["trained"][:12]
    # the exploratory seeds 0-4 sit far above 0.5; the confirmatory seeds 10-12 sit below it
    values = {0: 0.9, 1: 0.91, 2: 0.92, 3: 0.9, 4: 0.93, 10: 0.40, 11: 0.41, 12: 0.39}
    c = _judge(monkeypatch, path, values, {**dict.fromkeys(range(5), explored), **dict.fromkeys((10, 11, 12), trained)},
               commits["frozen"])
    assert c["phase"] == "confirmatory" and c["frozen_at"] == commits["frozen"]
    assert c["verdict"] == "contradicted" and c["seeds"] == [10, 11, 12] and c["n_runs"] == 3
    assert c["exploratory_verdict"] == "holds" and c["exploratory_seeds"] == [0, 1, 2, 3, 4]


def test_a_frozen_seed_trained_before_the_freeze_stays_exploratory_evidence(repo, monkeypatch):
    path, commits = repo
    explored, trained = commits["explored"][:12], commits["trained"][:12]
    values = {0: 0.9, 1: 0.91, 10: 0.92, 11: 0.40, 12: 0.41}
    c = _judge(monkeypatch, path, values, {0: explored, 1: explored, 10: explored, 11: trained, 12: trained},
               commits["frozen"])
    assert c["phase"] == "confirmatory" and c["seeds"] == [11, 12]  # seed 10 ran before the freeze
    assert c["verdict"] == "not assessed" and c["exploratory_seeds"] == [0, 1, 10]


def test_editing_a_frozen_claim_after_its_confirmatory_runs_makes_it_exploratory_again(repo, monkeypatch):
    path, commits = repo
    trained = commits["trained"][:12]
    (path / "edit.txt").write_text("the rule, edited")
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "edit the frozen claim")
    edited = _git(path, "rev-parse", "HEAD")
    values = {10: 0.9, 11: 0.91, 12: 0.92}
    c = _judge(monkeypatch, path, values, dict.fromkeys(values, trained), edited, changed_at="2026-12-05T00:00:00+00:00")
    assert c["phase"] == "exploratory" and c["frozen_at"] == edited  # fresh seeds must be trained
    assert c["verdict"] == c["exploratory_verdict"] == "holds"
    assert c["rule_changed_after_results"] is True  # its data (finished 2026-12-02) predate the edit


def test_rule_changed_after_results_counts_a_configuration_seen_at_an_earlier_revision(monkeypatch):
    monkeypatch.setattr(verdicts, "rules", lambda slug: {"T": RULE})
    values = {0: 0.9, 1: 0.91, 2: 0.92}
    records = {f"u{s}": {"key": {"rev": 2, "arm": "a", "seed": s}, "commit": "x", "finished_at": "2026-12-03"}
               for s in values}

    def claims_without(dropped):
        kept = [v for s, v in values.items() if s not in dropped]
        c = metrics.one_sample(kept, 0.5)
        return [judge(RULE, Finding(c.significant() > 0, False, str(c), len(kept), True))]

    def run(seen):
        (c,) = verdicts.judged("toy", claims_without, list(values), origin=lambda s: verdicts.Origin(s, (f"u{s}",)),
                               records=records, changes={"T": ("abc", "2026-12-02T00:00:00+00:00")}, seen=seen)
        return c

    assert run({})["rule_changed_after_results"] is False  # the rule (12-02) predates these units (12-03)
    earlier = {verdicts.history.config({"rev": 1, "arm": "a", "seed": 7}): "2026-11-20"}  # same arm, older revision
    c = run(earlier)
    assert c["rule_changed_after_results"] is True and c["data_first_seen"] == "2026-11-20"


def test_frozen_fields_are_the_lines_that_count_and_seeds_parse_ranges(tmp_path, monkeypatch):
    (tmp_path / "toy.yml").write_text('T:\n  claim: "c"\n  by: book\n  rule: "r"\n  earlier: "e"\n'
                                      '  seeds: ["10-12", 20]\n  regime: "g"\n')
    monkeypatch.setattr(verdicts, "CLAIMS_DIR", tmp_path)
    verdicts.rules.cache_clear()
    try:
        rule = verdicts.rules("toy")["T"]
    finally:
        verdicts.rules.cache_clear()
    assert rule.seeds == (10, 11, 12, 20) and rule.frozen and rule.by == "book"
    assert rule.frozen_lines == ((2, 2), (4, 4), (6, 6), (7, 7))  # claim, rule, seeds, regime: not by or earlier


def test_blame_follows_a_claim_moved_within_its_file_so_a_reordering_freezes_nothing_anew(repo):
    path, _ = repo
    a = '  claim: "Claim A: locality beats weight sharing at every size"\n  rule: "Welch t over seeds of A, two-sided at 0.05"\n'
    b = '  claim: "Claim B: the auxiliary loss helps every model"\n  rule: "Welch t over seeds of B, two-sided at 0.05"\n'
    f = path / "claims.yml"
    f.write_text(f"A:\n{a}B:\n{b}")
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "write the claims")
    written = _git(path, "rev-parse", "HEAD")
    f.write_text(f"B:\n{b}A:\n{a}")  # B moved above A, nothing else
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "reorder")
    lines = verdicts.history.blame(f, repo=path)
    parsed = verdicts.parse_rules(f.read_text())
    assert {k: verdicts.history.newest(lines, list(r.frozen_lines))[0] for k, r in parsed.items()} == {"A": written,
                                                                                                      "B": written}
    f.write_text(f"B:\n{b}A:\n{a.replace('two-sided', 'one-sided')}")  # an edit to A's rule, not yet committed
    lines = verdicts.history.blame(f, repo=path)
    assert verdicts.history.newest(lines, list(parsed["A"].frozen_lines))[0] == ""  # uncommitted: not frozen
    assert verdicts.history.newest(lines, list(parsed["B"].frozen_lines))[0] == written


def test_a_block_scalar_span_ends_at_its_last_written_line():
    parsed = verdicts.parse_rules('T:\n  claim: >\n    a claim\n    on two lines\n\n  rule: "r"\n')
    assert parsed["T"].frozen_lines == ((2, 4), (6, 6))
