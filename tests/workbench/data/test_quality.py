"""Label quality: intervals, kappa, agreement, self-consistency, position bias, blind comparisons."""

import json
import math

import pytest

from workbench.data import quality as QL
from workbench.store import annotations as A
from workbench.store import queue as Q
from workbench.store.workspace import Workspace


def R(id, pid, who, ordering, shown=None, all_bad=False, repeat_of=None, flags=()):
    return QL.RankingRow(id=id, prompt_id=pid, annotator=who, ordering=tuple(tuple(g) for g in ordering),
                         all_bad=all_bad, shown=tuple(shown) if shown else None, repeat_of=repeat_of,
                         flags=tuple(flags))


def test_wilson_interval_known_values():
    lo, hi = QL.wilson_interval(81, 263)        # the classic example: 0.2553 - 0.3662
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)
    assert QL.wilson_interval(0, 10)[0] == 0.0 and QL.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(x) for x in QL.wilson_interval(0, 0))
    lo, hi = QL.wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)


def test_cohen_kappa():
    # Two raters, 50 items: the textbook table (a=20 yes/yes, b=5, c=10, d=15) gives kappa 0.4.
    r1 = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    r2 = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert QL.cohen_kappa(r1, r2) == pytest.approx(0.4)
    assert QL.cohen_kappa(["y", "n"], ["y", "n"]) == pytest.approx(1.0)
    assert QL.cohen_kappa(["y", "y"], ["y", "y"]) is None            # undefined: chance agreement is 1
    assert QL.cohen_kappa([], []) is None


def test_pair_labels():
    assert QL.pair_labels([[3], [1, 4], [2]]) == {(1, 2): "lo", (1, 3): "hi", (1, 4): "tie", (2, 3): "hi",
                                                  (2, 4): "hi", (3, 4): "lo"}
    assert QL.pair_labels([[2], [1]], all_bad=True) == {(1, 2): "tie"}


def test_counts_agreement_consistency_bias():
    rows = [
        R(1, 10, "ana", [[1], [2]], shown=[1, 2], flags=["unsafe"]),
        R(2, 11, "ana", [[3, 4]], shown=[4, 3]),
        R(3, 12, "ana", [[5], [6]], shown=[6, 5], all_bad=True),
        R(4, 10, "bo", [[1], [2]], shown=[2, 1]),
        R(5, 11, "bo", [[4], [3]], shown=[3, 4]),
        R(6, 10, "ana", [[2], [1]], shown=[2, 1], repeat_of=1),     # flipped: picked the left again
        R(7, 13, "ana", [[7], [8], [9]], shown=[9, 7, 8]),
    ]
    counts = {c.annotator: c for c in QL.annotator_counts(rows, {"ana": 2, "cy": 1})}
    ana = counts["ana"]
    assert (ana.rankings, ana.pairwise, ana.kwise, ana.ties, ana.all_bad, ana.repeats, ana.skips) == (5, 4, 1, 1, 1, 1, 2)
    assert ana.flags == {"unsafe": 1} and ana.prompts == 4 and counts["cy"].rankings == 0
    (ag,) = QL.agreement(rows)
    # Shared: prompt 10 (both "lo"), prompt 11 (tie vs "hi"). The repeat does not replace the original.
    assert (ag.a, ag.b, ag.items, ag.shared, ag.agree) == ("ana", "bo", 2, 2, 0.5)
    assert ag.kappa == pytest.approx((0.5 - 0.25) / (1 - 0.25))      # chance: 1/2 * 1/2 on "lo"
    (sc,) = QL.self_consistency(rows)
    assert (sc.repeats, sc.consistent, sc.same_side, sc.rate) == (1, 0, 1, 0.0)
    everyone = QL.position_bias(rows)
    # Decisive pairs: ids 1 (left won), 4 (right won), 5 (right won), 6 (left won).
    assert (everyone.n, everyone.left_wins, everyone.rate) == (4, 2, 0.5)
    assert everyone.low < 0.5 < everyone.high
    assert QL.position_bias(rows, "bo").left_wins == 0


def test_blind_comparison_tally():
    arm = {1: "a", 2: "b", 3: "a", 4: "b", 5: "a", 6: "b", 7: "a", 8: "b", 9: "a", 10: "b"}
    rows = [R(1, 1, "ana", [[2], [1]]), R(2, 2, "ana", [[4], [3]]), R(3, 3, "ana", [[5], [6]]),
            R(4, 4, "ana", [[7, 8]]), R(5, 5, "ana", [[9, 10]], all_bad=True),
            R(6, 1, "ana", [[1], [2]], repeat_of=1)]          # repeats are not counted twice
    res = QL.blind_comparison(rows, arm, label_a="base", label_b="tuned")
    assert (res.n, res.a_wins, res.b_wins, res.ties, res.both_bad) == (5, 1, 2, 1, 1)
    assert res.win_rate_b == pytest.approx(2 / 3) and res.tie_rate == pytest.approx(0.4)
    assert res.score_b == pytest.approx(3 / 5)
    assert (res.low, res.high) == pytest.approx(QL.wilson_interval(2, 3))
    assert "tuned wins 67%" in res.describe()
    assert QL.blind_comparison([], arm).describe() == "no decisions yet"


def test_quality_report_from_a_workspace(tmp_path):
    """The loaders read what the queue writes: a comparison queue scored end to end."""
    with Workspace.init(tmp_path / "ws") as ws:
        with ws.transaction() as c:
            src = {arm: c.execute("INSERT INTO sources(kind, path, detail, created_at) VALUES ('generation',?,?,0)",
                                  (arm, json.dumps({"run_id": "r", "arm": arm}))).lastrowid for arm in "ab"}
            for i in range(12):
                pid = A.add_prompt(c, f"q{i}")
                for arm in "ab":
                    c.execute("INSERT INTO candidates(prompt_id, response, source_id, created_at) VALUES (?,?,?,0)",
                              (pid, f"{arm}{i}", src[arm]))
            qid = Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0,
                                                compare=Q.CompareArms(run_id="r", label_a="base", label_b="ppo")))
        q = Q.RankingQueue(ws.conn, qid)
        while q.current is not None:   # the annotator always prefers model B's response
            b_pos = q.current.arms.index("b")
            q.choose(b_pos)
        res = QL.comparison_result(ws.conn, qid)
        assert (res.n, res.b_wins, res.win_rate_b, res.tie_rate) == (12, 12, 1.0, 0.0)
        assert res.low > 0.7
        report = QL.quality_report(ws.conn)
        assert report.comparisons[0][0] == qid and report.comparisons[0][2] == res
        assert report.counts[0].annotator == "ana" and report.counts[0].rankings == 12
        left = report.position[0]
        assert left.n == 12 and 0 < left.left_wins < 12        # B was on both sides


def test_an_edited_response_preferred_over_a_pair_counts_as_pairwise(tmp_path):
    """The edit adds a third candidate to the ranking, but the annotator compared two responses."""
    with Workspace.init(tmp_path / "ws") as ws:
        with ws.transaction() as c:
            for i in range(2):
                pid = A.add_prompt(c, f"Tell me about the sea, part {i}.")
                for j in range(2 if i == 0 else 3):
                    A.add_candidate(c, pid, f"Response {j}", model="m")
            pair = Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0))
        q = Q.RankingQueue(ws.conn, pair)
        q.prefer_edited("The sea is calm and wide.", q.current.shown[0])   # the 2-candidate prompt
        q.choose(0)                                                        # two of the 3-candidate one
        rows = QL.load_rankings(ws.conn)
        assert [len(r.shown) for r in rows] == [3, 2] and [r.edited for r in rows] == [1, 0]
        (ana,) = QL.annotator_counts(rows)
        assert (ana.pairwise, ana.kwise) == (2, 0)
