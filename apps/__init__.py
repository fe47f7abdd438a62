"""Command-line programs, one per chapter: `python -m apps.<name> --flagfile=...`."""

import os

# Before anything imports TensorFlow: no C++ log flood (the user's setting wins).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
