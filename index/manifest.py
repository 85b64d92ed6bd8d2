"""The manifest: what a version holds, written at build time and checked at load time."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ManifestError, ManifestMismatchError
from .persist import atomic_write_json

__all__ = ["Manifest", "MANIFEST_FILE", "FORMAT_VERSION", "file_digest"]

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Manifest:
    """``model`` is an opaque identifier chosen by the caller: the store never interprets it."""

    model: str
    dimension: int
    count: int
    index_type: str
    normalized: bool = True
    metric: str = "inner_product"
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    package_version: str = ""
    corpus_hash: str = ""
    format_version: int = FORMAT_VERSION
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def record_file(self, directory: Path, name: str) -> None:
        """Remember a file's size and digest so a truncated or corrupted copy is caught at load."""
        path = Path(directory) / name
        self.files[name] = {"bytes": path.stat().st_size, "blake2b": file_digest(path)}

    def write(self, directory: Path) -> None:
        atomic_write_json(Path(directory) / MANIFEST_FILE, asdict(self))

    @classmethod
    def read(cls, directory: Path) -> "Manifest":
        path = Path(directory) / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{path}: manifest missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: manifest unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: manifest is not a JSON object")
        required = ("model", "dimension", "count", "index_type")
        missing = [name for name in required if name not in data]
        if missing:
            raise ManifestError(f"{path}: manifest incomplete, missing {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__}
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ManifestError(f"{path}: manifest invalid: {exc}") from None
        if manifest.format_version > FORMAT_VERSION:
            raise ManifestError(
                f"{path}: format version {manifest.format_version} is newer than this software "
                f"understands ({FORMAT_VERSION}); upgrade the package"
            )
        return manifest

    def verify_files(self, directory: Path, *, digests: bool = False) -> None:
        """Sizes always; digests on request (they cost a full read of every file)."""
        for name, info in self.files.items():
            path = Path(directory) / name
            if not path.is_file():
                raise ManifestError(f"{path}: listed in the manifest but missing")
            size = path.stat().st_size
            if size != info.get("bytes"):
                raise ManifestError(f"{path}: {size} bytes, manifest says {info.get('bytes')} (truncated or replaced)")
            if digests and file_digest(path) != info.get("blake2b"):
                raise ManifestError(f"{path}: content digest does not match the manifest (corrupted)")

    def check_compatible(self, *, model: str | None = None, dimension: int | None = None) -> None:
        """Refuse to serve vectors of one model against queries of another: the results would be silently wrong."""
        if model is not None and model != self.model:
            raise ManifestMismatchError(
                f"index was built with model {self.model!r} but {model!r} is configured; "
                f"rebuild the index or configure the matching model"
            )
        if dimension is not None and dimension != self.dimension:
            raise ManifestMismatchError(
                f"index has dimension {self.dimension} but the configured model produces {dimension}"
            )
