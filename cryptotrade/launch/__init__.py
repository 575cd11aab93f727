"""Launch plumbing beside the library: what turns a composed config into a tracked run.

| module | role |
|---|---|
| :mod:`~cryptotrade.launch.launcher` | run names, one-line user errors, sweep job failures |
| :mod:`~cryptotrade.launch.launcher_callbacks` | Hydra callback: validate, redact, group sweeps |
| :mod:`~cryptotrade.launch.strict` | unknown keys and out-of-range settings refused |
| :mod:`~cryptotrade.launch.redaction` | credentials masked in configs, logs and tags |
| :mod:`~cryptotrade.launch.sweeps` | a multirun's parent run, job records and exit code |
| :mod:`~cryptotrade.launch.tracking` | the MLflow handle: runs, params, metrics, artifacts |
| :mod:`~cryptotrade.launch.liveness` | runs left RUNNING by dead processes marked FAILED |
| :mod:`~cryptotrade.launch.store` | the shared SQLite store: made once, retried when locked |

Every floor of the package may import these; they import nothing of the library above
:mod:`cryptotrade.errors` (tests/test_layout.py checks it).
"""
