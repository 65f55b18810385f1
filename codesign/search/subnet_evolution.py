"""Mid loop: evolutionary search over the sub-networks of a once-for-all supernet.

Each sub-network is scored by a cost function (EDP on an accelerator, through the mapper and
its shape cache) and an accuracy predictor. Hard mode keeps only sub-networks that meet the
accuracy constraint (sampling and mutating until they do, as in the OFA evolution finder);
soft mode adds a penalty that grows with the accuracy shortfall. The search returns the best
sub-network and the Pareto front of (accuracy, cost) over everything it evaluated.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from models.errors import CodesignError


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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    arch: dict
    accuracy: float
    cost: float

    def to_dict(self) -> dict:
        return {"arch": self.arch, "accuracy": self.accuracy, "cost": self.cost}


@dataclass
class EvolutionResult:
    best: Candidate
    pareto: list = field(default_factory=list)
    history: list = field(default_factory=list)  # best cost per generation
    evaluated: int = 0

    def to_dict(self) -> dict:
        return {"best": self.best.to_dict(), "pareto": [c.to_dict() for c in self.pareto],
                "history": self.history, "evaluated": self.evaluated}


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Non-dominated candidates (higher accuracy, lower cost), sorted by cost."""
    front, best_acc = [], -math.inf
    for c in sorted(cands, key=lambda c: (c.cost, -c.accuracy)):
        if c.accuracy > best_acc:
            front.append(c)
            best_acc = c.accuracy
    return front


def _key(arch: dict) -> str:
    import json
    return json.dumps(arch, sort_keys=True)


def evolve(space, predictor, cost_fn, min_accuracy: float, cfg: EvolutionConfig | None = None,
           progress=None) -> EvolutionResult:
    """Evolutionary search minimizing ``cost_fn(arch)`` subject to predicted accuracy.

    ``space``: a search space (``sample``, ``mutate``, ``crossover``); ``predictor``: has
    ``predict(list_of_archs) -> array``; ``cost_fn``: arch -> positive float.
    """
    cfg = cfg or EvolutionConfig()
    if cfg.mode not in ("hard", "soft"):
        raise CodesignError(f"unknown constraint mode '{cfg.mode}' (hard or soft)")
    rng = np.random.default_rng(cfg.seed)
    seen: dict[str, Candidate] = {}

    def evaluate(archs: list[dict]) -> list[Candidate]:
        new = [a for a in archs if _key(a) not in seen]
        if new:
            accs = predictor.predict(new)
            for a, acc in zip(new, accs):
                seen[_key(a)] = Candidate(arch=a, accuracy=float(acc), cost=float(cost_fn(a)))
        return [seen[_key(a)] for a in archs]

    def fitness(c: Candidate) -> float:
        f = math.log10(c.cost)
        if cfg.mode == "soft":
            f += cfg.penalty * max(0.0, min_accuracy - c.accuracy)
        return f

    def feasible(make) -> Candidate | None:
        for _ in range(cfg.max_tries):
            a = make()
            if cfg.mode == "soft" or float(predictor.predict([a])[0]) >= min_accuracy:
                return evaluate([a])[0]
        return None

    pop = []
    for _ in range(cfg.population):
        c = feasible(lambda: space.sample(rng))
        if c is None:
            raise CodesignError(f"no sub-network reaches accuracy {min_accuracy} in {cfg.max_tries} samples: "
                                f"lower --min-accuracy")
        pop.append(c)
    n_parents = max(1, int(round(cfg.parent_ratio * cfg.population)))
    n_mut = int(round(cfg.mutation_ratio * cfg.population))
    history = []
    for gen in range(cfg.generations):
        pop.sort(key=fitness)
        parents = pop[:n_parents]
        history.append({"generation": gen, "best_cost": parents[0].cost, "best_accuracy": parents[0].accuracy,
                        "population_costs": [c.cost for c in pop]})
        children = []
        for _ in range(n_mut):
            p = parents[rng.integers(len(parents))]
            c = feasible(lambda: space.mutate(p.arch, rng, cfg.mutation_prob))
            if c is not None:
                children.append(c)
        while len(children) < cfg.population - n_parents:
            a = parents[rng.integers(len(parents))]
            b = parents[rng.integers(len(parents))]
            c = feasible(lambda: space.crossover(a.arch, b.arch, rng))
            if c is None:
                break
            children.append(c)
        pop = parents + children
        if progress is not None:
            progress(gen, parents[0])
    pop.sort(key=fitness)
    valid = [c for c in seen.values() if c.accuracy >= min_accuracy]
    best = min(valid, key=lambda c: c.cost) if valid else pop[0]
    history.append({"generation": cfg.generations, "best_cost": best.cost, "best_accuracy": best.accuracy,
                    "population_costs": [c.cost for c in pop]})
    return EvolutionResult(best=best, pareto=pareto_front(list(seen.values())), history=history,
                           evaluated=len(seen))
