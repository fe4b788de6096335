"""`lingualoop import FILE --controls`: the label column is each post's gold answer; a row without one refuses
the file with a clear line."""

from pathlib import Path

from sqlalchemy import select

from db.engine import make_engine, make_session_factory
from db.models import ControlPost, ControlSource, Item
from testing.factories import posts, write_csv
from tests.app.test_cli import run, url  # noqa: F401  (the fixture)


def _controls(database_url: str) -> dict[str, tuple[str, ControlSource]]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(Item.external_id, ControlPost.label, ControlPost.source)
                .join(ControlPost, ControlPost.item_id == Item.id)
                .where(ControlPost.active.is_(True))
            ).all()
    finally:
        engine.dispose()
    return {external_id: (label, source) for external_id, label, source in rows}


def test_import_controls(url: str, tmp_path: Path) -> None:  # noqa: F811
    run(url, "init", "study", "--languages", "en")
    gold = write_csv(tmp_path / "gold.csv", posts(3, "en", "g", label="neutral"))
    output = run(url, "import", str(gold), "--controls")
    assert "control posts marked" in output and "3" in output
    assert _controls(url) == {f"g{i}": ("neutral", ControlSource.IMPORT) for i in range(3)}
    unlabelled = write_csv(tmp_path / "bad.csv", posts(2, "en", "h", label="pro") + posts(1, "en", "u"))
    refused = run(url, "import", str(unlabelled), "--controls", ok=False)
    assert "a control post needs its gold label" in refused and "Traceback" not in refused
    assert len(_controls(url)) == 3  # nothing of the refused file was written
