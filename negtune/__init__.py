"""negtune: fine-tune and evaluate causal LMs on negated instructions."""

__version__ = "0.1.0"
