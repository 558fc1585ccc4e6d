"""The `negtune` dispatcher: every command answers a usage mistake with one line and exit 2."""
from __future__ import annotations

import pytest

from negtune.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_flag_is_one_line(command, capsys, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name_or_path: x}\n")
    first, last = {"export": (["lm-eval"], ["--out", str(tmp_path / "x")]),  # export: format first
                   "compare": ([str(recipe)], [])}.get(command, ([], []))  # compare: two inputs
    assert main([command, *first, str(recipe), *last, "--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unrecognized arguments: --no-such-flag" in err[0], err


def test_unknown_command_is_one_line(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command 'trian'" in err[0]
