"""``python -m negtune.report`` = ``negtune report``."""
import sys

from negtune.errors import exit_on_user_error
from negtune.report import main

sys.exit(exit_on_user_error(lambda: main()))
