"""Secrets are masked in mappings, override strings, URIs and log lines; env names are not."""

from __future__ import annotations

import logging
from pathlib import Path

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


# every name in ccxt's Exchange.requiredCredentials, plus a URI password
CCXT_CREDENTIALS = (
    "apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "walletAddress", "token",
)  # fmt: skip


def test_every_ccxt_credential_name_is_masked_in_mappings_text_and_yaml():
    values = {name: f"V{i}-{name}-7731" for i, name in enumerate(CCXT_CREDENTIALS)}
    options = {**values, "defaultType": "spot", "feed": "wss://me:PW-7731@example.invalid/x"}
    masked = redaction.redact({"options": options})["options"]
    assert masked == {**dict.fromkeys(CCXT_CREDENTIALS, "***"), "defaultType": "spot",
                      "feed": "wss://me:***@example.invalid/x"}  # fmt: skip
    line = " ".join(f"+data.source.options.{k}={v}" for k, v in values.items())
    yaml_text = "".join(f"    {k}: {v}\n" for k, v in values.items())
    for text in (line, yaml_text):
        out = redaction.redact_text(text)
        assert not any(v in out for v in values.values()), out
    assert redaction.secret_values([line]) == set(values.values())
    # short words are credentials only as a whole key part
    assert not any(map(redaction.is_secret_key, ("guid", "fluid", "login_url", "uid_env")))


def test_redacting_stream_masks_what_hydra_prints(capsys):
    """``--cfg job`` and ``--info`` print the config with ``print`` before any callback runs."""
    import io

    from cryptotrade.launch import launcher

    sink = io.StringIO()
    stream = launcher.RedactingStream(sink)
    print("data:\n  source:\n    options:\n      twofa: 123456\n      uid: u-998877", file=stream)
    assert "123456" not in sink.getvalue() and "u-998877" not in sink.getvalue()
    assert "twofa: ***" in sink.getvalue() and stream.closed is False  # delegated attribute


def test_the_logged_model_settings_json_is_redacted(tmp_path, mlflow_store):
    """``pipeline.train`` logs the data/features/env sections beside the policy: a credential
    under them must not reach ``<model>/artifacts/settings.json``."""
    import json

    import mlflow

    from cryptotrade.evaluation.policy_model import log_policy_model

    model_zip = tmp_path / "model.zip"
    model_zip.write_bytes(b"not a real model: only copied")
    settings = {"data": {"source": {"options": {"uid": "U-55667788", "apiKey": "K-55667788"},
                                    "api_key_env": "BINANCE_KEY"}}}  # fmt: skip
    with mlflow.start_run():
        uri = log_policy_model(model_zip, "stable_baselines3.PPO", normaliser={}, settings=settings)
    assert uri is not None
    folder = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "dl"))
    text = (Path(folder) / "artifacts" / "settings.json").read_text()
    assert "55667788" not in text
    assert json.loads(text)["data"]["source"] == {
        "options": {"uid": "***", "apiKey": "***"},
        "api_key_env": "BINANCE_KEY",
    }


def test_mlflow_server_credentials_from_the_environment_are_never_logged(
    tmp_path, mlflow_store, monkeypatch
):
    """``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (an MLflow server's basic-auth
    app, README's cluster recipe) stay in the environment: the password's value is masked in
    every later log line and logged text, and a ``user:password@`` tracking URI is masked."""
    import mlflow
    from hydra import compose, initialize_config_dir

    from cryptotrade.config import CONF_DIR, register_configs
    from cryptotrade.launch import tracking

    env = {
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "pw-env-7f3a9c",
        "RAY_AUTH_TOKEN_PATH": "/home/alice/.ray/auth_token",
        "SOME_TOKEN_SWITCH": "true",
    }
    assert redaction.environment_secrets(env) == {"pw-env-7f3a9c"}
    assert "MLFLOW_TRACKING_PASSWORD=***" in redaction.redact_text(
        "env: MLFLOW_TRACKING_PASSWORD=other-value"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-env-7f3a9c")
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root={tmp_path}"])
    with tracking.start_run(cfg, run_name="creds", tags={}) as run:
        tracking.log_text("server said: bad password pw-env-7f3a9c for alice", "said.txt")
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/said.txt")
    assert text == "server said: bad password *** for alice"
    stored = mlflow.MlflowClient(mlflow_store).get_run(run.info.run_id).data
    assert "pw-env-7f3a9c" not in str(stored.params) + str(stored.tags)
    assert redaction.redact_text("http://alice:pw-in-uri@head:5000") == "http://alice:***@head:5000"
