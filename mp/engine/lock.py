"""One run per folder: an exclusive lock on a run's `model_dir`.

Two runs writing checkpoints, summaries and `metrics.json` into one folder
leave a mix of both. `lock(model_dir)` takes an exclusive `flock` on
`model_dir/.lock` and writes the process id into it; a second run is refused
with a message naming that process. The operating system drops the lock when
its process ends, however it ends (even SIGKILL), so a lock left by a dead
run is no lock: the next run takes it over without a word. Where `fcntl` does
not exist (Windows) the folder is not locked.
"""

import os

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_HELD = {}  # real path -> open file descriptor, for this process's lifetime


class FolderBusy(ValueError):
    """Another live process holds the folder's lock."""


def lock(directory):
    """Locks `directory` (created if needed) for the rest of this process, or until `unlock`.

    Locking a folder this process already holds is a no-op.

    Raises:
      FolderBusy: another running process holds it.
    """
    os.makedirs(directory, exist_ok=True)
    key = os.path.realpath(directory)
    if key in _HELD or fcntl is None:
        return
    path = os.path.join(directory, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise FolderBusy(
            f"{directory} is in use by another run (process {holder}); wait for it to end, "
            "stop it, or choose another --model_dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = fd


def unlock(directory):
    """Releases this process's lock on `directory` (if it holds one)."""
    fd = _HELD.pop(os.path.realpath(directory), None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
