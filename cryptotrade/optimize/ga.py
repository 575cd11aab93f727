"""``optimizer=ga``: a DEAP genetic algorithm over ``optimizer.space``, fitness on validation.

Each individual is a list of genes in ``[0, 1]``, one per dimension of the space
(:meth:`~cryptotrade.optimize.space.SearchSpace.decode` turns it into config values). A
generation: tournament selection, simulated-binary crossover and polynomial mutation (both
bounded to ``[0, 1]``, DEAP's real-coded operators), the ``elitism`` best carried over unchanged.
An offspring that decodes to a candidate already scored in an earlier generation, or to one
already in its own generation, is mutated again (every gene, up to ``MAX_REDRAWS`` times), so each
generation after the first trains ``population - elitism`` new candidates unless the space has
run out of distinct points. Without this a small population collapses: tournament winners are
copied unchanged and the generation trains nothing new. The first generation is drawn uniformly.
Each generation logs its ``diversity`` (mean pairwise distance of the genomes over the
largest possible, ``sqrt(genes)``: 0 when all are equal) and its ``distinct`` candidates; the
hall of fame is logged as a table (``ga/hall_of_fame.json``), and every candidate as the trial
table ``ga/trials.json`` with the parameter importance and an Optuna study
(:mod:`~cryptotrade.optimize.importance`). ``generations`` counts evaluated
generations, the first included, so a search trains at most ``population x generations``
candidates.

Fitness is ``optimizer.metric`` (a ``val/`` metric) of the candidate's pipeline run. A candidate
whose evaluation raises or runs past ``eval_timeout`` gets ``penalty`` (finite, so DEAP's
statistics stay finite, and below any valid score) and a FAILED child run. When every candidate
of the first generation (of every generation so far) failed, the search stops with a one-line
:class:`~cryptotrade.errors.SearchError` (the count and the first error) instead of breeding
failures.

Identical points are trained once: scores are cached by point (also across generations and
resumes). After every generation the population, hall of fame, logbook and RNG states are
written atomically to ``<checkpoint_dir>/ga-<fingerprint>.pkl``; scores as they arrive, to
``...scores.pkl``. With ``resume=true`` a search of the same config continues from there and
ends with exactly the result of an uninterrupted search, without re-training scored candidates.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from deap import base, tools

from cryptotrade.errors import ConfigError
from cryptotrade.launch import tracking
from cryptotrade.optimize.importance import log_search_trials
from cryptotrade.optimize.runner import CandidateRunner, report_winner, search_setup
from cryptotrade.optimize.search_state import load_pickle, save_pickle, search_fingerprint
from cryptotrade.optimize.space import SearchSpace
from cryptotrade.optimize.trial import Evaluate, evaluate_candidate
from cryptotrade.optimize.workers import Pool
from cryptotrade.progress import Clock

if TYPE_CHECKING:
    from cryptotrade.components import Components
    from cryptotrade.optimize.derive import ConfigDeriver

log = logging.getLogger(__name__)
# Re-mutations of an offspring that repeats a known candidate before it is accepted as it is
# (a small discrete space can run out of new points).
MAX_REDRAWS = 20


class FitnessMax(base.Fitness):
    """Single-objective fitness, maximised."""

    weights = (1.0,)


class Individual(list):
    """A genome: genes in ``[0, 1]``, one per dimension, with its DEAP fitness."""

    def __init__(self, genes: Any = ()) -> None:
        super().__init__(genes)
        self.fitness = FitnessMax()


class SamePoint:
    """Hall-of-fame similarity: two genomes are the same candidate if they decode equally."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, a: Individual, b: Individual) -> bool:
        return self.space.decode(a) == self.space.decode(b)


OnGeneration = Callable[[int, dict[str, Any]], None]


class GeneticSearch:
    """DEAP GA over the pipeline objective (see the module docstring).

    Args:
        metric: The ``val/`` metric maximised.
        space: ``{config path: domain}`` (see :mod:`cryptotrade.optimize.space`).
        population: Individuals per generation.
        generations: Evaluated generations, the first (random) one included.
        tournament_size: Individuals per selection tournament.
        crossover_prob: Probability that a pair of offspring is crossed.
        crossover_eta: SBX crowding: large values give children close to their parents.
        mutation_prob: Probability that an offspring is mutated.
        mutation_eta: Polynomial-mutation crowding: large values give small steps.
        mutation_indpb: Probability that each gene of a mutated offspring changes.
        elitism: Best individuals copied unchanged into the next generation.
        hall_of_fame: Best distinct candidates kept over the whole search.
        eval_timeout: Seconds one evaluation may take before it is killed; ``None``: no limit.
        penalty: Fitness of a failed or timed-out evaluation (and of a NaN score); must be
            below any valid score of ``metric``.
        workers: Evaluations in parallel; ``None``: Ray's CPUs / ``cpus_per_eval`` (or the
            machine's cores without Ray); ``0``: in the driver, one at a time (no timeout).
        cpus_per_eval: CPUs Ray reserves per evaluation.
        resume: Continue the checkpointed search of this same config, if there is one.
        checkpoint_dir: Folder of the GA checkpoints.
        column_cache: Folder where candidates share indicator columns computed once per
            (indicator, parameters, bars); ``null`` computes every column per candidate.
    """

    def __init__(
        self,
        metric: str = "val/sharpe",
        space: dict[str, Any] | None = None,
        population: int = 8,
        generations: int = 4,
        tournament_size: int = 3,
        crossover_prob: float = 0.7,
        crossover_eta: float = 15.0,
        mutation_prob: float = 0.3,
        mutation_eta: float = 20.0,
        mutation_indpb: float = 0.3,
        elitism: int = 1,
        hall_of_fame: int = 3,
        eval_timeout: float | None = None,
        penalty: float = -1.0e9,
        workers: int | None = None,
        cpus_per_eval: float = 1.0,
        resume: bool = False,
        checkpoint_dir: str = ".cache/search",
        column_cache: str | None = None,
    ) -> None:
        if not metric.startswith("val/"):
            raise ConfigError(
                f"optimizer.metric={metric}: a search selects on the validation split; "
                "use a val/ metric (val/sharpe, val/total_return, ...)"
            )
        checks = {
            "population": population >= 2,
            "generations": generations >= 1,
            "tournament_size": tournament_size >= 1,
            "elitism": 0 <= elitism < population,
            "hall_of_fame": hall_of_fame >= 1,
            "crossover_prob": 0 <= crossover_prob <= 1,
            "mutation_prob": 0 <= mutation_prob <= 1,
            "mutation_indpb": 0 <= mutation_indpb <= 1,
            "eval_timeout": eval_timeout is None or eval_timeout > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"optimizer.{bad[0]}={locals()[bad[0]]} is out of range (population >= 2, "
                "generations >= 1, 0 <= elitism < population, probabilities in [0, 1])"
            )
        self.metric = metric
        self.space = dict(space or {})
        self.population = population
        self.generations = generations
        self.tournament_size = tournament_size
        self.crossover = (crossover_prob, crossover_eta)
        self.mutation = (mutation_prob, mutation_eta, mutation_indpb)
        self.elitism = elitism
        self.hall_of_fame = hall_of_fame
        self.eval_timeout = eval_timeout
        self.penalty = penalty
        self.workers = workers
        self.cpus_per_eval = cpus_per_eval
        self.resume = resume
        self.checkpoint_dir = checkpoint_dir
        self.column_cache = column_cache

    def resume_stem(self, configs: ConfigDeriver) -> Path | None:
        """``<checkpoint_dir>/ga-<fingerprint>`` when a checkpoint of this search is there to
        resume from (the state after a generation, or scores from within the first), else
        ``None`` (:func:`~cryptotrade.optimize.search_state.continued_run`)."""
        stem = Path(self.checkpoint_dir) / f"ga-{search_fingerprint(configs, 'ga')}"
        found = any(stem.with_name(stem.name + s).exists() for s in (".pkl", ".scores.pkl"))
        return stem if found else None

    # ---- launcher entry -----------------------------------------------------------------------
    def run(
        self, configs: ConfigDeriver, output_dir: Path, *, components: Components | None = None
    ) -> dict[str, float]:
        """Search, then evaluate the winner on the test split once, in the parent run.

        ``components`` (those of the base config) are not used: every candidate and the winner
        are built from their own configs, derived by ``configs``.
        """
        with search_setup(self, configs, timeout=self.eval_timeout) as (space, pool):
            hof, _ = self.search(configs, space, pool, output_dir)
            best = hof[0]
            point = space.decode(best)
        return report_winner(configs, point, best.fitness.values[0], output_dir, kind="ga")

    # ---- the algorithm --------------------------------------------------------------------------
    def search(
        self,
        configs: ConfigDeriver,
        space: SearchSpace,
        pool: Pool,
        output_dir: Path,
        *,
        evaluate: Evaluate = evaluate_candidate,
        on_generation: OnGeneration | None = None,
    ) -> tuple[tools.HallOfFame, tools.Logbook]:
        """Run (or resume) the GA; returns the hall of fame and the logbook.

        Args:
            configs: The base config (candidates are derived from it; its seed seeds the GA).
            space: The parsed search space.
            pool: Where candidates run.
            output_dir: The search's folder (candidates under ``candidates/``).
            evaluate: Scores one candidate in a worker (tests inject cheap functions).
            on_generation: Called after each generation is checkpointed, with its number and
                the logged statistics.
        """
        fingerprint = search_fingerprint(configs, "ga")
        folder = Path(self.checkpoint_dir)
        state_path = folder / f"ga-{fingerprint}.pkl"
        scores_path = folder / f"ga-{fingerprint}.scores.pkl"
        runner = CandidateRunner(
            configs, metric=self.metric, penalty=self.penalty, pool=pool, evaluate=evaluate,
            output_dir=output_dir / "candidates", kind="ga", scores_path=scores_path,
            resume=self.resume, column_cache=self.column_cache,
        )  # fmt: skip
        toolbox = self._toolbox()
        continued = _logs_into_recorded_parent(folder / f"ga-{fingerprint}")
        state = load_pickle(state_path) if self.resume else None
        if state is not None and state["fingerprint"] != fingerprint:
            state = None
        if state is None:
            if self.resume:
                log.info("optimizer.resume=true but no checkpoint at %s: a new search", state_path)
            seed = configs.settings.seed
            random.seed(seed)
            np.random.seed(seed)  # noqa: NPY002  (DEAP draws from the global RNGs)
            population = [
                Individual(random.random() for _ in space.paths) for _ in range(self.population)
            ]
            hof = tools.HallOfFame(self.hall_of_fame, similar=SamePoint(space))
            logbook = tools.Logbook()
            start = 0
        else:
            log.info("resuming the GA after generation %d (%s)", state["generation"], state_path)
            population, hof, logbook = state["population"], state["hof"], state["logbook"]
            if not continued:  # a new parent run: it gets the earlier generations' metrics too
                for record in logbook:  # before the RNGs are restored: logging may draw from them
                    runner.log_generation(record)
            random.setstate(state["random"])
            np.random.set_state(state["numpy"])  # noqa: NPY002
            start = state["generation"] + 1
        clock = Clock(self.generations, done=start)
        for gen in range(start, self.generations):
            if gen > 0:
                seen = {k for k, v in runner.cache.items() if v["generation"] < gen}
                population = self._breed(population, toolbox, space, seen)
            # the RNGs after breeding: checkpointed, and restored after the evaluations
            rng = (random.getstate(), np.random.get_state())  # noqa: NPY002
            todo = [ind for ind in population if not ind.fitness.valid]
            scores = runner.score([space.decode(ind) for ind in todo], generation=gen)
            for ind, score in zip(todo, scores, strict=True):
                ind.fitness.values = (score,)
            hof.update(population)
            record = self._record(gen, population, runner, space)
            logbook.record(**record)
            runner.log_generation(record)
            log.info(
                "generation %d/%d: best %.4g, mean %.4g, %d trained, %d cached, %d failed; %s",
                gen + 1, self.generations, record["max"], record["mean"], record["trained"],
                runner.cached_in(gen), record["failed"], clock.summary(gen + 1),
            )  # fmt: skip
            save_pickle(
                {
                    "fingerprint": fingerprint, "generation": gen, "population": population,
                    "hof": hof, "logbook": logbook, "random": rng[0], "numpy": rng[1],
                },
                state_path,
            )  # fmt: skip
            random.setstate(rng[0])
            np.random.set_state(rng[1])  # noqa: NPY002
            runner.raise_if_all_failed()  # every candidate so far failed: stop, do not breed
            if on_generation is not None:
                on_generation(gen, record)
        runner.log_plot(logbook)
        runner.log_hall_of_fame([(space.decode(ind), ind.fitness.values[0]) for ind in hof])
        log_search_trials("ga", space, runner.trial_records(), self.metric)
        return hof, logbook

    def _toolbox(self) -> base.Toolbox:
        toolbox = base.Toolbox()
        bounds = {"low": 0.0, "up": 1.0}  # genes live in [0, 1]
        toolbox.register("mate", tools.cxSimulatedBinaryBounded, eta=self.crossover[1], **bounds)
        toolbox.register(
            "mutate", tools.mutPolynomialBounded, eta=self.mutation[1], indpb=self.mutation[2],
            **bounds,
        )  # fmt: skip
        toolbox.register("select", tools.selTournament, tournsize=self.tournament_size)
        return toolbox

    def _breed(
        self,
        population: list[Individual],
        toolbox: base.Toolbox,
        space: SearchSpace,
        seen: set[str],
    ) -> list[Individual]:
        """The next generation: elites unchanged, the rest by tournament, SBX and mutation.

        ``seen`` holds the point keys scored in earlier generations: an offspring that repeats
        one of them (or another offspring) is mutated again, every gene, up to
        :data:`MAX_REDRAWS` times.
        """
        import copy

        from cryptotrade.optimize.trial import point_key

        elites = [copy.deepcopy(ind) for ind in tools.selBest(population, self.elitism)]
        chosen = toolbox.select(population, len(population) - self.elitism)
        offspring = [copy.deepcopy(ind) for ind in chosen]
        for a, b in zip(offspring[::2], offspring[1::2], strict=False):
            if random.random() < self.crossover[0]:
                toolbox.mate(a, b)
                del a.fitness.values, b.fitness.values
        for ind in offspring:
            if random.random() < self.mutation[0]:
                toolbox.mutate(ind)
                del ind.fitness.values
        taken = set(seen) | {point_key(space.decode(ind)) for ind in elites}
        for ind in offspring:
            key = point_key(space.decode(ind))
            redraws = 0
            while key in taken and redraws < MAX_REDRAWS:
                tools.mutPolynomialBounded(ind, eta=self.mutation[1], low=0.0, up=1.0, indpb=1.0)
                key = point_key(space.decode(ind))
                redraws += 1
            if redraws and ind.fitness.valid:
                del ind.fitness.values  # scored afresh (a cache hit if it is still a known point)
            taken.add(key)
        return elites + offspring

    def _record(
        self, gen: int, population: list[Individual], runner: CandidateRunner, space: SearchSpace
    ) -> dict[str, Any]:
        """Statistics of one generation over its valid (non-penalty) fitnesses, and diversity."""
        from cryptotrade.optimize.trial import point_key

        values = [ind.fitness.values[0] for ind in population]
        valid = [v for v in values if v > self.penalty and math.isfinite(v)]
        stats = (
            {"min": min(valid), "mean": float(np.mean(valid)), "max": max(valid)}
            if valid
            else {"min": self.penalty, "mean": self.penalty, "max": self.penalty}
        )
        return {
            "gen": gen,
            **stats,
            "failed": len(values) - len(valid),
            "trained": runner.trained_in(gen),
            "diversity": diversity(population),
            "distinct": len({point_key(space.decode(ind)) for ind in population}),
        }


def _logs_into_recorded_parent(stem: Path) -> bool:
    """Whether the active MLflow run is the parent this search recorded at ``stem`` (a resume
    continuing in it: the generations it logged are there); records the active run either way."""
    from cryptotrade.optimize.search_state import record_parent, recorded_parent

    run = tracking.active_run_ref()
    if run is None:
        return False
    before = recorded_parent(stem)
    record_parent(stem, run.run_id, run.uri)
    return before is not None and before["run_id"] == run.run_id


def diversity(population: list[Individual]) -> float:
    """Mean pairwise Euclidean distance of the genomes over its maximum ``sqrt(genes)``.

    0 when every genome is the same, up to 1 (two opposite corners of the unit cube).
    """
    genes = np.asarray([list(ind) for ind in population], dtype=float)
    if len(genes) < 2 or genes.shape[1] == 0:
        return 0.0
    diff = genes[:, None, :] - genes[None, :, :]
    dist = np.sqrt((diff**2).sum(axis=-1))
    pairs = len(genes) * (len(genes) - 1)
    return float(dist.sum() / pairs / math.sqrt(genes.shape[1]))
