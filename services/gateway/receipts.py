"""Receipt files: checked by content (not by the name or the claimed type) and kept by SHA-256.

The store is content-addressed under ``<var>/receipts``; in production that folder is a
volume every gateway replica mounts (or an object store behind the same two functions).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

MAX_RECEIPT_BYTES = 5 * 1024 * 1024
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


class ReceiptRejected(ValueError):
    """The file is not an acceptable receipt; the message says why."""


def sniff(data: bytes) -> str:
    """The content type the bytes really are, or :class:`ReceiptRejected`."""
    if not data:
        raise ReceiptRejected("The file is empty.")
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptRejected(f"Receipts are limited to {MAX_RECEIPT_BYTES // (1024 * 1024)} MiB.")
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    raise ReceiptRejected("Only PDF, PNG and JPEG receipts are accepted.")


def store(root: Path, data: bytes) -> str:
    """Keep the bytes under their SHA-256 (written whole, then renamed into place)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = root / digest[:2]
    target = folder / digest
    if target.exists():
        return digest
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return digest


def safe_filename(name: str | None) -> str:
    """A display name without any path, trimmed to what the contract allows."""
    base = Path(name or "receipt").name.strip() or "receipt"
    return base[:200]
