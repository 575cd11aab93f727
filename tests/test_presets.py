"""Every experiment preset (``conf/experiment/*.yaml``, globbed: a new preset is covered) composes
with its own data and with ``data=file``, passes the launcher's checks and builds its components;
(slow) each runs end to end under ``debug=default`` through the launcher."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SHARED_DATA, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from cryptotrade.components import build
from cryptotrade.config import CONF_DIR, register_configs
from cryptotrade.data.sources import FileSource
from cryptotrade.launch import strict
from cryptotrade.tasks import TASKS

register_configs()
PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# the preset's own data, and the default file with the debug budgets (a preset's source-specific
# settings must not leak into another source; debug=default must fit every preset's agent)
VARIANTS = {"own_data": [], "file_debug": ["data=file", "debug=default"]}
# searches run end to end, with their own assertions, in tests/optimize/test_presets_slow.py
RUN_ELSEWHERE = {"ga_bitmex", "tune_ppo"}


@pytest.fixture(scope="module")
def conf() -> Iterator[None]:
    """Hydra initialised once on the real config tree for the module's composes."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield


def reads_shared_data(cfg: DictConfig) -> bool:
    """Whether the run (or one of its curriculum stages) reads ``../shared/data``."""
    text = str(OmegaConf.to_container(cfg.data, resolve=True))
    stages = [o for s in cfg.train.curriculum for o in s.get("overrides", [])]
    return "shared/data" in text or any(o.startswith("data=") for o in stages)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_checks_and_builds(conf, preset, variant):
    cfg = compose("config", overrides=[f"experiment={preset}", *VARIANTS[variant]])
    strict.check_config(cfg, TASKS)  # what the launcher refuses before a run opens
    components = build(cfg)
    train = components.train
    for stage in train.curriculum:  # interpolated budgets resolve (experiment=curriculum)
        assert stage["total_timesteps"] == train.total_timesteps
    if variant == "file_debug":
        assert isinstance(components.data.source, FileSource)
        assert components.data.source.path.name == "binance_spot_BTCUSDT_1h.parquet"
        assert components.data.max_bars == 4000 and train.total_timesteps == 2048
        starts = getattr(components.agent, "keywords", {}).get("learning_starts")
        assert starts is None or starts < train.total_timesteps


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_end_to_end_under_debug(conf, preset, tmp_path, mlflow_uri):
    """``python -m cryptotrade.run experiment=<preset> debug=default``: one finished run."""
    import mlflow

    if preset in RUN_ELSEWHERE:
        pytest.skip("a search preset: tests/optimize/test_presets_slow.py runs it end to end")
    overrides = [f"experiment={preset}", "debug=default"]
    if reads_shared_data(compose("config", overrides=overrides)) and not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} (the real exchange data) is not beside the project")
    proc = run_cli(*overrides, f"paths.output_dir={tmp_path / 'out'}", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    client = mlflow.MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("cryptotrade").experiment_id])
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(top) == 1 and top[0].info.status == "FINISHED"
    assert "test/total_return" in top[0].data.metrics
