"""``negtune compare A B``: is B's difference from A real? A paired comparison on the same items.

    negtune compare A B [--out DIR] [--resamples N] [--seed S]

A and B are each a results JSON (``negtune eval --out``), a run directory (its last
evaluated checkpoint: the highest ``RUN_DIR/eval/step-N.json``, or ``eval/base.json`` in a run
without checkpoints) or ``RUN_DIR:step-N`` / ``RUN_DIR:base``. For every task and prompt
variant it gives the accuracy difference B − A with a paired-bootstrap 95% interval and the
exact McNemar p-value over the same items; for ``mean``, ``both_correct`` and ``flip_rate``
the difference with its interval (and McNemar for the two binary ones); and the macro
numbers (stratified paired bootstrap). Writes ``DIR/compare.md`` and ``DIR/compare.csv``
(default ``./compare``) and prints the markdown.

Why it refuses different item sets: a paired test is only valid when both models answered
the same items. Each results file records, per task and variant, every item's id and a hash
of its prompt, options and gold set; any difference (another item, prompt or option) is a
one-line error, and so is a results file written before those records existed.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from negtune.errors import ArgParser, UserError
from negtune.results import Results, format_metric

COLUMNS = ("task", "metric", "a", "b", "diff", "ci_low", "ci_high", "b01", "b10", "p_mcnemar", "n")
_STEP = re.compile(r"^step-(\d+)$")


@dataclass
class CompareRow:
    """One line of the comparison: B − A for one metric of one task (or ``macro``)."""

    task: str
    metric: str  # a variant's name (its accuracy), or mean / both_correct / flip_rate
    a: float
    b: float
    diff: float
    ci: Optional[tuple[float, float]]
    n: int
    b01: Optional[int] = None  # A wrong (or not flipped), B right (or flipped)
    b10: Optional[int] = None
    p_value: Optional[float] = None


# --------------------------------------------------------------------------- inputs


def _step_file(run: Path, name: str, spec: str) -> Path:
    if name != "base":
        m = _STEP.match(name)
        if m is None:
            raise UserError(f"{spec}: {name!r} is not a checkpoint name (step-N or base)")
        name = f"step-{int(m.group(1)):06d}"
    path = run / "eval" / f"{name}.json"
    if not path.is_file():
        raise UserError(f"{spec}: {path} does not exist (run `negtune eval {run}` first)")
    return path


def _last_evaluated(run: Path, spec: str) -> Path:
    from negtune.training.checkpoint import list_checkpoints

    steps = sorted((int(m.group(1)), p) for p in (run / "eval").glob("step-*.json") if (m := _STEP.match(p.stem)))
    checkpoints = list_checkpoints(run)
    if checkpoints and (not steps or steps[-1][0] < int(_STEP.match(checkpoints[-1].name).group(1))):
        raise UserError(f"{spec}: the last checkpoint {checkpoints[-1].name} is not evaluated "
                        f"(run `negtune eval {run}` first)")
    if steps:
        return steps[-1][1]
    if (run / "eval" / "base.json").is_file():
        return run / "eval" / "base.json"
    raise UserError(f"{spec}: no results in {run / 'eval'} (run `negtune eval {run}` first)")


def resolve(spec: str) -> Path:
    """The results file named by a file path, a run directory or ``RUN_DIR:step-N``."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        return _last_evaluated(path, spec)
    run, sep, name = spec.rpartition(":")
    if sep and Path(run).is_dir():
        return _step_file(Path(run), name, spec)
    raise UserError(f"{spec}: no such results file, run directory or RUN_DIR:step-N")


def label_of(results: Results, path: Path) -> str:
    """How a compared model is named: RUN:checkpoint, else its label or file name."""
    if results.run and results.checkpoint:
        return f"{Path(results.run).name}:{results.checkpoint}"
    return str(results.label or path.stem)


# --------------------------------------------------------------------------- pairing


def check_same_items(a: Results, a_name: str, b: Results, b_name: str) -> None:
    """Refuse (one line) unless A and B hold per-item records of exactly the same items."""
    for res, name in ((a, a_name), (b, b_name)):
        for task, t in res.tasks.items():
            if not t.items:
                raise UserError(f"{name}: task {task}: no per-item records (written by an older negtune); "
                                f"evaluate it again with `negtune eval` to compare it")
    if set(a.tasks) != set(b.tasks):
        only_a, only_b = sorted(set(a.tasks) - set(b.tasks)), sorted(set(b.tasks) - set(a.tasks))
        raise UserError(f"{b_name}: different tasks than {a_name} (only in A: {', '.join(only_a) or '-'}; "
                        f"only in B: {', '.join(only_b) or '-'}); compare needs the same items")
    for task in sorted(a.tasks):
        problem = task_mismatch(a, b, task)
        if problem:
            raise UserError(f"{b_name}: task {task}, {problem} (A: {a_name}); compare needs the same items")


def task_mismatch(a: Results, b: Results, task: str) -> Optional[str]:
    """Why A's and B's records of ``task`` are not the same items (None when they are)."""
    ia, ib = a.tasks[task].items, b.tasks[task].items
    if not ia or not ib:
        return "no per-item records"
    if set(ia) != set(ib):
        return f"other variants (B: {sorted(ib)}, A: {sorted(ia)})"
    for variant in sorted(ia):
        ha = dict(zip(ia[variant].ids, ia[variant].item_hash))
        hb = dict(zip(ib[variant].ids, ib[variant].item_hash))
        if set(ha) != set(hb):
            odd = sorted(set(ha) ^ set(hb))
            return f"{variant}: {len(odd)} item ids are not in both files (e.g. {odd[0]!r})"
        differ = [i for i in sorted(ha) if ha[i] != hb[i]]
        if differ:
            return f"{variant}: item {differ[0]!r} ({len(differ)} in all) has another prompt, options or gold set"
    return None


def _variant_correct(res: Results, task: str, variant: str) -> np.ndarray:
    rec = res.tasks[task].items[variant]
    order = sorted(range(len(rec.ids)), key=lambda k: rec.ids[k])
    return np.array([rec.correct[k] for k in order], dtype=bool)


def _mean_stat(o: np.ndarray, g: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(o, axis=-1) + np.nanmean(g, axis=-1)) / 2


def _row(task: str, metric: str, cmp: Any) -> CompareRow:
    return CompareRow(task=task, metric=metric, a=cmp.a, b=cmp.b, diff=cmp.diff,
                      ci=cmp.interval.as_tuple() if cmp.interval is not None else None, n=cmp.n_items,
                      b01=cmp.b01, b10=cmp.b10, p_value=cmp.p_value)


def compare_results(a: Results, b: Results, *, resamples: int = 2000, seed: int = 0,
                    metrics: Optional[tuple[str, ...]] = None, macro: bool = True) -> list[CompareRow]:
    """B − A per task and metric, then macro (same items assumed: ``check_same_items``).

    Every task draws from ``task_seed(seed, task)``, the stream of the results' own intervals.
    ``metrics`` restricts the rows (e.g. ``("flip_rate", "both_correct")`` for the reading gain);
    ``macro=False`` leaves out the macro rows.
    """
    from negtune.evaluation.comparisons import compare_binary, compare_macro, compare_metric
    from negtune.evaluation.metrics import PAIR_A, PAIR_B, outcome_arrays
    from negtune.evaluation.stats import task_seed

    def wanted(metric: str) -> bool:
        return metrics is None or metric in metrics

    rows: list[CompareRow] = []
    per_a, per_b = {}, {}
    for task in sorted(a.tasks):
        s = task_seed(seed, task)
        kw = {"resamples": resamples, "seed": s}
        variants = sorted(a.tasks[task].items, key=lambda v: (v not in (PAIR_A, PAIR_B), v != PAIR_A, v))
        for variant in variants:
            if wanted(variant):
                rows.append(_row(task, variant, compare_binary(_variant_correct(a, task, variant),
                                                               _variant_correct(b, task, variant), **kw)))
        xa, xb = outcome_arrays(a.tasks[task].items), outcome_arrays(b.tasks[task].items)
        if xa is None or xb is None:
            continue
        per_a[task], per_b[task] = xa, xb
        if "flipped" not in xa:
            continue
        paired = ~np.isnan(xa["flipped"])
        if wanted("mean"):
            rows.append(_row(task, "mean", compare_metric(_mean_stat, (xa[PAIR_A], xa[PAIR_B]),
                                                          (xb[PAIR_A], xb[PAIR_B]), **kw)))
        if wanted("both_correct"):
            both_a = (xa[PAIR_A] * xa[PAIR_B])[paired] == 1
            both_b = (xb[PAIR_A] * xb[PAIR_B])[paired] == 1
            rows.append(_row(task, "both_correct", compare_binary(both_a, both_b, **kw)))
        if wanted("flip_rate"):
            rows.append(_row(task, "flip_rate", compare_binary(xa["flipped"][paired] == 1,
                                                               xb["flipped"][paired] == 1, **kw)))
    if per_a and macro:
        names = {"original_acc": PAIR_A, "negated_acc": PAIR_B}
        rows += [_row("macro", names.get(k, k), c) for k, c in compare_macro(per_a, per_b, resamples=resamples,
                                                                             seed=seed).items()
                 if wanted(names.get(k, k))]
    return rows


# --------------------------------------------------------------------------- output


def _p(value: Optional[float], for_csv: bool) -> str:
    if value is None:
        return "" if for_csv else "-"
    return repr(value) if for_csv else (f"{value:.3g}" if value >= 1e-4 else "<1e-4")


def _signed(value: float, for_csv: bool) -> str:
    return f"{value:.6f}" if for_csv else f"{value:+.3f}"


def render_markdown(rows: list[CompareRow], a_label: str, b_label: str) -> str:
    out = [f"# B − A: B = {b_label}, A = {a_label}", "",
           "| task | metric | A | B | B − A | 95% CI | B>A | A>B | McNemar p | n |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"[{r.ci[0]:+.3f}, {r.ci[1]:+.3f}]" if r.ci else "-"
        out.append(f"| {r.task} | {r.metric} | {format_metric(r.a)} | {format_metric(r.b)} | {_signed(r.diff, False)} "
                   f"| {ci} | {'-' if r.b01 is None else r.b01} | {'-' if r.b10 is None else r.b10} "
                   f"| {_p(r.p_value, False)} | {r.n} |")
    out += ["", "A variant's row is its accuracy. B>A / A>B: items only B / only A got right (for flip_rate: "
                "flipped only by B / only by A); McNemar p: exact two-sided test on those discordant items. "
                "95% CI: paired bootstrap over the same items (2000 resamples by default); macro: stratified "
                "over tasks.", ""]
    return "\n".join(out)


def render_csv(rows: list[CompareRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r.task, r.metric, format_metric(r.a, True), format_metric(r.b, True), _signed(r.diff, True),
                    *(("", "") if r.ci is None else (f"{r.ci[0]:.6f}", f"{r.ci[1]:.6f}")),
                    "" if r.b01 is None else r.b01, "" if r.b10 is None else r.b10, _p(r.p_value, True), r.n])
    return buf.getvalue()


def compare(a_spec: str, b_spec: str, out_dir: str | Path, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Resolve, check and compare A and B; write compare.md and compare.csv into ``out_dir``."""
    from negtune.io import check_output_dir, claim_dir, write_text

    check_output_dir(out_dir, "compare", "comparison directory")
    pa, pb = resolve(a_spec), resolve(b_spec)
    a, b = Results.read(pa), Results.read(pb)
    check_same_items(a, str(pa), b, str(pb))
    rows = compare_results(a, b, resamples=resamples, seed=seed)
    out = claim_dir(out_dir, "compare", "comparison directory")
    md = render_markdown(rows, f"{label_of(a, pa)} ({pa})", f"{label_of(b, pb)} ({pb})")
    write_text(out / "compare.csv", render_csv(rows))
    write_text(out / "compare.md", md)
    return {"rows": rows, "markdown": out / "compare.md", "csv": out / "compare.csv", "text": md}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="negtune compare", description=__doc__.split("\n\n")[0])
    p.add_argument("a", metavar="A", help="results JSON, RUN_DIR (last evaluated checkpoint) or RUN_DIR:step-N")
    p.add_argument("b", metavar="B", help="the same for B; differences are B − A")
    p.add_argument("--out", default="compare", metavar="DIR", help="where compare.md/.csv go (default ./compare)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0, as the results' intervals)")
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    if opts.resamples < 1 or opts.seed < 0:
        raise UserError("negtune compare: --resamples must be >= 1 and --seed >= 0")
    res = compare(opts.a, opts.b, opts.out, resamples=opts.resamples, seed=opts.seed)
    print(res["text"], end="")
    print(f"wrote {res['markdown']}, {res['csv']}")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
