"""Import posts (and any labels they carry) from CSV, JSONL or Parquet into a project, as one
transaction: either every valid row lands or nothing does. With `controls`, the file's label column is each post's
gold answer and its posts become control posts."""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, Operator, require_role
from annotator.accounts.users import get_or_create_user
from annotator.corpus.formulas import restore_export
from annotator.corpus.gcpause import no_gc_pauses
from annotator.corpus.readers import Table as InputTable
from annotator.corpus.readers import read_table
from annotator.corpus.textnorm import text_hash
from annotator.errors import ImportValidationError, InputFileError, RowProblem
from core.columns import TEXT_COLUMNS, find_column
from core.labels import LABELS, STUDY_CODES
from core.languages import LanguageDetector, UnknownLanguageError, normalise_language
from core.progress import PhaseProgress
from db.bulk import bulk_insert, refresh_statistics
from db.models import Annotation as AnnotationRow
from db.models import (
    AnnotationEvent,
    AnnotationKind,
    AnnotationSource,
    ControlPost,
    ControlSource,
    EventAction,
    ImportRun,
    Item,
    LanguageSource,
    Project,
    Split,
    utcnow,
)

ID_CANDIDATES = ("id", "external_id", "post_id", "tweet_id")
LANGUAGE_CANDIDATES = ("lang", "language", "language_code")
LABEL_CANDIDATES = ("label", "gold", "gold_label")
SPLIT_CANDIDATES = ("split",)
ANNOTATOR_PREFIX = "label__"
"""Columns named label__<user> carry that user's labels (as lingualoop exports them)."""
DERIVED_COLUMNS = frozenset(
    {
        "label_source",
        "label_probability",
        "n_labels",
        "agreement",
        "is_control",
        "control_label",
        "flags",
        "flag_reasons",
        "flag_decision",
        "model_version",
        "predicted",
        "confidence",
        "p_pro",
        "p_anti",
        "p_neutral",
        "p_unrelated",
    }
)
"""Columns a lingualoop export computes; re-importing an export does not keep them as metadata."""
DERIVED_PREFIXES = ("source__", "guideline__", "seconds__")
"""An export's provenance columns beside each `label__<user>`: not metadata either."""
MAX_ID_LENGTH = 255
_CHUNK = 5_000


@dataclass(frozen=True)
class ColumnMapping:
    """Which file columns hold what; None means: find it by its usual names."""

    text: str | None = None
    id: str | None = None
    language: str | None = None
    label: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class ImportOptions:
    split: Split = Split.POOL
    """Split for rows without a split column value. `eval` posts are held out: never sampled for
    labelling or used for training."""
    annotator: str = "import"
    """User that the file's labels are recorded under (created if missing, cannot log in)."""
    skip_invalid: bool = False
    """Import the valid rows and report the others, instead of importing nothing."""
    max_chars: int = 40_000
    """Longest post accepted, in characters."""
    controls: bool = False
    """The file's label column is each post's gold answer: its posts (new ones and those already in the project)
    become active control posts, and every row needs a label. `label__<user>` columns stay that annotator's
    answers, here on the control."""


@dataclass
class ImportReport:
    import_id: int
    filename: str
    rows_read: int = 0
    posts_added: int = 0
    duplicates_in_file: int = 0
    duplicates_in_project: int = 0
    labels_added: int = 0
    controls_marked: int = 0
    """Posts made (or kept) active controls with the file's gold label (a control import only)."""
    languages_detected: int = 0
    rows_skipped: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    posts_per_language: Counter[str] = field(default_factory=Counter)
    labels_per_label: Counter[str] = field(default_factory=Counter)
    new_languages: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicates_in_file + self.duplicates_in_project


@dataclass
class _Row:
    index: int
    external_id: str
    text: str
    hash: str
    language: str | None
    labels: list[tuple[str, str]]
    """(username, label code) pairs."""
    split: Split
    meta: dict[str, Any]
    gold: str | None = None
    """The gold label code of a control import's row."""


@dataclass(frozen=True)
class _Columns:
    text: int
    id: int | None
    language: int | None
    label: int | None
    split: int | None
    annotators: list[tuple[int, str]]
    meta: list[tuple[int, str]]


def import_file(
    session: Session,
    project: Project,
    path: Path,
    *,
    file_format: str | None = None,
    mapping: ColumnMapping = ColumnMapping(),
    options: ImportOptions = ImportOptions(),
    progress: PhaseProgress | None = None,
    by: Actor,
) -> ImportReport:
    """Read, validate and import a file into `project`. Raises InputFileError or
    ImportValidationError (nothing written) with messages that name the row and column. `by` is the signed-in
    user, or OPERATOR for the command line."""
    require_role(by, RESEARCHERS, "import posts")
    marked_by = None if isinstance(by, Operator) else by.id
    with no_gc_pauses():
        return _import_file(session, project, path, file_format, mapping, options, progress, marked_by)


def _import_file(
    session: Session,
    project: Project,
    path: Path,
    file_format: str | None,
    mapping: ColumnMapping,
    options: ImportOptions,
    progress: PhaseProgress | None,
    marked_by: int | None,
) -> ImportReport:
    table = read_table(path, file_format)
    fmt = file_format or path.suffix.lower().lstrip(".")
    if fmt in ("csv", "tsv"):
        table = restore_export(table)  # a lingualoop CSV export: undo its formula neutralisation
    return import_table(
        session,
        project,
        table,
        filename=path.name,
        file_format=fmt,
        mapping=mapping,
        options=options,
        progress=progress,
        marked_by=marked_by,
    )


def import_table(
    session: Session,
    project: Project,
    table: InputTable,
    *,
    filename: str,
    file_format: str,
    mapping: ColumnMapping = ColumnMapping(),
    options: ImportOptions = ImportOptions(),
    progress: PhaseProgress | None = None,
    marked_by: int | None = None,
) -> ImportReport:
    """Import a table read already. `marked_by` is the user recorded as marking a control import's controls
    (None: the operator)."""
    report_progress = progress or (lambda phase, done, total: None)
    columns = _resolve_columns(table, mapping, filename, options.controls)
    label_lookup = _label_lookup(project)
    problems: list[RowProblem] = []
    rows = _parse_rows(table, columns, label_lookup, options, problems, report_progress)

    existing_ids, existing_hashes = _existing_keys(session, project.id)
    kept, dup_in_file, dup_in_project, labels_for_existing = _collapse_duplicates(
        table, rows, existing_ids, existing_hashes, problems, controls=options.controls
    )
    gold_for_existing = _gold_for_existing(table, rows, existing_hashes, problems) if options.controls else {}

    bad_rows = {problem.index for problem in problems}
    if problems and not options.skip_invalid:
        raise ImportValidationError(problems, total=len(bad_rows))
    if options.skip_invalid:
        kept = [row for row in kept if row.index not in bad_rows]
    if not kept and not dup_in_project and not dup_in_file:
        if problems:
            raise ImportValidationError(problems, total=len(bad_rows))
        raise InputFileError(f"{filename}: no valid rows to import.")

    run = ImportRun(
        project_id=project.id,
        filename=filename[:500],
        file_format=file_format[:16],
        split=options.split,
        rows_read=len(table.rows),
    )
    session.add(run)
    session.flush()
    report = ImportReport(
        import_id=run.id,
        filename=filename,
        rows_read=len(table.rows),
        rows_skipped=len(bad_rows),
        problems=problems,
    )

    detections = _detect_missing_languages(kept, project.languages, report_progress)
    report.languages_detected = len(detections)
    _insert_items(session, project.id, run.id, kept, detections, report_progress)
    # A control file naming a post of the project points at it; it is not one more copy collected.
    _add_collapsed_counts(session, project.id, dup_in_file, Counter() if options.controls else dup_in_project)

    labelled = [row for row in kept if row.labels]
    names = {name for row in labelled for name, _ in row.labels} | {
        name for _, name, _ in labels_for_existing
    }
    user_ids = {name: get_or_create_user(session, name).id for name in sorted(names)}
    ids = dict(session.execute(select(Item.external_id, Item.id).where(Item.import_id == run.id)).all())
    new_labels = [
        (ids[row.external_id], user_ids[name], code) for row in labelled for name, code in row.labels
    ]
    new_labels += _labels_not_yet_given(
        session, [(item, user_ids[name], code) for item, name, code in labels_for_existing]
    )
    _insert_labels(session, new_labels, report_progress)
    if options.controls:
        gold = gold_for_existing | {ids[row.external_id]: row.gold for row in kept if row.gold is not None}
        report.controls_marked = _mark_controls(session, gold, marked_by)

    report.posts_added = len(kept)
    report.duplicates_in_file = sum(dup_in_file.values())
    report.duplicates_in_project = sum(dup_in_project.values())
    report.labels_added = len(new_labels)
    report.posts_per_language = Counter(row.language or detections[row.index] for row in kept)
    report.labels_per_label = Counter(code for _, _, code in new_labels)
    report.new_languages = sorted(set(report.posts_per_language) - set(project.languages))
    if report.new_languages:
        project.languages = sorted(set(project.languages) | set(report.new_languages))

    run.posts_added, run.duplicates, run.labels_added = (
        report.posts_added,
        report.duplicates,
        report.labels_added,
    )
    run.languages_detected, run.rows_skipped = report.languages_detected, report.rows_skipped
    session.flush()
    if len(kept) >= 10_000:
        refresh_statistics(session, "items", "annotations")
    return report


def _find_column(
    table: InputTable, given: str | None, candidates: Sequence[str], what: str, filename: str, required: bool
) -> int | None:
    lowered = {name.lower(): i for i, name in enumerate(table.columns)}
    if given is not None:
        if given in table.columns:
            return table.columns.index(given)
        if given.lower() in lowered:
            return lowered[given.lower()]
        raise InputFileError(
            f"{filename}: no column '{given}' for the {what}; the file has: {', '.join(table.columns)}."
        )
    found = find_column(table.columns, candidates)
    if found is not None:
        return table.columns.index(found)
    if required:
        raise InputFileError(
            f"{filename}: no {what} column (looked for {', '.join(candidates)}); the file has: "
            f"{', '.join(table.columns)}. Name it with --text-col."
        )
    return None


def _resolve_columns(
    table: InputTable, mapping: ColumnMapping, filename: str, controls: bool = False
) -> _Columns:
    text = _find_column(table, mapping.text, TEXT_COLUMNS, "text", filename, required=True)
    assert text is not None
    id_ = _find_column(table, mapping.id, ID_CANDIDATES, "id", filename, required=False)
    language = _find_column(
        table, mapping.language, LANGUAGE_CANDIDATES, "language", filename, required=False
    )
    label = _find_column(table, mapping.label, LABEL_CANDIDATES, "label", filename, required=False)
    split = _find_column(table, mapping.split, SPLIT_CANDIDATES, "split", filename, required=False)
    annotators = [
        (i, name[len(ANNOTATOR_PREFIX) :])
        for i, name in enumerate(table.columns)
        if name.startswith(ANNOTATOR_PREFIX) and len(name) > len(ANNOTATOR_PREFIX)
    ]
    if controls and label is None:
        raise InputFileError(
            f"{filename}: importing control posts takes each post's gold answer from its label column (looked "
            f"for {', '.join(LABEL_CANDIDATES)}); the file has: {', '.join(table.columns)}."
        )
    if annotators and mapping.label is None and not controls:
        label = None  # an export's consensus label is derived from the per-annotator columns
    used = {text, id_, language, label, split, *(i for i, _ in annotators)}
    meta = [
        (i, name)
        for i, name in enumerate(table.columns)
        if i not in used
        and name not in DERIVED_COLUMNS
        and name != "label"
        and not name.startswith(DERIVED_PREFIXES)
    ]
    return _Columns(
        text=text, id=id_, language=language, label=label, split=split, annotators=annotators, meta=meta
    )


def _label_lookup(project: Project) -> dict[str, str]:
    """Accepted spellings of each label: its code, the study's number, the project's display name."""
    lookup = {code: code for code in LABELS} | dict(STUDY_CODES)
    for code, display in project.label_names.items():
        lookup[str(display).strip().lower()] = code
    return lookup


class _Rejected(Exception):
    """A cell failed validation; the row is reported (and skipped)."""

    def __init__(self, column: int | None, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _parse_rows(
    table: InputTable,
    columns: _Columns,
    label_lookup: dict[str, str],
    options: ImportOptions,
    problems: list[RowProblem],
    progress: PhaseProgress,
) -> list[_Row]:
    language_cache: dict[str, str | UnknownLanguageError] = {}
    rows: list[_Row] = []
    total = len(table.rows)
    for index, cells in enumerate(table.rows):
        if index % _CHUNK == 0:
            progress("checking rows", index, total)
        try:
            _check_cells(cells, table.may_have_surrogates)
            text, digest = _text(cells, columns, options.max_chars)
            rows.append(
                _Row(
                    index=index,
                    external_id=_external_id(cells, columns, digest),
                    text=text,
                    hash=digest,
                    language=_language(cells, columns, language_cache),
                    labels=_labels(
                        cells, columns, label_lookup, None if options.controls else options.annotator
                    ),
                    split=_split(cells, columns, options.split),
                    meta=_meta(cells, columns),
                    gold=_gold(cells, columns, label_lookup) if options.controls else None,
                )
            )
        except _Rejected as rejected:
            column = None if rejected.column is None else table.columns[rejected.column]
            problems.append(RowProblem(table.where(index), column, rejected.message, index))
    progress("checking rows", total, total)
    return rows


def _check_cells(cells: list[str | None], surrogates_possible: bool) -> None:
    """Characters no database stores, in any column (ids and metadata as well as the post)."""
    for column, value in enumerate(cells):
        if value is None:
            continue
        if "\x00" in value:
            raise _Rejected(column, "the cell contains a NUL character")
        if surrogates_possible:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Rejected(column, "the cell contains invalid Unicode (a lone surrogate)") from None


def _text(cells: list[str | None], columns: _Columns, max_chars: int) -> tuple[str, str]:
    """The post and the hash of its normalised text."""
    text = cells[columns.text]
    if text is None or not text.strip():
        raise _Rejected(columns.text, "the post is empty")
    if len(text) > max_chars:
        raise _Rejected(
            columns.text,
            f"the post is {len(text):,} characters long; the limit is {max_chars:,} (--max-chars)",
        )
    return text, text_hash(text)  # NUL and lone surrogates were rejected by _check_cells


def _generated_id(digest: str) -> str:
    """The id of a post from a file without an id column: from its normalised text."""
    return f"h-{digest[:16]}"


def _external_id(cells: list[str | None], columns: _Columns, digest: str) -> str:
    if columns.id is None:
        return _generated_id(digest)
    value = (cells[columns.id] or "").strip()
    if not value:
        raise _Rejected(columns.id, "the id is empty")
    if len(value) > MAX_ID_LENGTH:
        raise _Rejected(columns.id, f"the id is longer than {MAX_ID_LENGTH} characters")
    return value


def _language(
    cells: list[str | None], columns: _Columns, cache: dict[str, str | UnknownLanguageError]
) -> str | None:
    """The normalised code, or None when it is missing and must be detected."""
    if columns.language is None:
        return None
    raw = (cells[columns.language] or "").strip()
    if not raw:
        return None
    if raw not in cache:
        try:
            cache[raw] = normalise_language(raw)
        except UnknownLanguageError as error:
            cache[raw] = error
    found = cache[raw]
    if isinstance(found, UnknownLanguageError):
        raise _Rejected(columns.language, str(found))
    return found


def _labels(
    cells: list[str | None], columns: _Columns, lookup: dict[str, str], default_user: str | None
) -> list[tuple[str, str]]:
    """(username, code) pairs from the label column (recorded under `default_user`; None: the label column is
    not an annotator's) and any label__<user> columns."""
    sources = (
        [(columns.label, default_user)] if columns.label is not None and default_user is not None else []
    )
    sources += columns.annotators
    labels: list[tuple[str, str]] = []
    for column, username in sources:
        raw = (cells[column] or "").strip()
        if not raw:
            continue
        labels.append((username, _label_code(raw, column, lookup)))
    return labels


def _label_code(raw: str, column: int, lookup: dict[str, str]) -> str:
    code = lookup.get(raw.lower())
    if code is None:
        raise _Rejected(
            column, f"unknown label '{raw[:40]}': use {', '.join(LABELS)} (or 1-4), or leave it empty"
        )
    return code


def _gold(cells: list[str | None], columns: _Columns, lookup: dict[str, str]) -> str:
    """A control import's gold label: every row needs one, since a control without its answer scores nobody."""
    assert columns.label is not None  # _resolve_columns requires it for a control import
    raw = (cells[columns.label] or "").strip()
    if not raw:
        raise _Rejected(columns.label, "a control post needs its gold label, and this row's label is empty")
    return _label_code(raw, columns.label, lookup)


def _split(cells: list[str | None], columns: _Columns, default: Split) -> Split:
    if columns.split is None:
        return default
    raw = (cells[columns.split] or "").strip().lower()
    if not raw:
        return default
    try:
        return Split(raw)
    except ValueError:
        raise _Rejected(columns.split, f"unknown split '{raw[:40]}': use pool or eval") from None


def _meta(cells: list[str | None], columns: _Columns) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for i, name in columns.meta:
        value = cells[i]
        if value is None or value == "":
            continue
        if name == "meta" and value.startswith("{"):
            # A lingualoop export's own metadata column: unpack it so re-imports round-trip.
            try:
                meta.update(json.loads(value))
                continue
            except json.JSONDecodeError:
                pass
        meta[name] = value
    return meta


def _existing_keys(session: Session, project_id: int) -> tuple[dict[str, int], dict[str, int]]:
    """The project's posts by external id and by text hash (item ids)."""
    result = session.execute(
        select(Item.external_id, Item.text_hash, Item.id).where(Item.project_id == project_id)
    )
    ids: dict[str, int] = {}
    hashes: dict[str, int] = {}
    for external_id, digest, item_id in result:
        ids[external_id] = item_id
        hashes[digest] = item_id
    return ids, hashes


def _collapse_duplicates(
    table: InputTable,
    rows: list[_Row],
    existing_ids: dict[str, int],
    existing_hashes: dict[str, int],
    problems: list[RowProblem],
    *,
    controls: bool = False,
) -> tuple[list[_Row], Counter[str], Counter[int], list[tuple[int, str, str]]]:
    """Keep the first row per normalised text; duplicate ids are errors, duplicate texts collapse. A copy's
    labels are kept: added to the kept row (a user's first label wins), or returned for the existing post. In a
    control import, a row with the id and text of a post already in the project names that post (it becomes a
    control), and a copy whose gold label differs from the first row's is an error.

    Returns the kept rows, copies per kept text hash, copies per existing item id, and (existing item id,
    username, label) for labels that copies of existing posts carried."""
    seen_ids: dict[str, int] = {}
    kept_by_hash: dict[str, _Row] = {}
    dup_in_file: Counter[str] = Counter()
    dup_in_project: Counter[int] = Counter()
    labels_for_existing: list[tuple[int, str, str]] = []
    kept: list[_Row] = []
    for row in rows:
        where = table.where(row.index)
        if row.external_id == _generated_id(row.hash):
            # No id column: the id comes from the text, so a repeated text is a duplicate, never an id clash
            # (re-uploading a file that was imported already counts its rows as already in the project).
            pass
        elif row.external_id in existing_ids and not (
            controls and existing_hashes.get(row.hash) == existing_ids[row.external_id]
        ):
            problems.append(
                RowProblem(where, None, f"id '{row.external_id}' is already in this project", row.index)
            )
            continue
        first = seen_ids.get(row.external_id)
        if first is not None and row.external_id != _generated_id(row.hash):
            problems.append(
                RowProblem(
                    where, None, f"id '{row.external_id}' also appears at {table.where(first)}", row.index
                )
            )
            continue
        seen_ids[row.external_id] = row.index
        if row.hash in existing_hashes:
            item_id = existing_hashes[row.hash]
            dup_in_project[item_id] += 1
            labels_for_existing += [(item_id, user, label) for user, label in row.labels]
        elif row.hash in kept_by_hash:
            first_row = kept_by_hash[row.hash]
            if controls and row.gold != first_row.gold:
                problems.append(
                    RowProblem(
                        where,
                        None,
                        f"the same post is at {table.where(first_row.index)} with the gold label "
                        f"'{first_row.gold}', here '{row.gold}'",
                        row.index,
                    )
                )
                continue
            dup_in_file[row.hash] += 1
            users = {user for user, _ in first_row.labels}
            first_row.labels += [(user, label) for user, label in row.labels if user not in users]
        else:
            kept_by_hash[row.hash] = row
            kept.append(row)
    return kept, dup_in_file, dup_in_project, labels_for_existing


def _gold_for_existing(
    table: InputTable, rows: list[_Row], existing_hashes: dict[str, int], problems: list[RowProblem]
) -> dict[int, str]:
    """A control import's gold labels for posts already in the project (by text), one per post: two rows naming
    the same post with different gold labels are an error."""
    gold: dict[int, tuple[str, int]] = {}
    bad_rows = {problem.index for problem in problems}
    for row in rows:
        item_id = existing_hashes.get(row.hash)
        if item_id is None or row.gold is None or row.index in bad_rows:
            continue
        first = gold.setdefault(item_id, (row.gold, row.index))
        if first[0] != row.gold:
            problems.append(
                RowProblem(
                    table.where(row.index),
                    None,
                    f"the same post is at {table.where(first[1])} with the gold label '{first[0]}', "
                    f"here '{row.gold}'",
                    row.index,
                )
            )
    return {item_id: label for item_id, (label, _) in gold.items()}


def _mark_controls(session: Session, gold: dict[int, str], marked_by: int | None) -> int:
    """Make the posts active controls with their gold labels, in bulk (a control file can be large): a post that
    was a control before, active or not, takes the file's label. Returns how many posts are marked."""
    if not gold:
        return 0
    items = sorted(gold)
    existing: set[int] = set()
    for start in range(0, len(items), _CHUNK):  # chunks: SQLite caps the parameters of one statement
        chunk = items[start : start + _CHUNK]
        existing |= set(session.scalars(select(ControlPost.item_id).where(ControlPost.item_id.in_(chunk))))
    source = ControlSource.IMPORT.value
    if existing:
        session.execute(
            update(_table(ControlPost))
            .where(ControlPost.item_id == bindparam("i"))
            .values(label=bindparam("l"), source=source, active=True, user_id=marked_by),
            [{"i": item_id, "l": gold[item_id]} for item_id in sorted(existing)],
        )
    now = utcnow()
    fresh = [
        {
            "item_id": item_id,
            "label": gold[item_id],
            "source": source,
            "user_id": marked_by,
            "active": True,
            "created_at": now,
        }
        for item_id in items
        if item_id not in existing
    ]
    for start in range(0, len(fresh), _CHUNK):
        bulk_insert(session, _table(ControlPost), fresh[start : start + _CHUNK])
    return len(gold)


def _labels_not_yet_given(session: Session, labels: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Labels for posts already in the project, less those whose user already answered that post (and less
    repeats within the file): an import never overwrites an existing answer."""
    if not labels:
        return []
    items = sorted({item for item, _, _ in labels})
    answered: set[tuple[int, int]] = set()
    for start in range(0, len(items), _CHUNK):  # chunks: SQLite caps the parameters of one statement
        chunk = items[start : start + _CHUNK]
        found = session.execute(
            select(AnnotationRow.item_id, AnnotationRow.user_id).where(AnnotationRow.item_id.in_(chunk))
        ).all()
        answered |= {(item, user) for item, user in found}
    fresh: list[tuple[int, int, str]] = []
    for item, user, code in labels:
        if (item, user) not in answered:
            answered.add((item, user))
            fresh.append((item, user, code))
    return fresh


def _detect_missing_languages(
    rows: list[_Row], project_languages: Iterable[str], progress: PhaseProgress
) -> dict[int, str]:
    missing = [row for row in rows if row.language is None]
    if not missing:
        return {}
    detector = LanguageDetector(project_languages)
    found: dict[int, str] = {}
    for done, row in enumerate(missing):
        if done % 500 == 0:
            progress("detecting languages", done, len(missing))
        detection = detector.detect(row.text)
        found[row.index] = detection.language
        row.meta["language_confidence"] = detection.confidence
    progress("detecting languages", len(missing), len(missing))
    return found


def _table(model: type[Any]) -> Table:
    """The Core table of a model, for executemany inserts without ORM overhead."""
    table: Table = model.__table__
    return table


def _insert_items(
    session: Session,
    project_id: int,
    import_id: int,
    rows: list[_Row],
    detections: dict[int, str],
    progress: PhaseProgress,
) -> None:
    now = utcnow()
    table = _table(Item)
    for start in range(0, len(rows), _CHUNK):
        progress("saving posts", start, len(rows))
        chunk = rows[start : start + _CHUNK]
        values = [
            {
                "project_id": project_id,
                "external_id": row.external_id,
                "text": row.text,
                "language": row.language or detections[row.index],
                "language_source": LanguageSource.GIVEN.value
                if row.language
                else LanguageSource.DETECTED.value,
                "language_confidence": None if row.language else row.meta.pop("language_confidence", None),
                "text_hash": row.hash,
                "meta": row.meta,
                "split": row.split.value,
                "duplicates": 0,
                "import_id": import_id,
                "created_at": now,
            }
            for row in chunk
        ]
        bulk_insert(session, table, values)
    progress("saving posts", len(rows), len(rows))


def _add_collapsed_counts(
    session: Session, project_id: int, dup_in_file: Counter[str], dup_in_project: Counter[int]
) -> None:
    if dup_in_file:
        session.execute(
            update(_table(Item))
            .where(Item.project_id == project_id, Item.text_hash == bindparam("h"))
            .values(duplicates=bindparam("n")),
            [{"h": digest, "n": count} for digest, count in dup_in_file.items()],
        )
    if dup_in_project:
        session.execute(
            update(_table(Item))
            .where(Item.id == bindparam("i"))
            .values(duplicates=Item.duplicates + bindparam("n")),
            [{"i": item_id, "n": count} for item_id, count in dup_in_project.items()],
        )


def _insert_labels(session: Session, labels: list[tuple[int, int, str]], progress: PhaseProgress) -> None:
    """Insert (item id, user id, label) answers with their history events."""
    now: datetime = utcnow()
    for start in range(0, len(labels), _CHUNK):
        progress("saving labels", start, len(labels))
        chunk = labels[start : start + _CHUNK]
        common: dict[str, Any] = {"kind": AnnotationKind.LABEL.value, "source": AnnotationSource.IMPORT.value}
        bulk_insert(
            session,
            _table(AnnotationRow),
            [
                common
                | {
                    "item_id": item_id,
                    "user_id": user_id,
                    "label": label,
                    "created_at": now,
                    "updated_at": now,
                    "flag_reason": None,
                    "external_ref": None,
                    "seconds": None,
                }
                for item_id, user_id, label in chunk
            ],
        )
        bulk_insert(
            session,
            _table(AnnotationEvent),
            [
                common
                | {
                    "item_id": item_id,
                    "user_id": user_id,
                    "label": label,
                    "action": EventAction.CREATE.value,
                    "created_at": now,
                    "flag_reason": None,
                    "seconds": None,
                }
                for item_id, user_id, label in chunk
            ],
        )
    progress("saving labels", len(labels), len(labels))
