"""``python -m negtune.evaluation.hf_metric``: print the metric script's path (as ``negtune export evaluate``)."""
import sys

from negtune.evaluation.hf_metric import main

sys.exit(main())
