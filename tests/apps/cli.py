"""Running an app's command line from a test: in a fresh process, or in this one.

`python -m apps.<name> ...` pays TensorFlow's import (about 4 s here) on every call. A test
of what the command line does with its input (the exit code, the one `error:` line, what
is left in `model_dir`) runs the same `APP.cli(run)` in this process instead; a test of
the process itself (signals, locks, resource limits, the `-m` entry point) starts one.
"""

import importlib
import os
import signal
import subprocess
import sys
import types

from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def in_subprocess(name, *args, timeout=300, **kwargs):
    """`python -m apps.<name> *args` from the repository root; a `CompletedProcess`."""
    return subprocess.run(
        [sys.executable, "-m", f"apps.{name}", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def sigterm_at(name, *args, line_start, timeout=120):
    """Runs `python -m apps.<name> *args` until it prints a line starting with `line_start`,
    sends it SIGTERM and waits. Asserts the exit of an interrupted run (128 + SIGTERM, the
    one `interrupted: SIGTERM at step N; ...` line); returns N."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"apps.{name}", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith(line_start):
            proc.send_signal(signal.SIGTERM)
            break
    _, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.startswith("interrupted: SIGTERM at step "), stderr
    return int(stderr.split("at step ")[1].split(";")[0])


def in_process(capfd, name, *args):
    """`python -m apps.<name> *args` run in this process; the same fields as `in_subprocess`.

    The app's module is reloaded so that its defaults (apps share flag names with their
    own defaults) are its own, the flags are parsed from scratch, and the signal handlers
    the command line installs are put back afterwards. Relative paths (`--flagfile=flags/...`)
    are read from the repository root, as the subprocess would.
    """
    module = importlib.reload(importlib.import_module(f"apps.{name}"))
    flags.FLAGS.unparse_flags()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, cwd = sys.argv, os.getcwd()
    capfd.readouterr()  # what earlier steps of the test printed is not this run's
    sys.argv = [name, *map(str, args)]
    os.chdir(ROOT)
    try:
        if hasattr(module, "APP"):
            module.APP.cli(module.run)
        else:  # apps.compare: the app it sweeps is named by a flag
            module.cli()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        os.chdir(cwd)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        flags.FLAGS.unparse_flags()
    out, err = capfd.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=out, stderr=err)
