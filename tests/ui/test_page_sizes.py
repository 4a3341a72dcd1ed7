"""Every real page fits the window's default size: visiting Rank, Datasets, Train (each stage)
and Runs never makes the window grow past 1200 px (a page's minimum width pushed it to 1228-1554
px before: long preset names, an unwrapped stage blurb, two form columns, the dataset list)."""

from ui.main_window import DEFAULT_SIZE, MainWindow
from ui.theme import apply_stylesheet
from workbench.store import datasets as D
from workbench.store.records import Record
from workbench.store.workspace import Workspace


def test_the_default_window_size_holds_on_every_page(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    root = tmp_path / "ws"
    with Workspace.init(root) as ws, ws.transaction() as c:
        d = D.create_dataset(c, "helpful-harmless-preference-pairs", "preference", "standard")
        for i in range(20):
            D.add_record(c, d, Record(prompt=f"Question {i}?", chosen="A long and careful answer " * 4,
                                      rejected="no", split="train" if i % 5 else "validation"))
    app = QApplication.instance()
    old_sheet = app.styleSheet()
    apply_stylesheet(app)  # the app's own sizes: padding and fonts from style.qss
    window = MainWindow(workspace_path=root, gpu_probe_delay_ms=None, demo_dir=tmp_path / "demo")
    try:
        window.show()
        qtbot.waitExposed(window)
        assert window.size() == DEFAULT_SIZE
        for title in ("Rank", "Datasets", "Train", "Runs"):
            page = window.show_page(title)
            qtbot.wait(50)
            assert window.width() == DEFAULT_SIZE.width(), title
            if title == "Train":
                for stage in page.forms:
                    page.select_stage(stage)
                    qtbot.wait(20)
                    assert window.width() == DEFAULT_SIZE.width(), stage
                    assert not page._form_scroll.horizontalScrollBar().isVisible(), stage
        assert window.minimumSizeHint().width() <= DEFAULT_SIZE.width()
    finally:
        window.close()
        window.deleteLater()
        qtbot.wait(20)  # deleted before the shared application's stylesheet changes back
        app.setStyleSheet(old_sheet)
