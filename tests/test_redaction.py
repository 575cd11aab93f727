"""Secrets are masked in mappings, override strings, URIs and log lines; env names are not."""

from __future__ import annotations

import logging

import pytest

from cryptotrade.launch import redaction


def test_redact_masks_credential_keys_and_keeps_env_variable_names():
    cfg = {
        "source": {
            "options": {"apiKey": "k-123456", "secret": "s-123456", "rateLimit": 50},
            "api_key_env": "BINANCE_KEY",
            "password": None,
        },
        "uri": "https://user:pw-123456@example.com/x",
        "list": [{"token": "t-123456"}],
    }
    out = redaction.redact(cfg)
    assert out["source"]["options"] == {"apiKey": "***", "secret": "***", "rateLimit": 50}
    assert out["source"]["api_key_env"] == "BINANCE_KEY"
    assert out["source"]["password"] is None  # nothing to hide
    assert out["uri"] == "https://user:***@example.com/x"
    assert out["list"] == [{"token": "***"}]
    assert cfg["source"]["options"]["apiKey"] == "k-123456"  # the input is not changed


def test_redact_text_masks_overrides_yaml_and_remembered_values():
    line = "+data.source.options.apiKey=abc123 seed=1 data.source.secret_env=MY_SECRET"
    assert redaction.redact_text(line) == (
        "+data.source.options.apiKey=*** seed=1 data.source.secret_env=MY_SECRET"
    )
    assert redaction.redact_text("  passphrase: hunter22\n") == "  passphrase: ***\n"
    assert redaction.secret_values([line]) == {"abc123"}
    redaction.remember({"zz-unique-value-42"})
    assert redaction.redact_text("ccxt said: bad key zz-unique-value-42") == (
        "ccxt said: bad key ***"
    )


def test_logging_filter_masks_messages_and_tracebacks(caplog):
    logger = logging.getLogger("test-redaction")
    handler_filter = redaction.RedactingFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        logger.warning("launching %s", "+x.apiKey=abcdef")
        try:
            raise ValueError("token=abcdef rejected")
        except ValueError:
            logger.exception("failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "abcdef" not in caplog.text
    assert "apiKey=***" in caplog.text and "token=***" in caplog.text


@pytest.mark.timeout(120)  # the quadratic scan would run for hours: fail instead of hanging
def test_redacting_a_large_artifact_stays_linear():
    """An HTML report embeds base64 images: one 400 KB token must not be re-scanned from every
    position (the pair pattern once took minutes on it). A planted pair is still masked."""
    import base64
    import os

    from cryptotrade.launch.redaction import redact_text

    blob = base64.b64encode(os.urandom(300_000)).decode().replace("/", "A")  # one long token
    out = redact_text(f"<img src='data:image/png;base64,{blob}'> apiKey=abc123secret")
    assert out.endswith("apiKey=***") and blob in out
