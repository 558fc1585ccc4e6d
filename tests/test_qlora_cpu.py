"""QLoRA on the CPU (``negtune.qlora_cpu``): 4-bit layers stay in their training layout, and
layer sizes bitsandbytes' CPU kernel gets wrong are refused at recipe check.

The subprocess runs (kl_anchor with its reference model, epoch-end evaluation) are in
tests/training/test_run.py; these are in-process checks of the two mechanisms.
"""
from pathlib import Path

import pytest
import torch

pytest.importorskip("bitsandbytes")

import negtune.models  # noqa: E402
from negtune.cli import main as cli_main  # noqa: E402
from negtune.config import LoraConfig, ModelConfig  # noqa: E402
from negtune.qlora_cpu import BLOCKSIZE, cpu_block_problem, quantized_layers  # noqa: E402


def tiny_llama(path: Path, hidden: int) -> Path:
    """Llama layers have no bias: after a repack their gradients were silently wrong (no crash)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                 max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                                 bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_quantized_layers_follow_transformers(tmp_path):
    from transformers import AutoConfig

    from helpers import build_tiny_opt

    opt = AutoConfig.from_pretrained(build_tiny_opt(tmp_path / "opt", hidden=64))
    names = [n for n, _ in quantized_layers(opt)]
    assert len(names) == 12 and "lm_head" not in names  # 2 layers x (q, k, v, out, fc1, fc2)
    assert dict(quantized_layers(opt))["model.decoder.layers.0.fc2"] == 128  # ffn_dim = 2 x hidden
    assert cpu_block_problem(opt) is None
    small = AutoConfig.from_pretrained(build_tiny_opt(tmp_path / "opt32", hidden=32))
    assert cpu_block_problem(small).startswith(f"layer model.decoder.layers.0.self_attn.k_proj has 32 input "
                                               f"features, not a multiple of the 4-bit block size {BLOCKSIZE}")


def test_recipe_check_refuses_layers_the_cpu_kernel_gets_wrong(tmp_path, tiny_opt_dir, monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(negtune.models, "load_for_training", boom)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"output_dir: {tmp_path / 'run'}\nmodel: {{name_or_path: {tiny_opt_dir}, peft: qlora}}\n"
                      "train: {trackers: []}\n")
    assert cli_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{recipe}: model.peft: qlora on the CPU: layer model.decoder.layers.0.self_attn.k_proj has 32" in err
    assert err.endswith("use peft: lora or a GPU")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_eval_mode_forward_leaves_training_exact(tmp_path):
    """A reference/evaluation forward (eval, no_grad) must not change what training computes."""
    from negtune.losses import LossContext, resolve_loss
    from negtune.models import load_for_training

    path = tiny_llama(tmp_path / "llama", hidden=64)
    cfg = ModelConfig(name_or_path=str(path), peft="qlora", lora=LoraConfig(r=4, dropout=0.0))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (2, 12), generator=g)
    labels = ids.clone()
    labels[:, :6] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
             "n_target_tokens": (labels != -100).sum()}
    ce = resolve_loss({"name": "ce"})

    def lora_grads(evaluate_first: bool) -> tuple[dict, float]:
        torch.manual_seed(0)
        model = load_for_training(cfg, "llama")
        model.train()
        gap = 0.0
        if evaluate_first:  # what the trainer's reference logits do (adapter off, eval, no_grad)
            with torch.no_grad():
                policy = model(input_ids=ids).logits
            model.eval()
            with torch.no_grad(), model.disable_adapter():
                reference = model(input_ids=ids).logits
            model.train()
            gap = (reference - policy).abs().max().item()
        ce(model, batch, LossContext()).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, gap

    (clean, _), (after_eval, gap) = lora_grads(False), lora_grads(True)
    assert clean.keys() == after_eval.keys() and clean
    for name in clean:  # without the fix: wrong gradients, silently (no bias, so no crash)
        assert torch.equal(clean[name], after_eval[name]), name
    assert gap == 0.0  # adapter B = 0: the reference is the policy, on the same fp32 path (was ~5e-3)
