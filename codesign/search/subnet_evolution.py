"""Mid loop: evolutionary search over the sub-networks of a once-for-all supernet.

Each sub-network is scored by a cost function (EDP on an accelerator, through the mapper and
its shape cache) and an accuracy predictor. Hard mode keeps only sub-networks that meet the
accuracy constraint (sampling and mutating until they do, as in the OFA evolution finder);
soft mode adds a penalty that grows with the accuracy shortfall. The search returns the best
sub-network and the Pareto front of (accuracy, cost) over everything it evaluated.

Resource limits (``Limit``: peak SRAM, Flash, ...) are hard in both modes: a sub-network whose
``measure`` exceeds one is never evaluated (nor costed), so it is neither a parent nor on the
front. When no sampled sub-network fits (a tight limit leaves a small corner of the space), the
search first mutates the least-violating ones towards the limits (at most ``repair_tries``
mutations, stopping after ``repair_patience`` without a smaller violation; the violation is the
sum of ``measure / bound - 1`` over the limits exceeded) before it gives up with
``InfeasibleError``. What is selected is set by ``EvolutionConfig.select``: ``"cost"`` (least cost; the
co-search), ``"accuracy"`` (highest accuracy, cost breaking ties; TinyNAS-style search of what
fits a board) or ``"pareto"`` (non-dominated sorting and crowding distance, as NSGA-II; to
cover the whole front). ``max_evaluations`` bounds the distinct sub-networks evaluated.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from models.errors import CodesignError

from .pareto import crowding, front_indices, nondominated_ranks

SELECTS = ("cost", "accuracy", "pareto")
REPAIR_POOL = 10  # least-violating sub-networks the repair mutates


class InfeasibleError(CodesignError):
    """No sampled sub-network meets the accuracy constraint and the resource limits; the message
    says how close the best came (``closest``: the least value of each limited measure)."""

    def __init__(self, message: str, closest: dict | None = None):
        super().__init__(message)
        self.closest = closest or {}


@dataclass
class EvolutionConfig:
    population: int = 100
    parent_ratio: float = 0.25
    mutation_prob: float = 0.1
    mutation_ratio: float = 0.5
    generations: int = 20
    mode: str = "hard"          # "hard" | "soft"
    penalty: float = 50.0       # soft mode: log10-cost units per unit of accuracy shortfall
    max_tries: int = 200        # hard mode: resampling attempts per feasible individual
    seed: int = 0
    select: str = "cost"        # "cost" | "accuracy" | "pareto"
    max_evaluations: int | None = None  # stop after this many distinct sub-networks
    repair_tries: int = 1000    # limits: mutations towards them when no sample fits ...
    repair_patience: int = 400  # ... stopped after this many without a smaller violation

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Limit:
    """A hard bound ``measure[key] <= bound``; ``label``, ``unit`` and ``scale`` (the value shown
    is ``value / scale``) word the messages, e.g. ``Limit("peak_sram_bytes", 262144, "peak SRAM",
    "kB", 1024)``."""

    key: str
    bound: float
    label: str
    unit: str = ""
    scale: float = 1.0

    def show(self, value: float) -> str:
        """``value`` in the limit's unit: ``"412.53 kB"``, ``"256 kB"``."""
        v = f"{value / self.scale:.2f}".rstrip("0").rstrip(".")
        return f"{v} {self.unit}".rstrip()

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    arch: dict
    accuracy: float
    cost: float
    measures: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"arch": self.arch, "accuracy": self.accuracy, "cost": self.cost}
        if self.measures:
            d["measures"] = dict(self.measures)
        return d


@dataclass
class EvolutionResult:
    best: Candidate
    pareto: list = field(default_factory=list)
    history: list = field(default_factory=list)  # best cost per generation
    evaluated: int = 0
    candidates: list = field(default_factory=list)  # every evaluated sub-network, in evaluation order

    def to_dict(self) -> dict:
        return {"best": self.best.to_dict(), "pareto": [c.to_dict() for c in self.pareto],
                "history": self.history, "evaluated": self.evaluated}


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (higher accuracy, lower cost), sorted by cost."""
    idx = front_indices([c.accuracy for c in cands], [c.cost for c in cands])
    return [cands[i] for i in idx]


def _key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


def _pareto_order(pop: list[Candidate]) -> list[Candidate]:
    """``pop`` by non-dominated rank, then by decreasing crowding distance within a rank."""
    if not pop:
        return []
    acc = [c.accuracy for c in pop]
    cost = [math.log10(c.cost) for c in pop]
    ranks = nondominated_ranks(acc, cost)
    crowd = np.zeros(len(pop))
    for r in np.unique(ranks):
        sel = np.flatnonzero(ranks == r)
        crowd[sel] = crowding([acc[i] for i in sel], [cost[i] for i in sel])
    order = sorted(range(len(pop)), key=lambda i: (ranks[i], -crowd[i], i))
    return [pop[i] for i in order]


def evolve(space, predictor, cost_fn, min_accuracy: float, cfg: EvolutionConfig | None = None,
           progress=None, measure=None, limits=()) -> EvolutionResult:
    """Evolutionary search over ``space`` subject to predicted accuracy and resource limits.

    ``space``: a search space (``sample``, ``mutate``, ``crossover``); ``predictor``: has
    ``predict(list_of_archs) -> array``; ``cost_fn``: arch -> positive float; ``measure``: arch ->
    dict of numbers (kept with each candidate; what ``limits``, a sequence of ``Limit``, bound).
    Raises ``InfeasibleError`` when no sub-network meeting them is found to start from.
    """
    cfg = cfg or EvolutionConfig()
    if cfg.mode not in ("hard", "soft"):
        raise CodesignError(f"unknown constraint mode '{cfg.mode}' (hard or soft)")
    if cfg.select not in SELECTS:
        raise CodesignError(f"unknown selection '{cfg.select}' (known: {', '.join(SELECTS)})")
    if cfg.mode == "soft" and cfg.select != "cost":
        raise CodesignError("the soft accuracy constraint penalizes cost: it needs select 'cost'")
    if cfg.max_evaluations is not None and cfg.max_evaluations < 1:
        raise CodesignError(f"max_evaluations must be at least 1, got {cfg.max_evaluations}")
    limits = tuple(limits)
    if limits and measure is None:
        raise CodesignError("resource limits need a measure function")
    rng = np.random.default_rng(cfg.seed)
    seen: dict[str, Candidate] = {}
    measured: dict[str, dict] = {}
    stats = {"sampled": 0, "repaired": 0, "accurate": 0, "best_accuracy": -math.inf,
             "closest": {lim.key: math.inf for lim in limits}}
    near: list[tuple[float, int, dict]] = []  # (violation, order, arch): the least-violating tried
    near_keys: set[str] = set()

    def measures_of(a: dict, k: str) -> dict:
        if k not in measured:
            m = {name: float(v) for name, v in measure(a).items()}
            bad = [name for name, v in m.items() if not math.isfinite(v)]
            if bad:
                raise CodesignError(f"the measure of a sub-network gave a non-finite {bad[0]}")
            measured[k] = m
            for lim in limits:
                stats["closest"][lim.key] = min(stats["closest"][lim.key], m[lim.key])
        return measured[k]

    def violation(m: dict) -> float:
        return sum(max(0.0, m[lim.key] / lim.bound - 1.0) if lim.bound > 0 else max(0.0, m[lim.key] - lim.bound)
                   for lim in limits)

    def note(a: dict, k: str, m: dict) -> None:
        """Keep ``a`` among the ``REPAIR_POOL`` least-violating sub-networks tried."""
        if k in near_keys:
            return
        near.append((violation(m), len(near_keys), a))
        near_keys.add(k)
        near.sort(key=lambda t: (t[0], t[1]))
        del near[REPAIR_POOL:]

    def fits(a: dict, k: str) -> bool:
        m = measures_of(a, k)
        ok = all(m[lim.key] <= lim.bound for lim in limits)
        if not ok:
            note(a, k, m)
        return ok

    def full() -> bool:
        return cfg.max_evaluations is not None and len(seen) >= cfg.max_evaluations

    def evaluate(a: dict, k: str, acc: float) -> Candidate:
        if k not in seen:
            m = measures_of(a, k) if measure is not None else {}
            seen[k] = Candidate(arch=a, accuracy=acc, cost=float(cost_fn(a)), measures=m)
        return seen[k]

    def fitness(c: Candidate):
        if cfg.select == "accuracy":
            return (-c.accuracy, c.cost)
        f = math.log10(c.cost)
        if cfg.mode == "soft":
            f += cfg.penalty * max(0.0, min_accuracy - c.accuracy)
        return f

    def rank(pop: list[Candidate]) -> list[Candidate]:
        return _pareto_order(pop) if cfg.select == "pareto" else sorted(pop, key=fitness)

    def accurate(a: dict, counter: str) -> float | None:
        """The accuracy of ``a``, or None when the hard accuracy constraint rejects it."""
        acc = float(predictor.predict([a])[0])
        stats[counter] += 1
        stats["best_accuracy"] = max(stats["best_accuracy"], acc)
        if cfg.mode == "hard" and acc < min_accuracy:
            return None
        stats["accurate"] += 1
        return acc

    def feasible(make) -> Candidate | None:
        """A sub-network of ``make()`` that meets the constraints (None after ``max_tries``, or
        when the evaluation budget is spent and it would be a new one)."""
        for _ in range(cfg.max_tries):
            a = make()
            k = _key(a)
            acc = accurate(a, "sampled")
            if acc is None:
                continue
            if limits and not fits(a, k):
                continue
            if k not in seen and full():
                return None
            return evaluate(a, k, acc)
        return None

    def repair() -> Candidate | None:
        """Mutations of the least-violating sub-networks tried until one fits (None after
        ``repair_tries``)."""
        best, since = (near[0][0] if near else math.inf), 0
        for _ in range(cfg.repair_tries):
            if not near or since >= cfg.repair_patience:
                return None
            since += 1
            a = space.mutate(near[int(rng.integers(len(near)))][2], rng, cfg.mutation_prob)
            k = _key(a)
            acc = accurate(a, "repaired")
            if acc is None:
                continue
            if fits(a, k):
                return evaluate(a, k, acc)
            if near[0][0] < best:
                best, since = near[0][0], 0
        return None

    pop = []
    for _ in range(cfg.population):
        if full():
            break
        c = feasible(lambda: space.sample(rng))
        if c is None and not pop and limits:
            c = repair()
        if c is None:
            break
        pop.append(c)
    if not pop:
        raise _infeasible(stats, limits, min_accuracy, cfg)
    n_parents = max(1, int(round(cfg.parent_ratio * cfg.population)))
    n_mut = int(round(cfg.mutation_ratio * cfg.population))
    history = []
    for gen in range(cfg.generations):
        if full():
            break
        pop = rank(pop)
        parents = pop[:n_parents]
        history.append({"generation": gen, "best_cost": parents[0].cost, "best_accuracy": parents[0].accuracy,
                        "population_costs": [c.cost for c in pop]})
        children = []
        for _ in range(n_mut):
            p = parents[rng.integers(len(parents))]
            c = feasible(lambda: space.mutate(p.arch, rng, cfg.mutation_prob))
            if c is not None:
                children.append(c)
            elif full():
                break
        while len(children) < cfg.population - n_parents and not full():
            a = parents[rng.integers(len(parents))]
            b = parents[rng.integers(len(parents))]
            c = feasible(lambda: space.crossover(a.arch, b.arch, rng))
            if c is None:
                break
            children.append(c)
        pop = parents + children
        if progress is not None:
            progress(gen, parents[0])
    pop = rank(pop)
    valid = [c for c in seen.values() if c.accuracy >= min_accuracy]
    if not valid:
        best = pop[0]
    elif cfg.select == "cost":
        best = min(valid, key=lambda c: c.cost)
    else:
        best = min(valid, key=lambda c: (-c.accuracy, c.cost))
    history.append({"generation": len(history), "best_cost": best.cost, "best_accuracy": best.accuracy,
                    "population_costs": [c.cost for c in pop]})
    return EvolutionResult(best=best, pareto=pareto_front(list(seen.values())), history=history,
                           evaluated=len(seen), candidates=list(seen.values()))


def _infeasible(stats: dict, limits: tuple, min_accuracy: float, cfg: EvolutionConfig) -> InfeasibleError:
    """The error when not one sub-network tried meets the constraints: how close the best came."""
    n = stats["sampled"] + stats["repaired"]
    if stats["accurate"] == 0:
        return InfeasibleError(f"no sub-network reaches accuracy {min_accuracy} in {n} samples (the best: "
                               f"{stats['best_accuracy']:.4f}): lower --min-accuracy")
    closest = dict(stats["closest"])
    over = [lim for lim in limits if closest[lim.key] > lim.bound]
    tried = (f"{stats['sampled']} sampled and {stats['repaired']} mutated towards the limits"
             if stats["repaired"] else f"{n} sampled")
    of = (tried if cfg.mode == "soft" or stats["accurate"] == n
          else f"{stats['accurate']} of {tried} reach accuracy {min_accuracy}")
    if over:
        what = "; ".join(f"smallest {lim.label} found: {lim.show(closest[lim.key])} > {lim.show(lim.bound)}"
                         for lim in over)
        return InfeasibleError(f"no sub-network fits ({of}): {what}", closest)
    what = "; ".join(f"smallest {lim.label} found: {lim.show(closest[lim.key])} (bound {lim.show(lim.bound)})"
                     for lim in limits)
    return InfeasibleError(f"no sub-network meets all bounds at once ({of}): {what}", closest)
