"""Every real page fits the window: visiting Rank (pairwise, k-wise with four responses, a blind
comparison, revealed long model paths, a job strip sampling two long checkpoint paths), Datasets,
Train (each stage) and Runs never makes the window grow, at the default size and at 1280x720.
Before, long one-line labels raised the window's minimum width (1265 -> 1475 px, then 2666 px
when a comparison job started), the Train page's buttons were cut off, and a restored geometry
could be larger than the screen."""

import json

import pytest

from ui.main_window import DEFAULT_SIZE, MainWindow
from ui.theme import apply_stylesheet
from workbench.store import annotations as A
from workbench.store import datasets as D
from workbench.store import queue as Q
from workbench.store.records import Record
from workbench.store.workspace import Workspace

RUN = "20261203-113525-sft-b84c"
LONG_A = f"./runs/{RUN}/checkpoints/step-60"
LONG_B = "./runs/20261203-121717-ppo-9f3e/checkpoints/step-120-with-a-rather-long-suffix/merged"
RESPONSES = ["Use slicing: `items[::-1]` returns a new reversed list. " * 3,
             "Call `items.reverse()` to reverse the list in place. " * 2,
             "Wrap `reversed(items)` in `list()` to get a reversed copy.",
             "Sort it backwards with `sorted(items, reverse=True)`; this only works for sortable items."]


def build_workspace(root):
    """Datasets, 4-candidate prompts with long model paths, and pairwise / k-wise / comparison queues."""
    with Workspace.init(root) as ws, ws.transaction() as c:
        d = D.create_dataset(c, "helpful-harmless-preference-pairs", "preference", "standard")
        for i in range(20):
            D.add_record(c, d, Record(prompt=f"Question {i}?", chosen="A long and careful answer " * 4,
                                      rejected="no", split="train" if i % 5 else "validation"))
        src = {arm: c.execute("INSERT INTO sources(kind, path, detail, created_at) VALUES ('generation',?,?,0)",
                              (path, json.dumps({"run_id": "cmp", "arm": arm}))).lastrowid
               for arm, path in (("a", LONG_A), ("b", LONG_B))}
        for i in range(6):
            pid = A.add_prompt(c, f"Question {i}: how do I reverse a list in Python without copying it?",
                               tags=["python"])
            for j in range(4):
                A.add_candidate(c, pid, f"{RESPONSES[j]} (variant {i})", model=LONG_A if j % 2 else LONG_B,
                                checkpoint=f"step-{60 * (j + 1)}")
            cmp = A.add_prompt(c, f"Compare {i}: write a haiku about the sea", tags=["compare"])
            for arm in "ab":
                c.execute("INSERT INTO candidates(prompt_id, response, model, source_id, created_at)"
                          " VALUES (?,?,?,?,0)", (cmp, f"{arm}: waves fold on the shore {i}", LONG_A, src[arm]))
        queues = {
            "pairwise": Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0,
                                                      source=Q.PromptSource("tag", "python"))),
            "kwise": Q.create_queue(c, Q.QueueSpec(annotator="ana", mode="kwise", k=4, repeat_every=0,
                                                   source=Q.PromptSource("tag", "python"))),
            "comparison": Q.create_queue(c, Q.QueueSpec(annotator="ana", repeat_every=0, compare=Q.CompareArms(
                run_id="cmp", label_a=LONG_A, label_b=LONG_B))),
        }
    return queues


def _rank_modes(window, page, queues, tmp_path):
    """Yield (mode name) after putting the Rank page into each mode."""
    page.open_queue(queues["pairwise"])
    yield "pairwise"
    page.reveal_button.setChecked(True)
    page.choose(0)
    yield "pairwise, revealed models"
    page.open_queue(queues["kwise"])
    yield "k-wise, 4 responses"
    for key in (0, 1, 2):
        page.order_view.assign(key)
    page._commit_kwise()
    page.reveal_button.setChecked(True)
    yield "k-wise, revealed models"
    page.open_queue(queues["comparison"])
    yield "comparison"
    page.choose(1)
    page.refresh_counts()
    yield "comparison, decided"
    (tmp_path / "job").mkdir(exist_ok=True)
    page.job_strip.follow(None, "run", tmp_path / "job", f"Sampling {LONG_A} and {LONG_B}")
    page.job_strip._progress = 0.62
    page.job_strip._render("38 candidates so far")
    yield "job strip with long paths"


@pytest.mark.parametrize("size", [(1280, 720), (DEFAULT_SIZE.width(), DEFAULT_SIZE.height())],
                         ids=["1280x720", "default"])
def test_the_window_never_grows_on_any_page_in_any_mode(qtbot, tmp_path, size):
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QApplication

    root = tmp_path / "ws"
    queues = build_workspace(root)
    app = QApplication.instance()
    old_sheet = app.styleSheet()
    apply_stylesheet(app)  # the app's own sizes: padding and fonts from style.qss
    window = MainWindow(workspace_path=root, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    want = QSize(*size)
    try:
        window.show()
        qtbot.waitExposed(window)
        window.resize(want)
        qtbot.waitUntil(lambda: window.size() == want)

        def check(what):
            qtbot.wait(30)
            assert window.size() == want, what
            hint = window.minimumSizeHint()
            assert hint.width() <= want.width() and hint.height() <= want.height(), (what, hint)

        for title in ("Rank", "Datasets", "Train", "Runs"):
            page = window.show_page(title)
            check(title)
            if title == "Rank":
                for mode in _rank_modes(window, page, queues, tmp_path):
                    check(mode)
                    if mode.startswith("k-wise, 4"):  # every response column is on screen
                        shown = [c for c in page.columns.columns if c.isVisible()]
                        assert len(shown) == 4
                        right = window.mapFromGlobal(shown[-1].mapToGlobal(shown[-1].rect().topRight())).x()
                        assert right <= window.width(), right
            if title == "Train":
                for stage in page.forms:
                    page.select_stage(stage)
                    check(stage)
                    assert not page._form_scroll.horizontalScrollBar().isVisible(), stage
                    merge = page.after_run.merge_button
                    assert merge.width() >= merge.sizeHint().width(), f"{stage}: {merge.text()!r} is cut off"
        # Every page again, with the Rank page still in its widest mode (the stack's minimum is the
        # widest page's).
        for title in ("Rank", "Datasets", "Train", "Runs"):
            window.show_page(title)
            check(f"{title}, again")
    finally:
        window.close()
        window.deleteLater()
        qtbot.wait(20)  # deleted before the shared application's stylesheet changes back
        app.setStyleSheet(old_sheet)


def test_revealed_models_read_short_with_the_full_paths_in_the_tooltip(qtbot, tmp_path):
    from ui.ranking.panel import RankingPanel

    root = tmp_path / "ws"
    queues = build_workspace(root)
    panel = RankingPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_workspace(root)
    try:
        panel.open_queue(queues["pairwise"])
        panel.reveal_button.setChecked(True)
        panel.choose(0)
        label = panel.reveal_label
        assert "sft-b84c step-60" in label.text() and "./runs/" not in label.text()
        assert LONG_A in label.toolTip() and LONG_B in label.toolTip()
        assert label.minimumSizeHint().width() < 100
    finally:
        panel.shutdown()


def test_a_restored_geometry_never_exceeds_the_screen(qtbot, tmp_path):
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QGuiApplication

    from ui.settings import Settings

    avail = QGuiApplication.primaryScreen().availableGeometry()
    big = MainWindow(gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    big.setGeometry(QRect(avail.x(), avail.y(), avail.width() + 1500, avail.height() + 900))
    Settings().set_geometry(big.saveGeometry())
    big.deleteLater()
    window = MainWindow(gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    frame = window.geometry()
    assert frame.width() <= avail.width() and frame.height() <= avail.height(), (frame, avail)
    assert avail.contains(frame.topLeft())


def test_the_default_size_is_bounded_by_the_screen(qtbot, tmp_path):
    """The default 1200x780 was used as it is, even on a screen 720 px (here: 800 px) tall."""
    from PySide6.QtGui import QGuiApplication

    avail = QGuiApplication.primaryScreen().availableGeometry()
    window = MainWindow(gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    assert window.width() < avail.width() and window.height() < avail.height(), (window.size(), avail)
    assert window.height() <= DEFAULT_SIZE.height() and window.width() <= DEFAULT_SIZE.width()


def test_the_datasets_page_gives_the_records_the_room(qtbot, tmp_path):
    """At 1280x720 the dataset list took ~half the width for three datasets and the records ~12 rows."""
    from PySide6.QtCore import QSize

    root = tmp_path / "ws"
    build_workspace(root)
    window = MainWindow(workspace_path=root, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.resize(QSize(1280, 720))
    page = window.show_page("Datasets")
    qtbot.waitUntil(lambda: page.table.model().rowCount() > 0, timeout=10000)
    left, right = page.splitter.sizes()
    assert left <= 0.3 * (left + right), (left, right)
    rows = page.table.viewport().height() // page.table.verticalHeader().defaultSectionSize()
    assert rows >= 13, rows
    window.shutdown()
