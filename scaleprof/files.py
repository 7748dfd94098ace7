"""Files that are whole or absent: every write goes to a temporary file beside its target, then a rename.

A reader (a CI job, a browser, a rerun that skips finished work) never sees a half-written report, JSON or
baseline: either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from .errors import ScaleprofError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (with parents) if needed and make sure files can be created in it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ScaleprofError(f"output folder {p} exists and is not a folder") from None
    except OSError as exc:
        raise ScaleprofError(f"cannot create output folder {p}: {_reason(exc)}") from None
    if not p.is_dir():
        raise ScaleprofError(f"output folder {p} exists and is not a folder")
    # permission bits lie for root and on some mounts: try creating a file
    try:
        fd, probe = tempfile.mkstemp(prefix=".scaleprof-probe-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ScaleprofError(f"output folder {p} is not writable: {_reason(exc)}") from None
    return p


def _no_links(p: Path, root: Path) -> None:
    """Refuse ``p`` when it, or a folder between ``root`` and it, is a symbolic link: a link planted inside
    an output folder (``figures -> /etc``) must not carry a write elsewhere."""
    try:
        rel = p.relative_to(root)
    except ValueError:
        raise ScaleprofError(f"cannot write {p}: it is outside {root}") from None
    cur = root
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            raise ScaleprofError(f"cannot write {p}: {cur} is a symbolic link (scaleprof never writes through "
                                 "one inside its output folder)")


def _mode_for(p: Path) -> int:
    """The file's own permission bits when it exists (a private baseline stays private), else 0644."""
    try:
        st = os.lstat(p)
    except OSError:
        return 0o644
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else 0o644


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, root: str | os.PathLike | None = None) -> Path:
    """Write ``data`` to ``path`` whole (a temporary file beside it, then a rename), keeping an existing
    file's mode. ``root``: the output folder ``path`` lies in; no link between it and ``path`` is followed."""
    p = Path(path)
    if root is not None:
        _no_links(p, Path(root))
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if root is not None:
            _no_links(p, Path(root))     # the folders just made (a race with a link planted meanwhile)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise ScaleprofError(f"cannot write {p}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(p))
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ScaleprofError(f"cannot write {p}: {_reason(exc)}") from None
        raise
    return p


def atomic_write_text(path: str | os.PathLike, text: str, *, root: str | os.PathLike | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), root=root)


def atomic_write_json(path: str | os.PathLike, obj, *, root: str | os.PathLike | None = None) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n", root=root)


def read_json(path: str | os.PathLike, what: str = "file"):
    """Parsed JSON, or a one-line ScaleprofError naming the file and what is wrong with it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScaleprofError(f"{what} {p} not found") from None
    except IsADirectoryError:
        raise ScaleprofError(f"{what} {p} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise ScaleprofError(f"{what} {p} is not text (expected JSON)") from None
    except OSError as exc:
        raise ScaleprofError(f"cannot read {what} {p}: {_reason(exc)}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScaleprofError(f"{what} {p} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg})") from None
