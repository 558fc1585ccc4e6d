"""Task registry: one entry per task holds everything about it.

Why one entry per task: a task is data, not code paths scattered through the builder (the
way lm-evaluation-harness keeps a task in one YAML file). An entry names

* its Hugging Face source (id, config, revision, split aliases) and the fields a row in that
  source's own schema must have;
* ``parse``: one row -> an ``Item`` (an id, the named text fields the templates use, and
  either the options with the correct index, or the acceptable answers);
* ``variants``: its prompt templates (``negtune.data.variants``): original, negated,
  instruction-free;
* ``complete_options``: for sources that give answers rather than options (LAMBADA, the QA
  tasks), the seeded rule that adds distractors (``negtune.data.options``); ``answer_pool``
  says the rule draws from the training answers minus the evaluation answers (the paper's
  QA rule), which the builder then computes;
* ``paper_files``: the names of the paper's released evaluation CSVs (original, negated),
  which ``eval.paper_csv_dir`` looks for.

Hub sources record the split sizes their dataset cards state (a build warns when a split it
reads has another size) and the splits whose labels are hidden (never read as gold).

The builder (``negtune.data.build``) calls these hooks and never branches on a task's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from negtune.data import parsers as P
from negtune.data.instances import Item
from negtune.data.options import OptionRules, complete_lambada, complete_qa
from negtune.data.variants import Variant, prompt_variants
from negtune.errors import UserError


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset that loads without a loading script (datasets >= 4)."""

    path: str
    name: Optional[str] = None  # config
    revision: Optional[str] = None  # None: the main branch
    # Requested split -> hub split, for tasks whose hub copy lacks a split (documented per task).
    split_aliases: dict[str, str] = field(default_factory=dict)
    # Hub split -> row count its dataset card states; a build that reads another count warns.
    expected_rows: dict[str, int] = field(default_factory=dict)
    # Hub splits whose labels are hidden (-1, "", "<unk>"): refused, never read as gold.
    unlabelled_splits: tuple[str, ...] = ()

    def split_for(self, split: str) -> str:
        return self.split_aliases.get(split, split)


Parser = Callable[[dict[str, Any], str, int], Item]
Completer = Callable[[list[Item], int, str, OptionRules], None]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    fields: tuple[str, ...]  # top-level fields every source row must have
    parse: Parser
    variants: dict[str, Variant]
    hub: Optional[HubSource]
    schema_doc: str  # one line: the source schema, for docs and error messages
    negated_rule: str  # one line: what counts as correct under a negated prompt
    complete_options: Optional[Completer] = None  # adds options to items that only have answers
    n_options: Optional[int] = None  # fixed option count, None: varies by row
    paper_csv_prefix: tuple[str, ...] = ()  # file-name prefixes of the paper's CSVs
    paper_files: tuple[str, ...] = ()  # the paper's released (original, negated) CSV names
    # complete_options draws distractors from the training answers minus every evaluation
    # answer (the paper's QA rule); the builder computes that pool (negtune.data.reader).
    answer_pool: bool = False


# --------------------------------------------------------------------------- registry

_TWO_WAY = "the other option"
_ALL_WRONG = "every wrong option (gold set); training targets one by a seeded rule or all (negated_target)"
_ARC_VARIANTS = prompt_variants(
    "Generate the correct answer to the following question. Question: {question} Answer is",
    "Generate the incorrect answer to the following question. Question: {question} Answer is",
    "Question: {question} Answer is",
)

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="piqa",
            title="PIQA",
            fields=("goal", "sol1", "sol2", "label"),
            parse=P.parse_piqa,
            variants=prompt_variants(
                "Generate the correct solution to accomplish the following goal: {goal}",
                "Generate the incorrect solution to accomplish the following goal: {goal}",
                "{goal}",
            ),
            # baber/piqa: parquet copy of ybisk/piqa (whose main branch is a loading script);
            # no README, so config "default" and split names from piqa_<split>.parquet.
            hub=HubSource("baber/piqa", expected_rows={"train": 16113, "validation": 1838, "test": 3084},
                          unlabelled_splits=("test",)),
            schema_doc="goal, sol1, sol2, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("piqa",),
            paper_files=("piqa_generate_300.csv", "piqa_generate_negation_300.csv"),
        ),
        TaskSpec(
            name="arc_easy",
            title="ARC-Easy",
            fields=("id", "question", "choices", "answerKey"),
            parse=P.parse_arc,
            variants=_ARC_VARIANTS,
            hub=HubSource("allenai/ai2_arc", "ARC-Easy",
                          expected_rows={"train": 2251, "validation": 570, "test": 2376}),
            schema_doc="id, question, choices{text[], label[]}, answerKey",
            negated_rule=_ALL_WRONG,
            paper_csv_prefix=("ai2_arc",),
            paper_files=("ai2_arc_q_a_300.csv", "ai2_arc_q_a_negation_300.csv"),
        ),
        TaskSpec(
            name="copa",
            title="COPA",
            fields=("premise", "choice1", "choice2", "question", "label"),
            parse=P.parse_copa,
            variants=prompt_variants(
                "Complete the sentence with the appropriate ending. {premise}  {connector}...",
                "Complete the sentence with an inappropriate ending. {premise}  {connector}...",
                "{premise}  {connector}...",
            ),
            # Main branch, no revision pin: main holds copa/<split>-00000-of-00001.parquet and a
            # README `configs:` list naming "copa". The earlier pin, refs/convert/parquet, has
            # copa/<split>/0000.parquet and no `configs:` list, so datasets >= 4 sees only a
            # "default" config there and load_dataset(..., "copa") fails with "BuilderConfig
            # 'copa' not found" (tests/data/test_hub_mirror_layout.py reproduces both layouts).
            hub=HubSource("aps/super_glue", "copa", expected_rows={"train": 400, "validation": 100, "test": 500},
                          unlabelled_splits=("test",)),
            schema_doc="premise, choice1, choice2, question (cause/effect), idx, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("super_glue", "copa"),
            paper_files=("super_glue_generate_100.csv", "super_glue_generate_negation_100.csv"),
        ),
        TaskSpec(
            name="hellaswag",
            title="HellaSwag",
            fields=("endings", "label"),
            parse=P.parse_hellaswag,
            variants=prompt_variants(
                "Complete the sentence with an appropriate ending: {ctx}",
                "Complete the sentence with an inappropriate ending: {ctx}",
                "{ctx}",
            ),
            # Main is parquet (data/<split>-*.parquet); any pin before that conversion is a
            # loading script, which datasets >= 4 refuses. Labels are strings ("" in test).
            hub=HubSource("Rowan/hellaswag", expected_rows={"train": 39905, "validation": 10042, "test": 10003},
                          unlabelled_splits=("test",)),
            schema_doc="ind, ctx (or ctx_a + ctx_b), endings[4], label",
            negated_rule=_ALL_WRONG,
            n_options=4,
            paper_csv_prefix=("hellaswag",),
            paper_files=("hellaswag_Open-ended_completion_300.csv", "hellaswag_Open-ended_completion_negation_300.csv"),
        ),
        TaskSpec(
            name="story_cloze",
            title="StoryCloze 2016",
            fields=tuple(f"InputSentence{i}" for i in range(1, 5))
            + ("RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"),
            parse=P.parse_story_cloze,
            variants=prompt_variants(
                "Generate a natural ending for the following story: {story}",
                "Generate an unnatural ending for the following story: {story}",
                "{story}",
            ),
            hub=None,  # not redistributable: local CSV/TSV in the official cloze-test schema only
            schema_doc=(
                "InputStoryid, InputSentence1..4, RandomFifthSentenceQuiz1, "
                "RandomFifthSentenceQuiz2, AnswerRightEnding (1/2)"
            ),
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("story_cloze",),
            paper_files=("story_cloze_Generate_Ending_300.csv", "story_cloze_Generate_Ending_Negation_300.csv"),
        ),
        TaskSpec(
            name="lambada",
            title="LAMBADA",
            fields=("text",),
            parse=P.parse_lambada,
            variants=prompt_variants(
                "Please generate a natural ending following the given chunk of text.\n\n{context}",
                "Please generate an unnatural ending following the given chunk of text.\n\n{context}",
                "{context}",
            ),
            complete_options=complete_lambada,
            # cimec/lambada is the original (tokenised, lower-cased) LAMBADA the paper's prompts
            # show. Its "train" split holds whole novels, not passages, so training reads the
            # validation passages and evaluation reads the test passages.
            hub=HubSource("cimec/lambada", "plain_text", split_aliases={"train": "validation", "validation": "test"},
                          expected_rows={"train": 2662, "validation": 4869, "test": 5153}),
            schema_doc="text (passage; its last word is the target)",
            negated_rule=_ALL_WRONG,
            n_options=4,
            paper_csv_prefix=("lambada",),
            paper_files=("lambada_please_next_word_300.csv", "lambada_please_next_word_negation_300.csv"),
        ),
        TaskSpec(
            name="web_questions",
            title="WebQuestions",
            fields=("question", "answers"),
            parse=P.parse_web_questions,
            variants=prompt_variants(
                'Give me a possible correct answer to the question "{question}"',
                'Give me a possible incorrect answer to the question "{question}"',
                "{question}",
            ),
            complete_options=complete_qa,
            # No validation split on the hub: evaluation reads "test".
            hub=HubSource("stanfordnlp/web_questions", split_aliases={"validation": "test"},
                          expected_rows={"train": 3778, "test": 2032}),
            schema_doc="url, question, answers[]",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("webqa", "web_questions"),
            paper_files=("webqa_correct_answer_300.csv", "webqa_correct_answer_negation_300.csv"),
            answer_pool=True,
        ),
        TaskSpec(
            name="nq_open",
            title="Natural Questions (open)",
            fields=("question", "answer"),
            parse=P.parse_nq_open,
            variants=prompt_variants(
                "The goal is to predict a correct English answer string for an input English question.\n"
                "Question: {question}\nAnswer:",
                "The goal is to predict an incorrect English answer string for an input English question.\n"
                "Question: {question}\nAnswer:",
                "Question: {question}\nAnswer:",
            ),
            complete_options=complete_qa,
            hub=HubSource("google-research-datasets/nq_open", "nq_open",
                          expected_rows={"train": 87925, "validation": 3610}),
            schema_doc="question, answer[]",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("nq",),
            paper_files=("nq_correct_answer_300.csv", "nq_correct_answer_negation_300.csv"),
            answer_pool=True,
        ),
        TaskSpec(
            name="trivia_qa",
            title="TriviaQA",
            fields=("question", "answer"),
            parse=P.parse_trivia_qa,
            variants=prompt_variants(
                "What is a correct answer to the following question?\nQuestion: {question}\nAnswer:",
                "What is an incorrect answer to the following question?\nQuestion: {question}\nAnswer:",
                "Question: {question}\nAnswer:",
            ),
            complete_options=complete_qa,
            # rc.nocontext = the rc.web rows (76,496 train) + the rc.wikipedia rows (61,888):
            # a question in both files is two rows with one question_id; the builder merges
            # them (87,622 distinct questions in unfiltered.nocontext). Test answers are "<unk>".
            hub=HubSource("mandarjoshi/trivia_qa", "rc.nocontext",
                          expected_rows={"train": 138384, "validation": 17944, "test": 17210},
                          unlabelled_splits=("test",)),
            schema_doc="question_id, question, answer{value, aliases[], normalized_aliases[]}",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("triviaqa", "trivia_qa"),
            paper_files=("triviaqa_correct_answer_300.csv", "triviaqa_correct_answer_negation_300.csv"),
            answer_pool=True,
        ),
        TaskSpec(
            name="demo",
            title="demo (ARC schema, local files only)",
            fields=("id", "question", "choices", "answerKey"),
            parse=P.parse_arc,
            variants=dict(_ARC_VARIANTS),
            hub=None,
            schema_doc="id, question, choices{text[], label[]}, answerKey (ai2_arc schema)",
            negated_rule=_ALL_WRONG,
        ),
    ]
}


def get_task(name: str, where: str = "task") -> TaskSpec:
    """The spec for ``name``; an unknown name is a one-line UserError listing the known ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UserError(f"{where}: unknown task {name!r} (known: {', '.join(TASKS)})") from None


def get_variant(task: str, name: str, where: str = "variant") -> Variant:
    """The variant ``name`` of ``task``; unknown -> one-line UserError listing the known ones."""
    variants = get_task(task, where=where).variants
    if name not in variants:
        raise UserError(f"{where}: unknown variant {name!r} for task {task!r} (known: {', '.join(variants)})")
    return variants[name]


def check_names(tasks: list[str], variants: list[str], section: str, prefix: str = "") -> None:
    """Every task is registered and defines every variant. Recipe loading calls this, so a
    typo fails before anything is loaded; the builders call it again for direct API use."""
    for i, task in enumerate(tasks):
        get_task(task, where=f"{prefix}{section}.tasks[{i}]")
        for j, name in enumerate(variants):
            get_variant(task, name, where=f"{prefix}{section}.variants[{j}]")
    if len(set(tasks)) != len(tasks):
        raise UserError(f"{prefix}{section}.tasks: lists a task twice")
