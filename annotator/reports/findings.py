"""Findings: the share of pro / anti / neutral / unrelated posts per language (and per metadata column such as
country or month), counted from a model version's probabilities and corrected with that version's own errors on
the project's eval split (annotator.reports.quantify does the arithmetic).

The posts to count are the project's pool (default) or files of probabilities: an export made with
--with-predictions, or any CSV / TSV / JSONL / Parquet files (a folder of Parquet shards, say) with p_pro, p_anti,
p_neutral and p_unrelated columns and a language column."""

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.corpus.readers import read_table
from annotator.errors import InputFileError, LingualoopError, NotFoundError
from annotator.reports.quantify import (
    FALLBACKS,
    METHODS,
    MIN_EVAL_POSTS,
    Counted,
    EvalPosts,
    GroupShares,
    group_shares,
    never_predicted,
    scoped,
)
from annotator.retraining.requests import get_version
from core.files import CORPUS_FORMATS, corpus_format
from core.labels import LABELS
from db.models import PROBABILITY_COLUMNS, Item, ModelVersion, Prediction, Project, Split
from db.versions import VersionNotReady, consensus_posts, probabilities_of, require_ready

LANGUAGE: Final[str] = "lang"
"""The group-by name of the post's language (``language`` is accepted too)."""
MISSING: Final[str] = "(missing)"
PROBABILITY_NAMES: Final[list[str]] = [f"p_{label}" for label in LABELS]
SCOPES: Final[dict[str, tuple[str, ...]]] = {"all": LABELS, "related": LABELS[:3]}
"""Shares among all posts, and among the posts about immigration (pro, anti, neutral)."""
FILE_SUFFIXES: Final[tuple[str, ...]] = tuple(suffix for suffix in CORPUS_FORMATS if suffix != ".json")
"""The files of a folder read as scored posts: what import reads (core.files) but .json, since classify writes
its manifest.json and run.json beside its shards. A .json file named on its own is read, as JSONL."""
_READ_BATCH: Final[int] = 10_000


@dataclass(frozen=True)
class Findings:
    """Shares per group by every method, and what a reader must know about them."""

    version_id: int
    group_by: list[str]
    methods: list[str]
    groups: list[GroupShares]
    eval_posts: dict[str, int]
    min_eval: int
    fallback: str
    notes: list[str]


def group_by_columns(spec: str | Sequence[str]) -> list[str]:
    """`lang,country` -> ['lang', 'country'] (`language` means `lang`); at least one column."""
    names = [part.strip() for part in spec.split(",")] if isinstance(spec, str) else list(spec)
    columns = [LANGUAGE if name == "language" else name for name in names if name]
    if not columns:
        raise LingualoopError("Say what to group by: --by lang, or lang,COLUMN for a metadata column.")
    if len(set(columns)) != len(columns):
        raise LingualoopError(f"A column is named twice in --by {','.join(columns)}.")
    return columns


def ready_version(session: Session, project: Project, version_id: int | None) -> ModelVersion:
    try:
        return require_ready(get_version(session, project, version_id))
    except VersionNotReady as error:
        raise LingualoopError(f"{error}: choose a ready version (`lingualoop models` lists them).") from None


def eval_posts_of(session: Session, project: Project, version: ModelVersion) -> tuple[EvalPosts, list[str]]:
    """The project's labelled eval posts with the version's probabilities for them."""
    labelled = consensus_posts(session, project.id, Split.EVAL)
    if not labelled:
        raise LingualoopError(
            f"Project '{project.name}' has no labelled eval posts, so the model's errors cannot be measured "
            "and the counts cannot be corrected. Import gold-labelled posts as the eval split "
            "(`lingualoop import FILE --label-col label --split eval`)."
        )
    found = probabilities_of(session, version.id, [post.item_id for post in labelled])
    if not found:
        raise LingualoopError(
            f"Model version {version.id} has no predictions for the eval posts (it was trained before versions "
            "kept them, or before the eval split was imported). Press Retrain to get a version that does."
        )
    notes = []
    scored = [post for post in labelled if post.item_id in found]
    if len(scored) < len(labelled):
        notes.append(
            f"{len(labelled) - len(scored)} eval posts were labelled after version {version.id} was trained "
            "and are not used to measure its errors."
        )
    evals = EvalPosts(
        probabilities=np.array([found[post.item_id] for post in scored], dtype=np.float64),
        gold=np.array([LABELS.index(post.label) for post in scored], dtype=np.int64),
        languages=np.array([post.language for post in scored], dtype=np.str_),
    )
    return evals, notes


def _cell_text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


class _Collector:
    """Gathers posts as they stream in (from the pool or from files): probabilities, language, and the index of
    the group their `by` values make."""

    def __init__(self, by: Sequence[str]) -> None:
        self.by = list(by)
        self.keys: list[tuple[str, ...]] = []
        self._index: dict[tuple[str, ...], int] = {}
        self.probabilities: list[Sequence[float]] = []
        self.languages: list[str] = []
        self.groups: list[int] = []

    def add(self, probabilities: Sequence[float], language: str, columns: dict[str, Any]) -> None:
        """One post; `columns` holds its metadata values (the language is added as `lang`)."""
        values = {**columns, LANGUAGE: language}
        key = tuple(_cell_text(values.get(column)) for column in self.by)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.keys)
            self.keys.append(key)
        self.probabilities.append(probabilities)
        self.languages.append(language)
        self.groups.append(found)

    def __len__(self) -> int:
        return len(self.groups)

    def counted(self) -> Counted:
        return Counted(
            probabilities=np.asarray(self.probabilities, dtype=np.float64).reshape(-1, len(LABELS)),
            languages=np.array(self.languages, dtype=np.str_),
            groups=np.array(self.groups, dtype=np.int64),
            group_keys=self.keys,
        )


def pool_counted(session: Session, project: Project, version: ModelVersion, by: Sequence[str]) -> Counted:
    """The project's pool posts with the version's probabilities, grouped by `by`."""
    meta_columns = [column for column in by if column != LANGUAGE]
    columns: list[Any] = [Item.language, *PROBABILITY_COLUMNS]
    if meta_columns:
        columns.append(Item.meta)
    rows = session.execute(
        select(*columns)
        .join(Prediction, and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id))
        .where(Item.project_id == project.id, Item.split == Split.POOL)
        .order_by(Item.id)
        .execution_options(yield_per=_READ_BATCH)
    )
    posts = _Collector(by)
    seen_meta: set[str] = set()
    for row in rows:
        meta = row[5] if meta_columns else {}
        seen_meta.update(meta)
        posts.add(row[1:5], row[0], meta)
    if not posts:
        raise LingualoopError(
            f"Model version {version.id} scored no pool posts of project '{project.name}': nothing to count."
        )
    unknown = [column for column in meta_columns if column not in seen_meta]
    if unknown:
        raise LingualoopError(
            f"No post has a column named {', '.join(repr(c) for c in unknown)}. Group by lang or one of the "
            f"posts' metadata columns: {', '.join(sorted(seen_meta)) or '(the posts have no metadata columns)'}."
        )
    return posts.counted()


def metadata_columns(session: Session, project: Project, sample: int = 5_000) -> list[str]:
    """Metadata column names of the project's pool posts (from the first `sample` posts): what a researcher
    can group by besides the language."""
    metas = session.scalars(
        select(Item.meta).where(Item.project_id == project.id, Item.split == Split.POOL).limit(sample)
    )
    hidden = {"language_confidence"}  # written by language detection, not a column of the file
    return sorted({key for meta in metas for key in meta} - hidden)


def input_files(path: Path) -> list[Path]:
    """A file, or the files of a folder (recursively) that look like scored posts."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist.")
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in FILE_SUFFIXES
        and not any(
            part.startswith(".") for part in p.relative_to(path).parts
        )  # classify's staging, partials
    )
    if not files:
        raise InputFileError(f"{path} holds no {', '.join(FILE_SUFFIXES)} files.")
    return files


def _file_records(path: Path, columns: list[str]) -> Iterable[dict[str, Any]]:
    """The wanted columns of a file's rows (Parquet read in record batches)."""
    if corpus_format(path) == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=_READ_BATCH, columns=present):
            yield from batch.to_pylist()
        return
    table = read_table(path)
    wanted = [(i, name) for i, name in enumerate(table.columns) if name in columns]
    for row in table.rows:
        yield {name: row[i] for i, name in wanted}


def _file_columns(path: Path) -> list[str]:
    if corpus_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    return read_table(path).columns


@dataclass(frozen=True)
class FileInput:
    counted: Counted
    versions: set[int]
    """The model versions the files name (their model_version column)."""
    eval_rows: int
    """Rows left out because their split column says eval (an export's gold posts measure the errors)."""


def file_counted(paths: Sequence[Path], by: Sequence[str], lang_col: str | None = None) -> FileInput:
    """Scored posts from files, grouped by `by`."""
    eval_rows = 0
    posts = _Collector(by)
    versions: set[int] = set()
    for path in paths:
        available = _file_columns(path)
        language_column = lang_col or next((c for c in ("lang", "language") if c in available), None)
        missing = [c for c in PROBABILITY_NAMES if c not in available]
        if language_column is None or language_column not in available:
            missing.append(lang_col or "lang (or language)")
        missing += [c for c in by if c != LANGUAGE and c not in available]
        if missing:
            raise InputFileError(
                f"{path.name} has no column {', '.join(repr(c) for c in missing)}. It needs "
                f"{', '.join(PROBABILITY_NAMES)}, a language column and the --by columns; it has: "
                f"{', '.join(available)}."
            )
        assert language_column is not None  # checked above
        wanted = [*PROBABILITY_NAMES, language_column, "model_version", "split", *by]
        for number, record in enumerate(_file_records(path, wanted), start=1):
            if record.get("split") == Split.EVAL.value:
                eval_rows += 1
                continue
            try:
                row = [float(record[c]) for c in PROBABILITY_NAMES]
            except (TypeError, ValueError):
                raise InputFileError(
                    f"{path.name}, row {number}: the probabilities are not numbers "
                    f"({', '.join(str(record[c]) for c in PROBABILITY_NAMES)})."
                ) from None
            if not all(np.isfinite(row)) or min(row) < 0 or abs(sum(row) - 1) > 0.01:
                raise InputFileError(
                    f"{path.name}, row {number}: p_pro .. p_unrelated must be four non-negative numbers that "
                    f"sum to 1 (they are {', '.join(f'{x:g}' for x in row)})."
                )
            language = _cell_text(record[language_column])
            if record.get("model_version") not in (None, ""):
                versions.add(int(float(record["model_version"])))
            posts.add(row, language, record)
    if not posts:
        raise InputFileError(f"{', '.join(p.name for p in paths)}: no rows to count.")
    return FileInput(posts.counted(), versions, eval_rows)


def file_version(session: Session, project: Project, named: set[int], version_id: int | None) -> ModelVersion:
    """The version whose errors correct a file's probabilities: --version, else the one the file names."""
    if version_id is None:
        if len(named) != 1:
            raise LingualoopError(
                "Say which model version produced these probabilities with --version N"
                + (f" (the file names versions {', '.join(map(str, sorted(named)))})." if named else ".")
            )
        version_id = next(iter(named))
    elif named and named != {version_id}:
        raise LingualoopError(
            f"The file's probabilities come from version(s) {', '.join(map(str, sorted(named)))}, not "
            f"{version_id}: correcting them with another version's errors would be wrong."
        )
    try:
        return ready_version(session, project, version_id)
    except NotFoundError:
        raise NotFoundError(
            f"Project '{project.name}' has no model version {version_id} (the file's probabilities must come "
            "from one of this project's versions)."
        ) from None


def compute_findings(
    counted: Counted,
    evals: EvalPosts,
    version_id: int,
    group_by: Sequence[str],
    *,
    methods: Sequence[str] = METHODS,
    resamples: int = 200,
    min_eval: int = MIN_EVAL_POSTS,
    fallback: str = "raw",
    seed: int = 0,
    notes: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Findings:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise LingualoopError(f"Unknown method {', '.join(unknown)}: choose from {', '.join(METHODS)}.")
    if resamples < 1:
        raise LingualoopError("--resamples must be at least 1.")
    if fallback not in FALLBACKS:
        raise LingualoopError(f"Unknown fallback {fallback}: choose from {', '.join(FALLBACKS)}.")
    groups = sorted(
        group_shares(
            counted,
            evals,
            methods,
            resamples=resamples,
            min_eval=min_eval,
            fallback=fallback,
            seed=seed,
            progress=progress,
        ),
        key=lambda group: group.key,
    )
    eval_counts = {str(lang): int(np.sum(evals.languages == lang)) for lang in np.unique(evals.languages)}
    pooled = sorted({lang for g in groups for lang in g.pooled_languages})
    all_notes = list(notes)
    if pooled:
        treatment = (
            "their counts are left uncorrected (marked 'raw'; --fallback pooled corrects them with the errors "
            "pooled over all languages, which measured worse than no correction: docs/prevalence.md)"
            if fallback == "raw"
            else "their counts are corrected with the errors pooled over all languages (marked 'pooled')"
        )
        all_notes.append(
            f"Too few eval posts (under {min_eval}) to measure the model's errors in "
            + ", ".join(f"{lang} ({eval_counts.get(lang, 0)})" for lang in pooled)
            + f": {treatment}. Label more eval posts in these languages to correct them."
        )
    all_notes += [
        f"In {language} the model never gives {' or '.join(labels)} (none of its {int(np.sum(counted.languages == language)):,} "
        f"posts here and none of its eval posts has it as the most likely label): no correction recovers a label "
        f"the model never gives, so the share of {' and '.join(labels)} there cannot be trusted. Label more "
        f"{language} posts (eval and training) and retrain."
        for language, labels in never_predicted(counted, evals).items()
    ]
    return Findings(
        version_id, list(group_by), list(methods), groups, eval_counts, min_eval, fallback, all_notes
    )


@dataclass(frozen=True)
class Inputs:
    """What compute_findings needs, read in one transaction (the bootstrap then runs outside it)."""

    counted: Counted
    evals: EvalPosts
    version_id: int
    notes: list[str]

    def fingerprint(self) -> str:
        """Changes when anything the findings depend on changes (a relabelled eval post, a new group)."""
        digest = hashlib.sha1(str(self.version_id).encode(), usedforsecurity=False)
        for array in (
            self.evals.gold,
            self.evals.probabilities,
            self.evals.languages,
            self.counted.groups,
            self.counted.languages,
            self.counted.probabilities,
        ):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr(self.counted.group_keys).encode())
        return digest.hexdigest()


def project_inputs(
    session: Session,
    project: Project,
    group_by: Sequence[str],
    *,
    by: Actor,
    version_id: int | None = None,
    input_paths: Sequence[Path] = (),
    lang_col: str | None = None,
) -> Inputs:
    """The posts to count (the pool, or files of probabilities) and the version's eval posts."""
    require_role(by, RESEARCHERS, "see findings")
    if input_paths:
        read = file_counted(input_paths, group_by, lang_col)
        counted = read.counted
        version = file_version(session, project, read.versions, version_id)
        evals, notes = eval_posts_of(session, project, version)
        if read.eval_rows:
            notes.append(f"{read.eval_rows:,} rows of the eval split were left out of the counts.")
    else:
        version = ready_version(session, project, version_id)
        evals, notes = eval_posts_of(session, project, version)
        counted = pool_counted(session, project, version, group_by)
    return Inputs(counted, evals, version.id, notes)


def project_findings(
    session: Session,
    project: Project,
    group_by: Sequence[str],
    *,
    by: Actor,
    version_id: int | None = None,
    **options: Any,
) -> Findings:
    """Shares of the project's pool, corrected with the version's eval errors."""
    inputs = project_inputs(session, project, group_by, by=by, version_id=version_id)
    return compute_findings(
        inputs.counted, inputs.evals, inputs.version_id, group_by, notes=inputs.notes, **options
    )


def errors_source(group: GroupShares, fallback: str) -> str:
    """'language' (corrected with its languages' own eval errors), 'raw' or 'pooled' (too few eval posts: the
    fallback), or 'mixed' (some languages of the group each way)."""
    if not group.pooled_languages:
        return "language"
    return fallback if set(group.pooled_languages) == set(group.languages) else "mixed"


def table_rows(findings: Findings) -> list[dict[str, Any]]:
    """One row per group, scope, label and method: the share with its 95% interval (long format)."""
    rows: list[dict[str, Any]] = []
    for group in findings.groups:
        key: dict[str, Any] = dict(zip(findings.group_by, group.key, strict=True))
        eval_posts = sum(findings.eval_posts.get(lang, 0) for lang in group.languages)
        for scope, labels in SCOPES.items():
            for method in findings.methods:
                shares = scoped(group.point[method], scope)
                low, high = group.interval(method, scope)
                for i, label in enumerate(labels):
                    rows.append(
                        key
                        | {
                            "scope": scope,
                            "label": label,
                            "method": method,
                            "share": _round(shares[i]),
                            "ci_low": _round(low[i]),
                            "ci_high": _round(high[i]),
                            "posts": group.posts,
                            "eval_posts": eval_posts,
                            "errors": errors_source(group, findings.fallback),
                        }
                    )
    return rows


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)
