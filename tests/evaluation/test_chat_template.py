"""Chat-template scoring: the prompt is the user turn, each option the assistant's reply."""
from __future__ import annotations

import json

import pytest

from negtune.cli import main as cli_main
from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.prompting import PromptFormat, chat_messages, encode_item
from negtune.evaluation.scoring import score_instances

# ChatML, as SmolLM2/Qwen use it (shortened: no default system turn)
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
ITEM = Instance("demo", "q1", "negated", "Generate the incorrect answer. Question: Which is a fruit? Answer is",
                (" apple", " dog"), 1, (1,))


@pytest.fixture(scope="module")
def chat_tok(tiny_tokenizer):
    import copy

    tok = copy.deepcopy(tiny_tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


def own_rendering(tok, messages):
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_prompt_is_the_tokenizers_own_rendering(chat_tok, mode):
    fmt = PromptFormat(chat_template=True)
    enc = encode_item(chat_tok, ITEM, mode, None, fmt)
    rendered = own_rendering(chat_tok, [{"role": "user", "content": ITEM.prompt}])
    for (prompt, option), text in zip(enc.pairs, ITEM.options):
        seq = prompt + option
        assert seq[: len(rendered)] == rendered  # the template's tokens, no BOS added in front
        assert chat_tok.bos_token_id not in seq[:1] or rendered[0] == chat_tok.bos_token_id
        # the reply is the option without its leading space; joint scores the template's final "\n" with it
        reply = chat_tok.decode(seq[len(rendered):])
        assert reply == text.lstrip()
        assert chat_tok.decode(option) == ("\n" if mode == "joint" else "") + text.lstrip()


def test_system_prompt_and_fewshot_turns(chat_tok):
    item = Instance(ITEM.task, ITEM.source_id, ITEM.variant, ITEM.prompt, ITEM.options, 1, (1,),
                    meta={"demos": [["Generate the incorrect answer. Question: What is red? Answer is", " cat"]],
                          "demo_ids": ["d1"]})
    fmt = PromptFormat(chat_template=True, system_prompt="Answer briefly.")
    msgs = chat_messages(item, item.meta["demos"], fmt.system_prompt)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"] == "cat"
    enc = encode_item(chat_tok, item, "separate", None, fmt)
    assert enc.pairs[0][0] == own_rendering(chat_tok, msgs) and enc.n_demos == 1


def test_no_template_is_an_error(tiny_tokenizer):
    with pytest.raises(UserError, match="has no chat template"):
        encode_item(tiny_tokenizer, ITEM, "joint", None, PromptFormat(chat_template=True))


def test_smollm2_rendering_and_bos():
    """The real instruct tokenizer: its template inserts a default system turn; no BOS doubling."""
    try:
        from negtune.models import load_tokenizer

        tok = load_tokenizer("smollm2-135m-instruct")
    except UserError as err:
        pytest.skip(f"offline SmolLM2 not available: {err}")
    enc = encode_item(tok, ITEM, "joint", None, PromptFormat(chat_template=True))
    rendered = own_rendering(tok, [{"role": "user", "content": ITEM.prompt}])
    prompt, option = enc.pairs[1]
    assert (prompt + option)[: len(rendered)] == rendered
    assert tok.decode(prompt).startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert tok.decode(option) == "\ndog" and prompt.count(tok.bos_token_id) == 3  # system, user, assistant turns


def test_chat_scores_and_cli(tiny_opt_dir, chat_tok, tmp_path, capsys):
    """End to end: a tiny OPT whose saved tokenizer has a chat template; kv equals plain."""
    from negtune.models import load_for_eval

    model_dir = tmp_path / "chat-opt"
    model, _ = load_for_eval(str(tiny_opt_dir))
    model.resize_token_embeddings(len(chat_tok))
    model.save_pretrained(model_dir)
    chat_tok.save_pretrained(model_dir)
    model, tok = load_for_eval(str(model_dir))
    instances = [ITEM, Instance("demo", "q1", "original", "Generate the correct answer. Question: Which is a fruit? "
                                "Answer is", (" apple", " dog"), 0, (0,))]
    fmt = PromptFormat(chat_template=True)
    kv = score_instances(model, tok, instances, fmt=fmt, progress=False)
    plain = score_instances(model, tok, instances, fmt=fmt, method="plain", progress=False)
    assert max(abs(x.loglik - y.loglik) for a, b in zip(kv, plain) for x, y in zip(a, b)) < 1e-4
    off = score_instances(model, tok, instances, progress=False)
    assert all(abs(x.loglik - y.loglik) > 1e-3 for a, b in zip(kv, off) for x, y in zip(a, b))
    csv = tmp_path / "toy_2.csv"
    csv.write_text("sample_id,prompt,classes,answer_index\n"
                   "0,\"Question: Which is a fruit? Answer is\",\"[' apple', ' dog']\",0\n")
    out = tmp_path / "r.json"
    assert cli_main(["eval", "--model", str(model_dir), "--csv", str(csv), "--chat-template",
                     "--system-prompt", "Be brief: answer.", "--quiet", "--out", str(out)]) == 0
    p = json.loads(out.read_text())["prompting"]
    assert p["chat_template"] is True and p["system_prompt"] == "Be brief: answer."
    # a model without a template: one line, exit 2, before any weights are loaded
    capsys.readouterr()
    assert cli_main(["eval", "--model", str(tiny_opt_dir), "--csv", str(csv), "--chat-template"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its tokenizer has no chat template" in err[0]
