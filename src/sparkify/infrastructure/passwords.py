"""The Redshift master password: its rules, and a random one that meets them."""

from __future__ import annotations

import secrets
import string

from sparkify.errors import ConfigError

_FORBIDDEN = set("'\"\\/@ ")


def password_problems(password: str) -> list[str]:
    """What ``password`` lacks under Redshift's master password rules; empty when valid."""
    problems = []
    if not 8 <= len(password) <= 64:
        problems.append("8 to 64 characters")
    if not (any(c.isupper() for c in password) and any(c.islower() for c in password)):
        problems.append("an upper- and a lower-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("a digit")
    if any(c in _FORBIDDEN or not 33 <= ord(c) <= 126 for c in password):
        problems.append("only printable ASCII without quotes, \\, /, @ or spaces")
    return problems


def check_password(password: str) -> str:
    """Redshift's master password rules, checked before AWS sees the password."""
    problems = password_problems(password)
    if problems:
        raise ConfigError("the master password needs " + ", ".join(problems))
    return password


def generate_password(length: int = 24) -> str:
    """A random password that meets Redshift's rules."""
    alphabet = string.ascii_letters + string.digits + "!#%^*-_=+"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(password):
            return password
