"""Output files: never onto an input, never half-written (docs/architecture.md).

Every command that writes a file (``check``, ``fix``, ``report`` with ``--output``, ``docs``)
checks the path first (:func:`check_output`, :func:`check_folder`): an output that is one of
the command's inputs, lies in a folder that does not exist, or names a folder is refused with
exit 2 before anything is read. The text then goes to a temporary file in the same folder,
which replaces the target by an atomic rename only once it is complete
(:func:`atomic_output`): a crash, an error or a signal leaves the old file as it was and no
temporary file behind (on Linux the temporary file has no name until it is complete, so not
even ``kill -9`` can leave one). A new output file is readable by its owner only (results name claims,
corrected claims carry patient data); a replaced file keeps its permissions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import PainAspError

__all__ = ["atomic_output", "check_folder", "check_output", "write_output"]


def check_output(path: Path, inputs: Iterable[Path] = (), option: str = "--output") -> None:
    """Refuse an output ``path`` that is a folder, lies in a missing folder, or is one of the
    ``inputs`` (a file, or a claim file inside an input folder, however it is spelt)."""
    if path.is_dir():
        raise PainAspError(f"{option} {path}: is a folder; expected a file name")
    folder = path.parent
    if not folder.is_dir():
        raise PainAspError(f"{option} {path}: the folder {folder} does not exist (create it first)")
    if not path.exists():
        return  # a new file cannot be an input
    from .inputs.files import CLAIM_SUFFIXES

    target = path.resolve()
    for item in inputs:
        if not item.exists():
            continue
        inside = item.is_dir() and target.is_relative_to(item.resolve()) and path.suffix.lower() in CLAIM_SUFFIXES
        if inside or (item.is_file() and os.path.samefile(path, item)):
            raise PainAspError(f"{option} {path}: is an input of this command; refusing to overwrite it "
                               "(write the output to another file)")


def check_folder(folder: Path, option: str) -> None:
    """Refuse an output ``folder`` that does not exist or is not a folder."""
    if not folder.exists():
        raise PainAspError(f"{option} {folder}: the folder does not exist (create it first)")
    if not folder.is_dir():
        raise PainAspError(f"{option} {folder}: not a folder; expected the folder to write into")


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text handle whose content replaces ``path`` once the block ends without an error.

    The text goes to a temporary file beside ``path`` (same folder, so the rename is atomic);
    on any exception (``KeyboardInterrupt`` and the signals ``pain-asp`` turns into
    exceptions included) the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    try:
        fd, temporary = _temporary_file(path)
    except OSError as exc:
        raise PainAspError(f"{path}: cannot write in {path.parent} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
                if temporary is None:  # give the nameless file a name only now that it is complete
                    temporary = _name_it(handle.fileno(), path)
                if path.exists():
                    os.chmod(temporary, path.stat().st_mode & 0o7777)
                os.replace(temporary, path)
            except OSError as exc:
                raise PainAspError(f"{path}: could not write the output ({exc.strerror}); "
                                   "a file already there is unchanged") from None
    except BaseException:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
        raise


def _name_it(fd: int, path: Path) -> str:
    """Link the nameless file ``fd`` into ``path``'s folder under a new hidden name; returns it.

    ``linkat`` with ``AT_SYMLINK_FOLLOW`` on ``/proc/self/fd/N`` (see open(2)); Python uses
    ``linkat`` only when a folder descriptor is given, hence ``dst_dir_fd``. Never replaces a file.
    """
    name = f".{path.name}.{os.urandom(6).hex()}.part"
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
        return str(path.parent / name)
    except OSError:  # linking refused: copy the text to a named temporary file instead
        import tempfile

        copy, named = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(copy, "wb") as out:
            os.lseek(fd, 0, os.SEEK_SET)
            while block := os.read(fd, 1 << 20):
                out.write(block)
        return named
    finally:
        os.close(folder)


def _temporary_file(path: Path) -> tuple[int, str | None]:
    """An owner-only file to write ``path``'s new text to, in ``path``'s folder: nameless where
    the system allows it (Linux ``O_TMPFILE``: even ``kill -9`` leaves nothing), else a hidden
    ``.NAME.*.part`` file. Returns its descriptor and its name (None while nameless)."""
    if hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir():
        try:
            return os.open(path.parent, os.O_TMPFILE | os.O_RDWR, 0o600), None
        except OSError:  # a file system without O_TMPFILE
            pass
    import tempfile  # only here: a check that writes no file does not import it

    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as handle:
        handle.write(text)
