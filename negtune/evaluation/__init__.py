"""Evaluation: eval sets, rank-classification scoring, paired metrics and statistics, run jobs, summaries."""
