"""API keys per study: stored hashed, each scoped to a set of cohorts.

The keys file never holds a usable key, only ``sha256(key)``: a leaked keys file (or backup of
it) grants nothing. Keys are 256-bit random tokens, so a plain SHA-256 is enough (no salt or
slow hash is needed against brute force of that much entropy). The file is re-read when it
changes, so adding or revoking a key takes effect without restarting the server.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wsi_ssl.serve.config import check_name
from wsi_ssl.stores.atomic import atomic_output

KEYS_FORMAT_VERSION = 1
KEY_PREFIX = "wsk_"
ALL_COHORTS = "*"


class KeyFileError(ValueError):
    """A keys file that cannot be read, or a key operation that makes no sense."""


@dataclass(frozen=True)
class ApiKey:
    """One study's key as the server sees it: an id for logs, a hash, and its cohorts."""

    key_id: str
    sha256: str
    cohorts: tuple[str, ...]
    created: str = ""
    note: str = ""

    def sees(self, cohort: str) -> bool:
        return ALL_COHORTS in self.cohorts or cohort in self.cohorts

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "sha256": self.sha256,
            "cohorts": list(self.cohorts),
            "created": self.created,
            "note": self.note,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def read_keys(path: str | Path) -> list[ApiKey]:
    """Parse a keys file; a missing file is an empty key set (the server then refuses everyone)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"{path}: not a readable keys file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyFileError(f"{path}: expected an object with a 'keys' list")
    keys: list[ApiKey] = []
    for i, entry in enumerate(data["keys"]):
        try:
            keys.append(
                ApiKey(
                    key_id=str(entry["key_id"]),
                    sha256=str(entry["sha256"]).lower(),
                    cohorts=tuple(str(c) for c in entry["cohorts"]),
                    created=str(entry.get("created", "")),
                    note=str(entry.get("note", "")),
                )
            )
        except (KeyError, TypeError) as exc:
            raise KeyFileError(f"{path}: keys[{i}] lacks {exc}; each key needs key_id, sha256, cohorts") from None
    return keys


def write_keys(path: str | Path, keys: list[ApiKey]) -> None:
    """Write atomically and owner-readable only: hashes are not secrets, but scopes are private."""
    path = Path(path)
    payload = {"format_version": KEYS_FORMAT_VERSION, "keys": [k.to_json() for k in keys]}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.chmod(tmp, 0o600)


def add_key(path: str | Path, key_id: str, cohorts: list[str], note: str = "") -> str:
    """Create a key scoped to ``cohorts``, store its hash, and return the key (shown only once)."""
    check_name(key_id, "key id")
    if not cohorts:
        raise KeyFileError("a key needs at least one cohort (or '*' for all cohorts)")
    for cohort in cohorts:
        if cohort != ALL_COHORTS:
            check_name(cohort, "cohort name")
    keys = read_keys(path)
    if any(k.key_id == key_id for k in keys):
        raise KeyFileError(f"key id {key_id!r} already exists in {path}; revoke it first or pick another id")
    key = new_key()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    keys.append(ApiKey(key_id=key_id, sha256=hash_key(key), cohorts=tuple(cohorts), created=created, note=note))
    write_keys(path, keys)
    return key


def revoke_key(path: str | Path, key_id: str) -> None:
    keys = read_keys(path)
    kept = [k for k in keys if k.key_id != key_id]
    if len(kept) == len(keys):
        raise KeyFileError(f"no key {key_id!r} in {path}")
    write_keys(path, kept)


class KeyStore:
    """Looks keys up by hash, re-reading the file when its mtime or size changes. Thread-safe.

    The file is stat'ed at most every ``recheck_s`` seconds, so a new or revoked key takes
    effect within that time, and a busy server does not stat the file on every request.
    A file that cannot be read fails closed: every lookup raises KeyFileError (a 503) until
    the file is valid again. Keeping the old key set instead would keep a key working that a
    broken hand edit was meant to revoke.
    """

    def __init__(self, path: str | Path, recheck_s: float = 1.0) -> None:
        self.path = Path(path)
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._by_hash: dict[str, ApiKey] = {}
        self._error: KeyFileError | None = None
        self._refresh()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.recheck_s:
            return
        self._checked = now
        stamp = self._file_stamp()
        if stamp == self._stamp and (stamp is not None or not self._by_hash):
            return
        with self._lock:
            if stamp == self._stamp and (stamp is not None or not self._by_hash):
                return
            try:
                keys = read_keys(self.path)
            except KeyFileError as exc:
                self._by_hash, self._error = {}, exc
            else:
                self._by_hash, self._error = {k.sha256: k for k in keys}, None
            self._stamp = stamp  # last: a lookup that sees the new stamp sees the new key set

    @property
    def error(self) -> KeyFileError | None:
        """Why the keys file cannot be read, or None while it is valid."""
        return self._error

    def lookup(self, key: str | None) -> ApiKey | None:
        """The key's record, or None for a missing or unknown key; KeyFileError while the file is bad."""
        self._refresh()
        if self._error is not None:
            raise self._error
        if not key:
            return None
        # Looked up by digest: a guess's timing can only reveal how much of its own SHA-256
        # matched a stored one, which says nothing usable about any key.
        return self._by_hash.get(hash_key(key))
