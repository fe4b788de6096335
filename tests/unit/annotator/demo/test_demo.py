"""The bundled demo corpus: synthetic, multilingual, with duplicates and gold labels; demo setup is idempotent."""

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import verify_password
from annotator.corpus.readers import read_table
from annotator.demo import create_demo_project, demo_corpus_path
from annotator.reports.status import project_status
from core.languages import is_rtl
from db.models import Item, Split, User


def test_corpus_shape() -> None:
    table = read_table(demo_corpus_path())
    assert table.columns == ["id", "lang", "text", "label", "split", "month"]
    languages = Counter(row[1] for row in table.rows)
    assert len(table.rows) >= 250 and len(languages) >= 10
    assert any(is_rtl(code) for code in languages)
    scripts = {"ar": "\u0600", "hi": "\u0900", "ru": "\u0400", "el": "\u0370"}
    for code, block_start in scripts.items():
        texts = [row[2] or "" for row in table.rows if row[1] == code]
        assert any(block_start <= ch <= chr(ord(block_start) + 0xFF) for text in texts for ch in text), code
    assert "synthetic" in (demo_corpus_path().parent / "README.md").read_text(encoding="utf-8").lower()


def test_demo_project(session: Session) -> None:
    setup = create_demo_project(session, by=OPERATOR)
    assert setup.created and setup.report is not None
    assert setup.report.duplicates >= 5  # the corpus carries near-duplicates and retweets on purpose
    status = project_status(session, setup.project)
    assert len(status.languages) >= 10
    eval_posts = session.scalar(select(func.count()).select_from(Item).where(Item.split == Split.EVAL))
    assert eval_posts and eval_posts >= 50
    admin = session.scalar(select(User).where(User.username == "admin"))
    assert admin is not None and verify_password(admin.password_hash, setup.passwords["admin"])
    again = create_demo_project(session, by=OPERATOR)
    assert not again.created and again.project.id == setup.project.id
