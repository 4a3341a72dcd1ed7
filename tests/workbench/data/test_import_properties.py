"""Property tests: whatever text a row holds, the parsers give back exactly that text.

Each example imports into a fresh workspace in a temporary folder (hypothesis
runs many examples per test function, so ``tmp_path`` would be shared); the
``kit`` fixture supplies the stateless writers from ``conftest.py``.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from workbench.data.importer import import_file
from workbench.data.messages import ROLES
from workbench.data.pairs import pairs_from_ordering
from workbench.errors import DataError
from workbench.store.workspace import Workspace

#: Characters that break naive parsers, mixed with any encodable character.
TEXT = st.text(st.one_of(st.sampled_from(list('\n\r",\'\\[]{}: \t\x00\u2028\u0085\ufeff\u00e9\U0001F600')),
                         st.characters(codec="utf-8")), max_size=40)
# The ``kit`` fixture is used only for its stateless writers, so sharing it between examples is safe.
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@contextmanager
def fresh():
    with tempfile.TemporaryDirectory(prefix="wb-prop-") as d:
        ws = Workspace.init(Path(d) / "ws")
        try:
            yield Path(d), ws
        finally:
            ws.close()


def _decodes_to_messages(text: str) -> bool:
    """A CSV cell that is a JSON list of objects reads as messages: CSV cannot tell them apart."""
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({"prompt": TEXT, "chosen": TEXT, "rejected": TEXT}),
                     min_size=1, max_size=6),
       fmt=st.sampled_from(["jsonl", "json", "csv"]))
def test_any_text_round_trips(kit, rows, fmt):
    if fmt == "csv":
        assume(not _decodes_to_messages(rows[0]["prompt"]))
    with fresh() as (d, ws):
        path, lines = kit.write(d, fmt, rows)
        report = import_file(ws, path, "d")
        assert (report.shape, report.style, report.rows) == ("preference", "standard", len(rows))
        recs = kit.records(ws, "d")
        assert [r.content() for r in recs] == rows
        assert [r.lineage.line for r in recs] == lines


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({"prompt": TEXT, "completion": TEXT}), min_size=1, max_size=4),
       ascii_only=st.booleans())
def test_any_text_round_trips_through_jsonl_with_raw_unicode(kit, rows, ascii_only):
    # Raw U+2028, U+0085 and NUL inside JSON strings must not split or end a line.
    with fresh() as (d, ws):
        path = d / "x.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in rows), encoding="utf-8")
        import_file(ws, path, "d")
        assert kit.contents(ws, "d") == rows


MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(sorted(ROLES)), "content": TEXT}),
                    min_size=1, max_size=3)


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES}),
                     min_size=1, max_size=4),
       fmt=st.sampled_from(["jsonl", "json", "csv", "parquet"]))
def test_message_lists_round_trip(kit, rows, fmt):
    with fresh() as (d, ws):
        path, lines = kit.write(d, fmt, rows)
        report = import_file(ws, path, "d")
        assert report.style == "conversational"
        recs = kit.records(ws, "d")
        assert [r.content() for r in recs] == rows
        assert [r.lineage.line for r in recs] == lines


GOOD = [{"prompt": "p0", "chosen": "a", "rejected": "b"}, {"prompt": "p1, \"q\"", "chosen": "c", "rejected": "d"}]


@SETTINGS
@given(garbage=st.one_of(st.binary(max_size=60),
                         st.sampled_from([b"{", b"[", b'"', b"\xef\xbb\xbf{}", b"\xff\xfe", b"\r", b"a,b,c,d",
                                          b'{"prompt": "x"}', b"null", b"]", b"\x00"])),
       fmt=st.sampled_from(["jsonl", "json", "csv"]),
       skip=st.booleans())
def test_arbitrary_bytes_appended_as_a_line_never_crash(kit, garbage, fmt, skip):
    with fresh() as (d, ws):
        path, _ = kit.write(d, fmt, GOOD)
        path.write_bytes(path.read_bytes() + garbage + b"\n")
        try:
            report = import_file(ws, path, "d", skip_invalid=skip)
        except DataError as err:
            # One line naming the file; nothing stored.
            assert str(err).startswith(str(path)) and "\n" not in str(err)
            assert kit.state(ws)["datasets"] == kit.state(ws)["records"] == kit.state(ws)["sources"] == 0
            assert not (skip and fmt == "jsonl"), "JSONL rows are independent: skip_invalid always imports"
        else:
            assert kit.contents(ws, "d")[:2] == GOOD
            assert report.rows + report.skipped >= 2
        assert ws.integrity_check() == "ok"


HH_TURN = TEXT.filter(lambda t: "\n\nHuman:" not in t and "\n\nAssistant:" not in t
                      and not t.endswith("\n\nHuman") and not t.endswith("\n\nAssistant")
                      and not t.startswith((":", "Human:", "Assistant:")))


@SETTINGS
@given(turns=st.lists(HH_TURN, min_size=1, max_size=5).filter(lambda t: len(t) % 2 == 1),
       good=HH_TURN, bad=HH_TURN)
def test_hh_transcripts_split_into_prompt_and_final_replies(kit, turns, good, bad):
    def render(reply):
        return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns + [reply]))

    with fresh() as (d, ws):
        path, _ = kit.write(d, "jsonl", [{"chosen": render(good), "rejected": render(bad)}])
        report = import_file(ws, path, "d")
        assert report.shape == "hh-rlhf"
        rec, = kit.records(ws, "d")
        assert rec.prompt == [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                              for i, t in enumerate(turns)]
        assert (rec.chosen, rec.rejected) == ([{"role": "assistant", "content": good}],
                                              [{"role": "assistant", "content": bad}])


@settings(max_examples=200, deadline=None)
@given(ranks=st.lists(st.integers(1, 4), min_size=2, max_size=7))
def test_pairs_from_ranks(ranks):
    levels = sorted(set(ranks))
    groups = [[i for i, r in enumerate(ranks) if r == lv] for lv in levels]
    pairs = list(pairs_from_ordering(groups))
    ties = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    k = len(ranks)
    assert len(pairs) == k * (k - 1) // 2 - ties
    assert len(set(pairs)) == len(pairs)
    assert all(ranks[a] < ranks[b] and not tie for a, b, tie in pairs)
    both = list(pairs_from_ordering(groups, ties="both"))
    assert len(both) == len(pairs) + 2 * ties
    assert all(ranks[a] == ranks[b] for a, b, tie in both if tie)
