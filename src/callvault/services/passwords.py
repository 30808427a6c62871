"""Password policy: long enough, not common, not guessable from the account.

Strength is judged by zxcvbn (the Dropbox estimator, maintained on PyPI as
``zxcvbn``): it matches the password against its bundled lists of the most
common passwords, English words, names and keyboard patterns, and estimates
the guesses needed. A password must be at least ``password_min_length``
characters and need at least 10^8 guesses (zxcvbn score 3), with the
username counted as known to the attacker. Messages never quote the password.
"""

from __future__ import annotations

from zxcvbn import zxcvbn

from callvault.errors import InvalidInput

MAX_PASSWORD_LENGTH = 1024
# zxcvbn refuses longer input (its matching is quadratic); a prefix this long
# that is already strong keeps the whole password strong.
_ZXCVBN_MAX = 72
_MIN_SCORE = 3


def check_password(password: str, username: str, min_length: int) -> None:
    """Raise :class:`InvalidInput` with a reason a person can act on if ``password`` is weak."""
    if len(password) < min_length:
        raise InvalidInput(f"password must be at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.isprintable():
        raise InvalidInput("password must not start or end with spaces or contain control characters")
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[username, "callvault"], max_length=_ZXCVBN_MAX)
    if int(result["score"]) < _MIN_SCORE:
        warning = str(result["feedback"].get("warning") or "it is too easy to guess")
        raise InvalidInput(
            f"password is too weak: {warning.rstrip('.')}; use a longer passphrase of unrelated words"
        )
