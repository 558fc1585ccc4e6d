from negtune.tokenization import encode_pair, truncate_left
import pytest
from negtune.errors import UserError


def test_joint_moves_trailing_space_and_keeps_bos(tiny_tokenizer):
    p, o = encode_pair(tiny_tokenizer, "Question: capital of France? Answer is ", "Paris")
    p2, o2 = encode_pair(tiny_tokenizer, "Question: capital of France? Answer is", " Paris")
    assert (p, o) == (p2, o2)
    assert p[0] == tiny_tokenizer.bos_token_id
    assert tiny_tokenizer.decode(o) == " Paris"
    # the scored sequence equals the joint encoding of the whole text
    whole = tiny_tokenizer("Question: capital of France? Answer is Paris")["input_ids"]
    assert p + o == whole


def test_separate_encodes_option_alone(tiny_tokenizer):
    p, o = encode_pair(tiny_tokenizer, "Answer is", " Paris", mode="separate")
    assert o == tiny_tokenizer(" Paris", add_special_tokens=False)["input_ids"]
    assert bos_free(o, tiny_tokenizer)


def bos_free(ids, tok):
    return tok.bos_token_id not in ids


def test_truncate_left_keeps_bos_and_option():
    assert truncate_left([2, 10, 11, 12, 13], [7, 8], 5, bos_token_id=2) == [2, 12, 13]
    assert truncate_left([10, 11], [7], None) == [10, 11]
    with pytest.raises(UserError):
        truncate_left([2, 10], [1, 2, 3, 4], 3, bos_token_id=2)


def test_encode_truncated_keeps_option_and_bos(tiny_tokenizer):
    from negtune.tokenization import encode_truncated

    p, o = encode_truncated(tiny_tokenizer, "Question: capital of France? Answer is", " Paris", max_length=6)
    assert len(p) + len(o) == 6 and p[0] == tiny_tokenizer.bos_token_id
    assert tiny_tokenizer.decode(o) == " Paris"
