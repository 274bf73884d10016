"""Passwords: Argon2id hashes, and which passwords are refused before they are ever hashed.

Strength is judged by zxcvbn (Dropbox's estimator, the ``zxcvbn`` package): it knows the
common-password lists, names, dictionary words, keyboard walks, dates and repeats, and the
user's own name, username and e-mail are given to it as words to look for. A password must
be at least :data:`MIN_LENGTH` characters and reach score :data:`MIN_SCORE` (of 0 to 4:
"safely unguessable: moderate protection from offline slow-hash attacks").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

from shared.config import IdentitySettings

MIN_LENGTH = 12
MAX_LENGTH = 256  # beyond anyone's memory, and a bound on the work one request may ask for
MIN_SCORE = 3
# zxcvbn's work grows with the length; it judges the first this many characters (enough to
# find every pattern a person types).
JUDGED_LENGTH = 100
# Words anyone guessing a password here would try first.
SITE_WORDS = ("petty", "cash", "pettycash", "imprest", "float", "treasury")


class WeakPassword(ValueError):
    """A password that may not be used; the message says why, in words."""


@dataclass(frozen=True)
class Passwords:
    """Hashing and checking with the configured Argon2id cost."""

    hasher: PasswordHasher
    # Verified against when the account does not exist, so an unknown username costs the same
    # time as a wrong password (no answer, not even its timing, tells which usernames exist).
    dummy_hash: str

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Passwords:
        """The hasher for these settings (argon2id is argon2-cffi's default type)."""
        hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        return cls(hasher, hasher.hash("no account has this password"))

    def hash(self, password: str) -> str:
        """The PHC string to store."""
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (a missing hash costs the same and fails)."""
        try:
            return self.hasher.verify(stored or self.dummy_hash, password[:MAX_LENGTH]) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than today's (rehash at sign-in)."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def check_strength(password: str, personal: Iterable[str] = ()) -> None:
    """Refuse a password that is short, too long, or guessable; ``personal``: the user's own words."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"A password may have at most {MAX_LENGTH} characters.")
    # The user's name, username and address, whole and word by word ("Alice Wanjiru" gives
    # "alice", "wanjiru"; "alice@example.org" gives "alice", "example").
    words = [*SITE_WORDS]
    for item in personal:
        words += [item, *re.split(r"[\s@._+-]+", item)]
    words = [w.lower() for w in words if len(w) > 2]
    judged = zxcvbn(password[:JUDGED_LENGTH], user_inputs=words)
    if judged["score"] < MIN_SCORE:
        feedback = judged["feedback"]
        hint = feedback.get("warning") or "It is too easy to guess."
        suggestions = " ".join(feedback.get("suggestions") or ["Add a few unrelated words."])
        raise WeakPassword(f"Choose a stronger password. {hint.rstrip('.')}. {suggestions}".strip())
