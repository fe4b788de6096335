"""What a retrain job trains: trainer/config.py's resolve_backend decides a project's "auto" on the worker."""

import pytest

from db.models import Backend
from trainer.config import PACKAGED_GEMMA, ModelSettings, resolve_backend

PACKAGED = ModelSettings(base_model=PACKAGED_GEMMA)
LLAMA = ModelSettings(base_model="meta-llama/Llama-3.2-3B-Instruct")


def test_auto_trains_the_encoder_on_a_cpu_worker_with_the_packaged_gemma() -> None:
    assert resolve_backend("auto", PACKAGED, cuda=False) == Backend.ENCODER


def test_auto_trains_the_studys_lora_model_on_a_gpu_or_a_named_base_model() -> None:
    assert resolve_backend("auto", PACKAGED, cuda=True) == Backend.LORA
    assert resolve_backend("auto", LLAMA, cuda=False) == Backend.LORA
    assert resolve_backend("auto", LLAMA, cuda=True) == Backend.LORA


@pytest.mark.parametrize("cuda", [False, True])
def test_an_explicit_choice_is_kept_whatever_the_hardware(cuda: bool) -> None:
    assert resolve_backend("lora", PACKAGED, cuda) == Backend.LORA
    assert resolve_backend("encoder", LLAMA, cuda) == Backend.ENCODER


def test_an_unknown_choice_is_refused_with_the_names_that_work() -> None:
    with pytest.raises(ValueError, match="use auto, lora or encoder"):
        resolve_backend("fast", PACKAGED, cuda=False)
