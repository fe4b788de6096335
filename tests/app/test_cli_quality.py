"""`lingualoop controls` and `lingualoop guideline`: controls marked by post id or taken from the eval split, listed
and unmarked; guideline versions and translations set from a file."""

from pathlib import Path

from sqlalchemy import select

from db.engine import make_engine, make_session_factory
from db.models import ControlPost, ControlSource, Guideline, Item
from testing.factories import posts, write_csv
from tests.app.test_cli import run, url  # noqa: F401  (the fixture)


def _rows(database_url: str, query):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return session.execute(query).all()
    finally:
        engine.dispose()


def test_controls_by_id_from_eval_list_and_remove(url: str, tmp_path: Path) -> None:  # noqa: F811
    run(url, "init", "study", "--languages", "en,tr")
    run(url, "import", str(write_csv(tmp_path / "pool.csv", posts(4, "en", "p"))))
    gold = posts(6, "en", "e", label="anti") + posts(3, "tr", "t", label="pro")
    run(url, "import", str(write_csv(tmp_path / "eval.csv", gold)), "--split", "eval", "--annotator", "gold")
    assert "No control posts yet" in run(url, "controls", "list")

    assert "is a control post" in run(url, "controls", "add", "p1", "--label", "neutral")
    refused = run(url, "controls", "add", "p2", "--label", "maybe", ok=False)
    assert "Unknown label 'maybe'" in refused and "Traceback" not in refused
    assert "No post with id 'nope'" in run(url, "controls", "add", "nope", "--label", "pro", ok=False)

    output = run(url, "controls", "from-eval", "--per-language", "4")
    assert "English (en): 4" in output and "Turkish (tr): 3" in output
    controls = _rows(
        url,
        select(Item.external_id, Item.split, ControlPost.label, ControlPost.source)
        .join(ControlPost, ControlPost.item_id == Item.id)
        .where(ControlPost.active.is_(True)),
    )
    by_source = {source for _, _, _, source in controls}
    assert len(controls) == 8 and by_source == {ControlSource.MANUAL, ControlSource.EVAL}
    # Eval posts stay eval posts, with their gold label as the control's answer.
    assert all(
        split == "eval" and label == ("anti" if eid.startswith("e") else "pro")
        for eid, split, label, source in controls
        if source == ControlSource.EVAL
    )
    listed = run(url, "controls", "list")
    assert "p1" in listed and "neutral" in listed

    assert "no longer a control" in run(url, "controls", "remove", "p1")
    assert "is not a control post" in run(url, "controls", "remove", "p1", ok=False)
    assert len(_rows(url, select(ControlPost.id).where(ControlPost.active.is_(True)))) == 7


def test_guideline_versions_and_translations(url: str, tmp_path: Path) -> None:  # noqa: F811
    run(url, "init", "study", "--languages", "en,tr")
    base, turkish = tmp_path / "g.md", tmp_path / "tr.md"
    base.write_text("Label what the post says about immigration.", encoding="utf-8")
    turkish.write_text("Gönderinin göç hakkında ne dediğini etiketleyin.", encoding="utf-8")
    assert "project guideline, version 1" in run(url, "guideline", "set", str(base))
    base.write_text(
        "Label what the post says about immigration. Skip what you cannot read.", encoding="utf-8"
    )
    assert "version 2" in run(url, "guideline", "set", str(base))
    assert "Turkish (tr) translation, version 1" in run(
        url, "guideline", "set", str(turkish), "--language", "tr"
    )
    refused = run(url, "guideline", "set", str(turkish), "--language", "ko", ok=False)
    assert "ko" in refused and "Traceback" not in refused
    shown = run(url, "guideline", "show", "--language", "tr")
    assert "Turkish translation, version 1" in shown and "göç" in shown
    assert "Skip what you cannot read" in run(url, "guideline", "show", "--language", "en")
    versions = _rows(url, select(Guideline.language, Guideline.version).order_by(Guideline.id))
    assert [tuple(v) for v in versions] == [("", 1), ("", 2), ("tr", 1)]
