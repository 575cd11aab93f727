"""``ray.address``: the forms accepted, the Ray Client address refused before a run opens, and
the ``ray.init`` arguments chosen (``ray.init`` is mocked: no Ray starts, fast)."""

from __future__ import annotations

import pytest

from cryptotrade.errors import ConfigError
from cryptotrade.optimize import warm, workers
from cryptotrade.optimize.workers import check_ray_address, make_pool, ray_init_kwargs


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("", ""),
        (None, ""),
        ("auto", "auto"),
        (" 10.0.0.1:6379 ", "10.0.0.1:6379"),
        ("head.local:6380", "head.local:6380"),
        ("127.0.0.1:1", "127.0.0.1:1"),
    ],
)
def test_accepted_addresses(given, kept):
    assert check_ray_address(given) == kept


def test_a_ray_client_address_is_refused_naming_the_working_alternative():
    with pytest.raises(ConfigError) as err:
        check_ray_address("ray://10.0.0.1:10001")
    message = str(err.value)
    assert "\n" not in message and "ray.address=ray://10.0.0.1:10001" in message
    assert "Ray Client" in message and "<head>:6379" in message and "ray.address=auto" in message


@pytest.mark.parametrize(
    "bad",
    ["10.0.0.1", "http://10.0.0.1:6379", "head:port", ":6379", "head:0", "head:70000", "local"],
)
def test_malformed_addresses_are_refused(bad):
    with pytest.raises(ConfigError, match=r"is not a Ray address.*<head>:6379"):
        check_ray_address(bad)


def test_a_search_refuses_the_client_address_in_preflight_before_the_run_opens(monkeypatch):
    """``optimize.preflight`` (the pipeline task's preflight, run before the launcher opens a
    run) checks ``ray.address`` for a search; the optimizer is stubbed to keep this fast."""
    from omegaconf import OmegaConf

    from cryptotrade import optimize
    from cryptotrade.optimize.derive import ConfigDeriver

    class Search:
        def __init__(self) -> None:
            self.space = {"train.lr": [0.0001, 0.001]}

    cfg = ConfigDeriver(OmegaConf.create({"ray": {"address": "ray://h:10001"}}))
    monkeypatch.setattr(optimize, "build", lambda _cfg: Search())
    with pytest.raises(ConfigError, match="Ray Client"):
        optimize.preflight(cfg)
    # no search: the setting is not used, so it is not checked
    monkeypatch.setattr(optimize, "build", lambda _cfg: optimize.NoSearch())
    assert isinstance(optimize.preflight(cfg), optimize.NoSearch)


def test_empty_address_starts_a_private_local_ray_and_a_cluster_is_joined_without_resources():
    local = {"address": "local", "num_cpus": 3, "include_dashboard": False}
    hook = {"runtime_env": {"worker_process_setup_hook": "cryptotrade.optimize.warm.setup_worker"}}
    assert ray_init_kwargs("", 3) == local | {"object_store_memory": None} | hook
    assert ray_init_kwargs("", 3, 10**8)["object_store_memory"] == 10**8
    assert ray_init_kwargs("", None)["num_cpus"] and ray_init_kwargs("", None)["address"] == "local"
    for address in ("auto", "10.0.0.1:6379"):
        kwargs = ray_init_kwargs(address, 3)
        assert kwargs["address"] == address
        assert not {"num_cpus", "num_gpus", "resources"} & set(kwargs)
        assert kwargs["runtime_env"] == hook["runtime_env"]  # warm workers on a cluster too


class FakeRay:
    """``ray.init``/``shutdown``/``is_initialized``/``cluster_resources`` that record calls."""

    def __init__(self) -> None:
        self.inits: list[dict] = []
        self.shutdowns = 0
        self.submitted: list[str] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        self.inits.append(kwargs)

    def shutdown(self) -> None:
        self.shutdowns += 1

    def cluster_resources(self) -> dict:
        return {"CPU": 4.0}

    def remote(self, **_):
        fake = self

        class Remote:
            def __init__(self, fn) -> None:
                self.fn = fn

            def remote(self, *args):
                fake.submitted.append(self.fn.__name__)

        return Remote


@pytest.fixture
def fake_ray(monkeypatch):
    import ray

    fake = FakeRay()
    for name in ("is_initialized", "init", "shutdown", "cluster_resources", "remote"):
        monkeypatch.setattr(ray, name, getattr(fake, name))
    return fake


def test_make_pool_passes_the_chosen_init_arguments(fake_ray, monkeypatch):
    tokens: list[str] = []
    monkeypatch.setattr(workers, "enable_token_auth", tokens.append)
    common = {"ray_enabled": True, "num_cpus": 2, "workers": None, "timeout": None}
    with make_pool(address="", **common) as pool:
        assert pool.workers == 4  # the (fake) cluster's CPUs
    with make_pool(address="127.0.0.1:6379", **common):
        pass
    assert fake_ray.inits == [
        {
            "address": "local",
            "num_cpus": 2,
            "include_dashboard": False,
            "object_store_memory": None,
            "runtime_env": warm.RUNTIME_ENV,
        },
        {"address": "127.0.0.1:6379", "log_to_driver": True, "runtime_env": warm.RUNTIME_ENV},
    ]
    assert fake_ray.submitted == ["_ready"] * 8, "each pool started its 4 workers at once"
    assert fake_ray.shutdowns == 2 and tokens == ["", "127.0.0.1:6379"]
    with pytest.raises(ConfigError, match="Ray Client"), make_pool(address="ray://h:1", **common):
        pass
    assert len(fake_ray.inits) == 2  # refused before Ray starts


def test_token_auth_is_turned_on_for_a_gcs_address_only_when_a_token_is_at_hand(
    monkeypatch, tmp_path
):
    from ray._private.authentication import authentication_token_setup as setup

    calls: list[bool] = []

    def fake_maybe(warn_if_disabled: bool = True) -> bool:
        calls.append(warn_if_disabled)
        return True

    monkeypatch.setattr(setup, "maybe_enable_token_auth_if_token_available", fake_maybe)
    assert workers.enable_token_auth("") is False and workers.enable_token_auth("auto") is False
    assert calls == []  # Ray handles a new local instance and `auto` itself
    assert workers.enable_token_auth("10.0.0.1:6379") is True and calls == [False]


def test_token_auth_follows_ray_with_the_real_token_lookup(monkeypatch, tmp_path):
    """Ray's own check: an explicit RAY_AUTH_MODE is respected; unset with a token at hand
    (RAY_AUTH_TOKEN_PATH here) it becomes ``token``."""
    import os

    from ray._raylet import AuthenticationTokenLoader

    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert workers.enable_token_auth("10.0.0.1:6379") is False
    assert os.environ["RAY_AUTH_MODE"] == "disabled"
    token = tmp_path / "token"
    token.write_text("a" * 32)
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    AuthenticationTokenLoader.instance().reset_cache()
    try:
        assert workers.enable_token_auth("10.0.0.1:6379") is True
        assert os.environ["RAY_AUTH_MODE"] == "token"
    finally:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
        monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
        AuthenticationTokenLoader.instance().reset_cache()
        from ray._raylet import Config

        Config.initialize("")
