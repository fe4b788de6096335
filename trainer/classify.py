"""`lingualoop classify`: apply a ready model version to corpus files that are not in the project, on Ray Data.

The plan: stage the inputs (trainer/archive.py) into row groups of `unit_rows` posts; each row group is a unit
whose output shard `part-FFFFF-GGGGGG.parquet` is written under a temporary name and renamed, so a shard exists
whole or not at all. A run scores the units whose shard is missing, through a pool of Ray actors that each load
the model once (trainer/version_scorers.py) and then read, score and write one unit per call. Rerunning the command
after Ctrl-C, SIGKILL or a lost node therefore finishes what is missing and writes no row twice.

Reading and writing happen inside the actor call (trainer/distributed.py), a row group at a time: no separate
Ray read or write tasks wait for CPUs that the actors hold, and memory holds a few row groups, never the corpus.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from core.files import atomic_path, atomic_write_text
from core.labels import LABELS
from core.languages import LanguageDetector
from core.progress import CountProgress, Log
from trainer.archive import (
    ClassifyError,
    Columns,
    StagedFile,
    find_inputs,
    header_of,
    load_record,
    resolve_columns,
    save_record,
    stage_file,
)
from trainer.config import WorkerSettings
from trainer.distributed import RayOptions, plain, plan_actors, ray_cluster, run_until_done, set_threads
from trainer.failpoints import failpoint
from trainer.version_scorers import Scorer, VersionSpec, open_scorer

RUN_FILE = "run.json"
MANIFEST_FILE = "manifest.json"
STAGING = ".staging"
Progress = CountProgress
"""Called as (posts scored, posts in all), including the posts scored by earlier runs."""


@dataclass(frozen=True)
class ClassifyRequest:
    inputs: tuple[Path, ...]
    out: Path
    columns: Columns = field(default_factory=Columns)
    unit_rows: int = 2_000
    """Posts per unit of work (row group, output shard)."""


@dataclass(frozen=True)
class Unit:
    file: int
    group: int
    rows: int
    staged: str
    shard: str


@dataclass
class Manifest:
    model_version: int
    backend: str
    base_model: str
    out: str
    inputs: list[dict[str, Any]]
    columns: dict[str, Any]
    rows_scored: int = 0
    shards: int = 0
    unreadable: int = 0
    empty: int = 0
    timings: dict[str, Any] = field(default_factory=dict)


def shard_name(file: int, group: int) -> str:
    return f"part-{file:05d}-{group:06d}.parquet"


# --- Planning ---------------------------------------------------------------------------------------------------


def _check_run(request: ClassifyRequest, spec: VersionSpec, files: Sequence[Path]) -> None:
    """The output folder belongs to one run: the same version, inputs and options, so that a rerun resumes it."""
    identity = {
        "model_version": spec.id,
        "inputs": [str(p) for p in files],
        "columns": asdict(request.columns) | {"keep": list(request.columns.keep)},
        "unit_rows": request.unit_rows,
    }
    path = request.out / RUN_FILE
    if path.exists():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        if earlier != identity:
            changed = ", ".join(k for k in identity if identity[k] != earlier.get(k))
            raise ClassifyError(
                f"{request.out} holds a run with a different {changed}: rerun it as it was, "
                "or choose a new --out folder."
            )
        return
    if request.out.exists() and any(request.out.glob("part-*.parquet")):
        raise ClassifyError(f"{request.out} already holds shards of another run: choose a new --out folder.")
    request.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(identity, indent=1))


def stage(request: ClassifyRequest, files: Sequence[Path], log: Log) -> list[StagedFile]:
    """Stage each input once; a rerun reuses staged files whose source is unchanged."""
    folder = request.out / STAGING
    folder.mkdir(parents=True, exist_ok=True)
    staged: list[StagedFile] = []
    names = [p.stem for p in files]
    for index, path in enumerate(files):
        record = load_record(index, folder)
        if record is not None and record.same_source(path):
            staged.append(record)
            continue
        if any(request.out.glob(f"part-{index:05d}-*.parquet")):
            raise ClassifyError(
                f"{path.name} changed after this run began scoring it: choose a new --out folder."
            )
        resolved = resolve_columns(header_of(path), request.columns, path.name)
        prefix = path.stem if names.count(path.stem) == 1 else f"{path.parent.name}/{path.stem}"
        log(f"reading {path.name}")
        record = stage_file(index, path, resolved, folder, request.unit_rows, prefix)
        save_record(record, folder)
        staged.append(record)
    return staged


def units_of(staged: Sequence[StagedFile], out: Path) -> list[Unit]:
    units = []
    for record in staged:
        if record.rows == 0:
            continue
        metadata = pq.ParquetFile(record.staged).metadata
        for group in range(metadata.num_row_groups):
            units.append(
                Unit(
                    file=record.index,
                    group=group,
                    rows=metadata.row_group(group).num_rows,
                    staged=record.staged,
                    shard=str(out / shard_name(record.index, group)),
                )
            )
    return units


def check_inputs(request: ClassifyRequest) -> list[Path]:
    """Everything that can be checked before any work starts: files exist, are readable, have the columns."""
    if request.unit_rows < 1:
        raise ClassifyError("--unit-rows must be at least 1.")
    files = find_inputs(request.inputs)
    for path in files:
        resolve_columns(header_of(path), request.columns, path.name)
    return files


# --- Scoring one unit (inside an actor) -------------------------------------------------------------------------


class LanguageGuess:
    """Import's detector (core.languages: ISO 639-1 codes only), loaded on first use: for rows whose file gave
    no language."""

    def __init__(self) -> None:
        self._detector: LanguageDetector | None = None

    def __call__(self, text: str) -> str:
        if self._detector is None:
            self._detector = LanguageDetector()
        return self._detector.detect(text).language


def score_unit(unit: Unit, scorer: Scorer, version_id: int, guess: LanguageGuess) -> int:
    """Read the unit's row group, score it, write its shard atomically; returns the rows written."""
    table = pq.ParquetFile(unit.staged).read_row_group(unit.group)
    texts = table.column("text").to_pylist()
    languages = [
        lang or guess(text) for lang, text in zip(table.column("language").to_pylist(), texts, strict=True)
    ]
    probabilities = scorer.score(texts, languages).astype(np.float32)
    columns: dict[str, Any] = {"id": table.column("id"), "language": pa.array(languages, pa.string())}
    for index, label in enumerate(LABELS):
        columns[f"p_{label}"] = pa.array(probabilities[:, index], pa.float32())
    columns["label"] = pa.array([LABELS[i] for i in probabilities.argmax(axis=1)], pa.string())
    columns["confidence"] = pa.array(probabilities.max(axis=1), pa.float32())
    columns["model_version"] = pa.array(np.full(len(texts), version_id, dtype=np.int64))
    for name in table.column_names[3:]:  # the kept columns, after id, language and text
        columns[name] = table.column(name)
    # A name of its own: a retried unit may write the same shard from two actors at once.
    with atomic_path(Path(unit.shard), unique=True) as partial:
        pq.write_table(pa.table(columns), partial)
        failpoint("classify-shard")  # written, not yet renamed: a crash here must not leave a shard
    return len(texts)


class UnitScorer:
    """A Ray Data actor: loads the model version once, then scores one unit per call."""

    def __init__(self, spec: VersionSpec, settings: WorkerSettings, threads: int) -> None:
        set_threads(threads)
        self.version_id = spec.id
        self.scorer = open_scorer(spec, settings, log=lambda _message: None)
        self.guess = LanguageGuess()

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        rows = []
        for i in range(len(batch["shard"])):
            unit = Unit(**{name: plain(batch[name][i]) for name in batch})
            rows.append(score_unit(unit, self.scorer, self.version_id, self.guess))
        return {"shard": batch["shard"], "rows": np.array(rows)}


# --- The command ------------------------------------------------------------------------------------------------


def done_shards(out: Path) -> set[str]:
    return {str(p) for p in out.glob("part-*.parquet")}


def run_classify(
    request: ClassifyRequest,
    spec: VersionSpec,
    settings: WorkerSettings,
    ray_options: RayOptions,
    *,
    progress: Progress = lambda _done, _total: None,
    log: Log = lambda message: print(message, flush=True),
) -> Manifest:
    """Classify the inputs into `request.out`; resumes a run that stopped. Returns the manifest it wrote."""
    started = time.perf_counter()
    files = check_inputs(request)
    _check_run(request, spec, files)
    staged = stage(request, files, log)
    staging_seconds = time.perf_counter() - started
    units = units_of(staged, request.out)
    total = sum(unit.rows for unit in units)
    scored_now, attempts = 0, 0
    scoring_started = time.perf_counter()
    done_before = done_shards(request.out)
    progress(sum(unit.rows for unit in units if unit.shard in done_before), total)
    if any(unit.shard not in done_before for unit in units):  # Ray starts only when there is work left
        with ray_cluster(ray_options.address) as resources:
            plan = plan_actors(resources, ray_options)
            remaining = total

            def pending() -> list[dict[str, Any]]:
                nonlocal remaining
                done = done_shards(request.out)
                missing = [unit for unit in units if unit.shard not in done]
                remaining = sum(unit.rows for unit in missing)
                progress(total - remaining, total)
                return [asdict(unit) for unit in missing]

            def landed(result: dict[str, Any]) -> None:
                nonlocal scored_now, remaining
                scored_now, remaining = scored_now + int(result["rows"]), remaining - int(result["rows"])
                progress(total - remaining, total)
                failpoint("classify-driver")  # a shard landed, others are in flight: the driver killed now

            if pending():
                log(f"scoring {remaining:,} posts with {plan.describe()}")
            arguments = {"spec": spec, "settings": settings}
            attempts = run_until_done(pending, UnitScorer, arguments, plan, landed, log)
    _remove_partials(request.out)
    scoring_seconds = time.perf_counter() - scoring_started
    manifest = Manifest(
        model_version=spec.id,
        backend=spec.backend,
        base_model=spec.base_model,
        out=str(request.out),
        inputs=[
            {
                "path": record.source,
                "rows": record.rows,
                "unreadable": record.unreadable,
                "empty": record.empty,
                "problems": record.problems,
            }
            for record in staged
        ],
        columns=asdict(request.columns) | {"keep": list(request.columns.keep)},
        rows_scored=total,
        shards=len(units),
        unreadable=sum(record.unreadable for record in staged),
        empty=sum(record.empty for record in staged),
        timings={
            "staging_seconds": round(staging_seconds, 2),
            "scoring_seconds": round(scoring_seconds, 2),
            "scored_this_run": scored_now,
            "posts_per_second_this_run": round(scored_now / scoring_seconds, 1) if scored_now else None,
            "attempts": attempts,
        },
    )
    _write_json(request.out / MANIFEST_FILE, asdict(manifest))
    return manifest


def _remove_partials(out: Path) -> None:
    for partial in out.glob(".part-*.partial"):
        partial.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))
