"""Command-line programs, one per chapter: `python -m apps.<name> --flagfile=...`."""

import os
import signal
import sys

# Before anything imports TensorFlow: no C++ log flood (the user's setting wins).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

if sys.argv[:1] == ["-m"]:  # `python -m apps.<name>`: a signal while TensorFlow loads
    # Nothing is written before the run starts, so a signal then ends the program at once,
    # with one line instead of a traceback; `apps.common.cli` takes over from there.
    def _quit(signum, frame):
        del frame
        os.write(2, f"interrupted: {signal.Signals(signum).name} before the run started\n".encode())
        os._exit(128 + signum)

    for _signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_signum, _quit)
