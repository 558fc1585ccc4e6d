"""Model and tokenizer loading: hub id, local directory or named offline source.

Why here: the trainer, the evaluator and the demo must resolve the same names the same
way, and report an unreachable hub or a missing directory in one line instead of a
transformers traceback. PEFT/QLoRA wrapping for training lives below the loaders.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from negtune.errors import UserError
from negtune.hub import hub_offline

DTYPES = ("float32", "bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _offline_sources() -> dict[str, Any]:
    from negtune.offline_model import OFFLINE_SOURCES  # standard library only

    return OFFLINE_SOURCES


def is_named_offline_source(name: str) -> bool:
    return name in _offline_sources()


def resolve_model_path(name_or_path: str) -> str:
    """Map a recipe's ``model.name_or_path`` to what ``from_pretrained`` takes.

    Order: a named offline source (materialised on first use), an existing local
    directory, then a hub id. A path-like name that does not exist is an error here,
    not a confusing hub lookup later.
    """
    sources = _offline_sources()
    if name_or_path in sources:
        return str(sources[name_or_path].resolve())
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise UserError(f"model {name_or_path}: directory has no config.json (not a saved model)")
        return str(path)
    if path.exists():
        raise UserError(f"model {name_or_path}: is a file, expected a model directory or hub id")
    looks_like_path = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_like_path or not _HUB_ID.match(name_or_path):
        raise UserError(f"model {name_or_path}: no such directory")
    return name_or_path


def _hub_error(name: str, err: Exception) -> UserError:
    reason = "offline mode is on (HF_HUB_OFFLINE)" if hub_offline() else "the hub could not be reached or has no such model"
    return UserError(
        f"model {name}: not a local directory, and loading it from the Hugging Face hub failed: {reason} "
        f"({type(err).__name__})"
    )


def _from_pretrained(loader: Any, name_or_path: str, resolved: str, what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` with its failures turned into one-line errors.

    A local directory that fails to load is reported as such; anything else failed on the hub.
    """
    try:
        return loader.from_pretrained(resolved, local_files_only=hub_offline(), **kwargs)
    except Exception as err:  # noqa: BLE001 - truncated/garbage files raise many different types
        if Path(resolved).is_dir():
            raise UserError(f"model {name_or_path}: cannot load {what}: {first_line(err)}") from None
        if isinstance(err, (OSError, ValueError)):
            raise _hub_error(name_or_path, err) from None
        raise


def first_line(err: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, for one-line errors about files a library rejected."""
    text = (str(err).strip().splitlines() or [""])[0][:limit]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_adapter(model: Any, adapter_dir: str | Path, **kwargs: Any) -> Any:
    """``PeftModel.from_pretrained`` with a damaged adapter directory reported in one line."""
    from peft import PeftModel

    if not Path(adapter_dir, "adapter_config.json").is_file():
        raise UserError(f"adapter {adapter_dir}: no adapter_config.json there")
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), **kwargs)
    except Exception as err:  # noqa: BLE001 - garbage config or weights
        raise UserError(f"adapter {adapter_dir}: cannot load it: {first_line(err)}") from None


def torch_dtype(name: str) -> Any:
    import torch

    if name not in DTYPES:
        raise UserError(f"dtype {name!r}: use one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def load_tokenizer(name_or_path: str, revision: str | None = None) -> Any:
    """Load a tokenizer; give it a pad token (EOS) when it has none, padding on the right."""
    from transformers import AutoTokenizer

    resolved = resolve_model_path(name_or_path)
    tok = _from_pretrained(AutoTokenizer, name_or_path, resolved, "tokenizer", revision=revision)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def stale_gguf_quantization(model_dir: str | Path) -> bool:
    """True if ``model_dir/config.json`` names a GGUF quantization: stale in a model directory.

    Why: GGUF weights load only from a ``.gguf`` file (``from_pretrained(..., gguf_file=...)``);
    a directory's ``safetensors`` are plain. Yet transformers then attaches a GGUF quantizer
    (the model cannot be saved) and tools that forward the config's quantization
    (lm-evaluation-harness) fail. negtune's SmolLM2 cache before conversion version 2 was
    written this way.
    """
    import json

    path = Path(model_dir) / "config.json"
    try:
        quant = json.loads(path.read_text()).get("quantization_config") if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(quant, dict) and quant.get("quant_method") == "gguf"


def load_causal_lm(name_or_path: str, dtype: str = "float32", revision: str | None = None, **kwargs: Any) -> Any:
    """Load an ``AutoModelForCausalLM`` in ``dtype`` (fp32, bf16, fp16).

    A local directory whose config keeps a stale GGUF quantization (``stale_gguf_quantization``)
    loads as the plain model it holds, so what negtune saves from it is plain too.
    """
    from transformers import AutoModelForCausalLM

    resolved = resolve_model_path(name_or_path)
    if "config" not in kwargs and Path(resolved).is_dir() and stale_gguf_quantization(resolved):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(resolved, local_files_only=True)
        del config.quantization_config
        kwargs["config"] = config
    return _from_pretrained(AutoModelForCausalLM, name_or_path, resolved, "weights",
                            dtype=torch_dtype(dtype), revision=revision, **kwargs)


def load_seq2seq_lm(name_or_path: str, dtype: str = "float32", revision: str | None = None, **kwargs: Any) -> Any:
    """Load an ``AutoModelForSeq2SeqLM`` (T5, T0, BART) in ``dtype``."""
    from transformers import AutoModelForSeq2SeqLM

    resolved = resolve_model_path(name_or_path)
    return _from_pretrained(AutoModelForSeq2SeqLM, name_or_path, resolved, "weights",
                            dtype=torch_dtype(dtype), revision=revision, **kwargs)


def is_encoder_decoder(name_or_path: str) -> bool:
    """Whether the model's ``config.json`` says encoder-decoder (T5/T0): scored as seq2seq."""
    source = _offline_sources().get(name_or_path)
    if source is not None:
        return False
    from transformers import AutoConfig

    resolved = resolve_model_path(name_or_path)
    cfg = _from_pretrained(AutoConfig, name_or_path, resolved, "config.json")
    return bool(getattr(cfg, "is_encoder_decoder", False))


def load_for_eval(name_or_path: str, adapter: str | None = None, dtype: str = "float32",
                  device_map: str | None = None) -> tuple[Any, Any]:
    """Model (eval mode, adapter applied unmerged) and tokenizer for scoring.

    ``name_or_path`` may itself be an adapter directory (``adapter_config.json``); its base
    model is then read from the adapter config. The config picks the model class: an
    encoder-decoder (``is_encoder_decoder``, e.g. T5/T0) loads as ``AutoModelForSeq2SeqLM``,
    anything else as ``AutoModelForCausalLM``. ``device_map`` ("auto", "balanced", ...) spreads
    a model that does not fit one device over the available GPUs and the CPU (transformers'
    big-model loading, which reads a sharded checkpoint one shard at a time).
    """
    resolved = resolve_model_path(name_or_path)
    if adapter is None and Path(resolved, "adapter_config.json").is_file():
        adapter, resolved = resolved, _adapter_base(resolved)
    extra: dict[str, Any] = {"device_map": device_map} if device_map else {}
    loader = load_seq2seq_lm if is_encoder_decoder(resolved) else load_causal_lm
    model = loader(resolved, dtype=dtype, **extra)
    tok_source = adapter if adapter and Path(adapter, "tokenizer_config.json").is_file() else resolved
    tokenizer = load_tokenizer(tok_source)
    if adapter is not None:
        from negtune.peft_calls import peft_calls

        with peft_calls():
            model = load_adapter(model, adapter, is_trainable=False)
    model.eval()
    return model, tokenizer


def _adapter_base(adapter_dir: str) -> str:
    import json

    cfg = json.loads(Path(adapter_dir, "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise UserError(f"adapter {adapter_dir}: adapter_config.json names no base_model_name_or_path")
    return base


# --------------------------------------------------------------------------- training: PEFT / QLoRA

# LoRA target modules per ``config.model_type`` (attention projections; what the LoRA and
# QLoRA papers adapt at minimum). Other architectures need ``model.lora.target_modules``.
LORA_TARGETS: dict[str, list[str]] = {
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "gpt_neo": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "bloom": ["query_key_value", "dense"],
    "falcon": ["query_key_value", "dense"],
}

_NAME_HINTS = [("opt-", "opt"), ("llama", "llama"), ("mistral", "mistral"), ("qwen2", "qwen2"),
               ("smollm", "llama"), ("gpt2", "gpt2"), ("pythia", "gpt_neox"), ("gpt-neox", "gpt_neox")]


def model_type_of(name_or_path: str, revision: str | None = None, guess_offline: bool = False) -> tuple[str, bool]:
    """``(model_type, certain)`` from ``config.json`` only (no weights are read).

    With ``guess_offline`` (dry runs), a hub id whose config is not cached offline is guessed
    from its name (``certain`` False) instead of raising.
    """
    source = _offline_sources().get(name_or_path)
    if source is not None:  # named offline source: no conversion just to read a config
        source.check()
        return source.model_type, True
    from transformers import AutoConfig

    resolved = resolve_model_path(name_or_path)
    try:
        cfg = AutoConfig.from_pretrained(resolved, revision=revision, local_files_only=hub_offline())
    except (OSError, ValueError) as err:
        if Path(resolved).is_dir():
            raise UserError(f"model {name_or_path}: cannot read config.json: {err}") from None
        if guess_offline:
            low = name_or_path.lower()
            for hint, mtype in _NAME_HINTS:
                if hint in low:
                    return mtype, False
            return "unknown", False
        raise _hub_error(name_or_path, err) from None
    return str(getattr(cfg, "model_type", "unknown")), True


def lora_targets(model_type: str, lora_cfg: Any, name: str) -> list[str]:
    """The LoRA target modules: explicit ``model.lora.target_modules`` or the per-architecture table."""
    if lora_cfg.target_modules:
        return list(lora_cfg.target_modules)
    if model_type not in LORA_TARGETS:
        raise UserError(
            f"model.lora.target_modules: architecture {model_type!r} of {name} has no default LoRA targets "
            f"(known: {', '.join(sorted(LORA_TARGETS))}); list the module names explicitly"
        )
    return list(LORA_TARGETS[model_type])


def check_qlora_available() -> None:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("model.peft: qlora needs bitsandbytes (pip install 'negtune[qlora]')")


def load_for_training(model_cfg: Any, model_type: str) -> Any:
    """Load the base model for fine-tuning per ``ModelConfig``; QLoRA loads 4-bit NF4 weights
    (kept in their training layout on the CPU: ``negtune.qlora_cpu``).

    Gradient checkpointing uses ``use_reentrant=False`` (the reentrant variant breaks LoRA
    under DDP: peft #313, trl #921). Returns the (possibly PEFT-wrapped) model.
    bitsandbytes is imported for QLoRA only (``negtune.peft_calls``).
    """
    kwargs: dict[str, Any] = {}
    if model_cfg.peft == "qlora":
        check_qlora_available()
        from negtune.qlora_cpu import quantization_config

        kwargs["quantization_config"] = quantization_config(torch_dtype(model_cfg.dtype))
    model = load_causal_lm(model_cfg.name_or_path, dtype=model_cfg.dtype, revision=model_cfg.revision, **kwargs)
    if model_cfg.peft == "qlora":
        from negtune.peft_calls import peft_calls
        from negtune.qlora_cpu import keep_training_layout

        keep_training_layout(model)  # before any eval-mode forward (reference model, evaluation)
        with peft_calls(quantized=True):
            from peft import prepare_model_for_kbit_training

            # checkpointing enabled below (peft would call the deprecated transformers alias)
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if model_cfg.gradient_checkpointing:
        enable_activation_checkpointing(model, {"use_reentrant": False})
        model.config.use_cache = False
    if model_cfg.peft in ("lora", "qlora"):
        model = wrap_peft(model, model_cfg, model_type)
    return model


def enable_activation_checkpointing(model: Any, kwargs: dict[str, Any]) -> None:
    """``activation_checkpointing_enable`` (transformers >= 5), else its older name
    ``gradient_checkpointing_enable`` (deprecated in 5: a FutureWarning on every run)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def wrap_peft(model: Any, model_cfg: Any, model_type: str | None = None) -> Any:
    """Wrap ``model`` with a LoRA adapter per ``model_cfg.lora`` (targets per architecture)."""
    from negtune.peft_calls import peft_calls

    with peft_calls(quantized=model_cfg.peft == "qlora"):
        return _wrap_peft(model, model_cfg, model_type)


def _wrap_peft(model: Any, model_cfg: Any, model_type: str | None) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    mtype = model_type or getattr(model.config, "model_type", "unknown")
    lora = model_cfg.lora
    config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora_targets(mtype, lora, model_cfg.name_or_path),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. target modules not found in the model
        raise UserError(f"model.lora.target_modules: {err}") from None
