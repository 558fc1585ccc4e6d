"""negtune_paired: an ``evaluate`` metric for negated prompts (loaded by path, works offline).

    import evaluate
    from negtune.evaluation.hf_metric import metric_path

    paired = evaluate.load(metric_path())                 # one task
    paired = evaluate.load(metric_path(), "multi_task")   # rows carry `tasks`; macro over tasks

This script only declares the inputs for ``evaluate``; the numbers come from
``negtune.evaluation.hf_metric.paired.paired_metrics``, i.e. from the code behind
``negtune eval`` (see that module for the definitions).
"""
import datasets
import evaluate

from negtune.evaluation.hf_metric.paired import option_rows, paired_metrics

_DESCRIPTION = """\
Accuracy of the same items under the original and the negated prompt (Jang et al., "Can Large
Language Models Truly Understand Prompts? A Case Study with Negated Prompts"), their mean,
both_correct (right under both prompts), flip_rate (the picked option changes) and
instruction_free_agreement, with stratified-bootstrap 95% intervals: the numbers `negtune eval`
reports. Rows are (item, prompt variant); the two rows of an item share its id.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: the picked option of each row, as an index (int) or as the option's text (str).
    references: the correct option(s) of each row in the same form: one value or a list
        (a prediction in the list is correct).
    ids: the item id of each row; an item's original and negated rows share it.
    variants: "original", "negated" or "instruction_free" per row.
    tasks: (config "multi_task" only) the task of each row.
    intervals: add <metric>_ci_low / <metric>_ci_high (default True).
    resamples, seed, level: bootstrap settings (default 2000, 0, 0.95).
Returns:
    original_acc, negated_acc, mean, both_correct, flip_rate, instruction_free_agreement (when
    defined), n_pairs, n_tasks, the intervals, and with several tasks <task>/<metric>.
Examples:
    >>> paired = evaluate.load(metric_path())
    >>> paired.compute(predictions=[0, 1], references=[[0], [1, 2]], ids=["q1", "q1"],
    ...                variants=["original", "negated"], intervals=False)["mean"]
    1.0
"""

_CITATION = """\
@inproceedings{jang2023negated,
  title={Can Large Language Models Truly Understand Prompts? A Case Study with Negated Prompts},
  author={Jang, Joel and Ye, Seonghyeon and Seo, Minjoon},
  booktitle={Proceedings of the 1st Transfer Learning for Natural Language Processing Workshop},
  year={2023}
}
"""

CONFIGS = ("default", "multi_task")


def _features(with_tasks: bool) -> list:
    """The two stored forms, option indices or option texts (evaluate picks the one that fits
    the first row); references are always lists here, because ``add_batch`` normalises them."""
    forms = []
    for value in (datasets.Value("int64"), datasets.Value("string")):
        columns = {"predictions": value, "references": datasets.Sequence(value), "ids": datasets.Value("string"),
                   "variants": datasets.Value("string")}
        if with_tasks:
            columns["tasks"] = datasets.Value("string")
        forms.append(datasets.Features(columns))
    return forms


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class NegtunePaired(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIGS:
            raise ValueError(f"negtune_paired: config {self.config_name!r}: use one of {', '.join(CONFIGS)}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_features(self.config_name == "multi_task"),
            reference_urls=["https://arxiv.org/abs/2209.12711"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add rows; the option columns are checked and normalised first (datasets would coerce
        them silently). ``compute(predictions=..., ...)`` comes through here too.
        """
        if predictions is not None or references is not None:
            predictions, references = option_rows(predictions if predictions is not None else [],
                                                   references if references is not None else [])
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one row (checked and normalised like ``add_batch``)."""
        predictions, references = option_rows([prediction], [reference])
        return super().add(prediction=predictions[0], reference=references[0], **kwargs)

    def _compute(self, predictions, references, ids, variants, tasks=None, intervals=True, resamples=None,
                 seed=None, level=None):
        return paired_metrics(predictions, references, ids, variants, tasks, intervals=intervals,
                              resamples=resamples, seed=seed, level=level)
