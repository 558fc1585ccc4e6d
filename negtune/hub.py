"""Whether negtune may contact the Hugging Face hub: one rule for models and data sets.

Why one function: the model loader and the data loader used to read different environment
variables, so a run could be "offline" for its data set and try the network for its model.
Offline mode is on when any of ``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` or
``TRANSFORMERS_OFFLINE`` is set to a true value (1, true, yes, on): then models and data
sets load only from local directories and caches, and a failure says so.
"""
from __future__ import annotations

import os

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_VARIABLES)
