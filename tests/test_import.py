"""`import mp` is quiet and loads nothing beyond what TensorFlow and Keras load."""

import subprocess
import sys

_CHECK = (
    "import sys\n"
    "import tensorflow, keras\n"
    "before = set(sys.modules)\n"
    "import mp\n"
    "extra = sorted(m.split('.')[0] for m in set(sys.modules) - before)\n"
    "print(','.join(sorted(set(extra) - {'mp'})))\n"
)


def test_import_is_quiet_and_light():
    quiet = subprocess.run(
        [sys.executable, "-c", "import mp"], capture_output=True, text=True, timeout=120, check=True
    )
    assert quiet.stdout == "" and quiet.stderr == ""  # no TensorFlow log lines
    out = subprocess.run(
        [sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    # Only mp's own modules are new: TFP, gymnasium and the like load on use.
    assert out.stdout.strip() == ""
