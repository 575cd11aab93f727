"""Secrets never reach a written config: MLflow params, tags, artifacts, Hydra's files, logs.

The supported way to give an exchange key is to name the environment variable that holds it
(``data.source.api_key_env=BINANCE_KEY``). A credential that reaches a config anyway (an
override such as ``+data.source.options.apiKey=...``, a password inside a URI) is replaced by
:data:`MASK` wherever the launcher writes a config or a log line:

* :func:`redact` walks a mapping/list: values under credential-like keys (ccxt's
  ``requiredCredentials``: apiKey, secret, password, uid, login, twofa, privateKey,
  walletAddress, token; also passphrase, credentials, private_key) become :data:`MASK`; every
  string is passed through :func:`redact_text`.
* :func:`redact_text` masks ``key=value`` / ``key: value`` pairs with a credential-like key,
  ``user:password@`` in URIs, and every secret value seen so far in this process
  (:func:`remember`), so a library error message that echoes a key is masked too.
* :class:`RedactingFilter` applies :func:`redact_text` to log records (Hydra's console and
  ``run.log`` handlers use it, see ``conf/config.yaml``).

Keys ending in ``_env`` name an environment variable, not a secret, and are left alone.

Credentials given through the environment (``MLFLOW_TRACKING_PASSWORD`` for an MLflow server's
basic-auth app, ``MLFLOW_TRACKING_TOKEN``, ``RAY_AUTH_TOKEN``, ``AWS_SECRET_ACCESS_KEY`` ...)
never enter a config; their values are remembered too (:func:`environment_secrets`, at import
and again when a run starts), so a library message that echoes one is masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
# ccxt's Exchange.requiredCredentials names (apiKey, secret, uid, login, password, twofa,
# privateKey, walletAddress, token) and the usual spellings of other credentials. Words that
# are credentials wherever they appear in a key:
_SECRET_WORDS = (
    r"api[_-]?key|secret|password|passwd|passphrase|token|credential|private[_-]?key"
    r"|twofa|wallet[_-]?address"
)
# Short words that are credentials only as a whole key part (``uid``, ``options.login``,
# ``user_uid``), not inside another word (``guid``, ``fluid``, ``login_url``):
_WHOLE_WORDS = r"uid|login"
_SECRET_KEY = re.compile(rf"(?i)({_SECRET_WORDS})|(?:^|[^a-z0-9])({_WHOLE_WORDS})$")
_ANY_WORD = re.compile(rf"(?i){_SECRET_WORDS}|{_WHOLE_WORDS}")
# key=value or key: value where the key (last dotted part may carry a prefix such as +, ~)
# looks like a credential; the value runs to the next whitespace, comma, quote or brace.
# The lookbehind starts a key only at a token boundary: without it, a long run of key characters
# (a base64 image in an HTML report) is re-scanned from every position, quadratic in its length.
_PAIR = re.compile(
    rf"(?i)(?<![\w.+~/-])(?P<key>[\w.+~/-]*(?:{_SECRET_WORDS})[\w.-]*"
    rf"|(?:[\w.+~/-]*[.+~/_-])?(?:{_WHOLE_WORDS}))(?P<sep>\s*[=:]\s*)"
    r"(?P<value>(?!\*\*\*)[^\s,'\"}\]]+)"
)
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^\s:/@]+:)(?P<pw>[^\s@/]+)(?=@)")
_known: set[str] = set()
_MIN_KNOWN = 4  # shorter "secrets" would mask ordinary text everywhere


def is_secret_key(key: Any) -> bool:
    """Whether a config key names a credential (``apiKey``, ``secret``, ``db_password`` ...)."""
    text = str(key)
    return bool(_SECRET_KEY.search(text)) and not text.lower().endswith("_env")


def redact_text(text: str) -> str:
    """``text`` with credential pairs, URI passwords and remembered secret values masked."""
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)

    def pair(match: re.Match[str]) -> str:
        key = match.group("key")
        if key.lower().endswith("_env"):
            return match.group(0)
        return f"{key}{match.group('sep')}{MASK}"

    if _ANY_WORD.search(text):  # most texts name no credential: skip the pair scan
        text = _PAIR.sub(pair, text)
    if "://" not in text:
        return text
    return _URI_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (mappings, lists, scalars) with every credential masked."""
    if isinstance(obj, Mapping):
        return {
            k: (MASK if is_secret_key(k) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def secret_values(obj: Any) -> set[str]:
    """The credential values inside ``obj``: under credential-like keys or in ``key=value``
    strings (Hydra override lists)."""
    found: set[str] = set()
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if is_secret_key(key) and isinstance(value, str | int) and not isinstance(value, bool):
                found.add(str(value))
            else:
                found |= secret_values(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            found |= secret_values(value)
    elif isinstance(obj, str):
        for match in _PAIR.finditer(obj):
            if not match.group("key").lower().endswith("_env"):
                found.add(match.group("value"))
        found |= {m.group("pw") for m in _URI_PASSWORD.finditer(obj)}
    return found


def remember(values: Iterable[str]) -> None:
    """Mask these values in every later :func:`redact_text` of this process (log lines too)."""
    _known.update(v for v in values if len(v) >= _MIN_KNOWN)


# Environment variables whose names look like credentials but hold a file name, another
# variable's name or a setting (RAY_AUTH_TOKEN_PATH, RAY_AUTH_MODE ...): not secrets.
_NOT_SECRET_ENV = ("_PATH", "_FILE", "_DIR", "_ENV", "_MODE", "_URI")
# Values of such variables that are switches, not secrets (masking "true" would blank logs).
_NOT_SECRET_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """The values of the credential-like environment variables (names :func:`is_secret_key`
    accepts: ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``, ``RAY_AUTH_TOKEN`` ...;
    not ``MLFLOW_TRACKING_USERNAME``, nor names ending in ``_PATH``, ``_FILE``, ``_MODE`` ...).

    Args:
        environ: The environment to read (default: this process's).
    """
    env = os.environ if environ is None else environ
    return {
        value
        for name, value in env.items()
        if is_secret_key(name)
        and not name.upper().endswith(_NOT_SECRET_ENV)
        and value.lower() not in _NOT_SECRET_VALUES
        and not value.isdigit()
    }


remember(environment_secrets())


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # the trace is formatted later from exc_info: format it now, masked
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
