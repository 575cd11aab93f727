"""The local Ray's object store is capped by ``ray.object_store_memory`` (Ray's own default,
30 % of RAM, does not fit a container's small ``/dev/shm``), and a search runs under a small one."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.errors import ConfigError
from cryptotrade.launch import strict
from cryptotrade.optimize import workers

register_configs()
SMALL = 100 * 1024 * 1024


def test_the_cap_is_configured_and_reaches_ray_init(monkeypatch):
    import ray

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=ga"])
    assert cfg.ray.object_store_memory == 1_000_000_000  # a cap by default, not 30 % of RAM
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(ray, "cluster_resources", dict)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with workers.ray_session("", 1, cfg.ray.object_store_memory):
        pass
    assert calls[0]["object_store_memory"] == 1_000_000_000
    with workers.ray_session("auto", 1, SMALL):  # a cluster sizes its own store
        pass
    assert "object_store_memory" not in calls[1]


def test_a_store_below_rays_minimum_is_refused_before_the_run():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["ray.object_store_memory=1000000"])
    with pytest.raises(ConfigError, match=r"ray.object_store_memory=1000000 must be >= 78643200"):
        strict.check_config(cfg, ["pipeline"])
    with pytest.raises(ConfigError, match="below Ray's minimum"), workers.ray_session("", 1, 1000):
        pass


@pytest.mark.slow
def test_ray_tasks_run_under_a_small_object_store():
    """A local Ray started with a 100 MB store reports that size and moves a 40 MB array
    through it, twice (the first copy is released, not accumulated)."""
    import ray

    def checksum(array: np.ndarray) -> float:  # local: pickled by value for the worker
        return float(array.sum())

    with workers.ray_session("", 1, SMALL):
        assert ray.cluster_resources()["object_store_memory"] <= SMALL * 1.01
        remote = ray.remote(num_cpus=1)(checksum)
        for _ in range(2):
            data = np.ones(5_000_000)  # 40 MB: more than a third of the store
            assert ray.get(remote.remote(ray.put(data))) == 5_000_000.0
