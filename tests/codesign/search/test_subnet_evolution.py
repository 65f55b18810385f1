"""Evolutionary sub-network search on a toy space with an analytically known optimum."""
import numpy as np
import pytest

from codesign.search.subnet_evolution import Candidate, EvolutionConfig, evolve, pareto_front
from models.errors import CodesignError

GENES, CHOICES = 10, (1, 2, 3)


class ToySpace:
    def sample(self, rng):
        return {"g": [int(v) for v in rng.choice(CHOICES, GENES)]}

    def mutate(self, arch, rng, prob):
        return {"g": [int(rng.choice(CHOICES)) if rng.random() < prob else v for v in arch["g"]]}

    def crossover(self, a, b, rng):
        return {"g": [x if rng.random() < 0.5 else y for x, y in zip(a["g"], b["g"])]}


class ToyPredictor:
    def predict(self, archs):
        return np.array([sum(a["g"]) / (3 * GENES) for a in archs])


def cost(arch):
    return float(sum(v * v for v in arch["g"]))


def test_finds_the_constrained_optimum():
    # accuracy >= 0.6 <=> sum(g) >= 18. Minimizing sum(g^2) at a fixed sum wants equal genes:
    # eight 2s and two 1s: sum 18, cost 8*4 + 2*1 = 34 (any other split of 18 costs more).
    res = evolve(ToySpace(), ToyPredictor(), cost, 0.6, EvolutionConfig(population=60, generations=25, seed=1))
    assert res.best.accuracy >= 0.6
    assert res.best.cost == 34
    assert res.history[-1]["best_cost"] <= res.history[0]["best_cost"]


def test_hard_constraint_is_never_violated_and_seed_is_deterministic():
    cfg = EvolutionConfig(population=30, generations=5, seed=7)
    a = evolve(ToySpace(), ToyPredictor(), cost, 0.7, cfg)
    b = evolve(ToySpace(), ToyPredictor(), cost, 0.7, cfg)
    assert a.to_dict() == b.to_dict()
    assert a.best.accuracy >= 0.7
    for h in a.history:
        assert h["best_accuracy"] >= 0.7


def test_pareto_front_is_exactly_the_non_dominated_set():
    rng = np.random.default_rng(0)
    cands = [Candidate({"i": i}, float(rng.random()), float(rng.random())) for i in range(300)]
    front = pareto_front(cands)
    dominated = lambda c: any(o.accuracy >= c.accuracy and o.cost <= c.cost and
                              (o.accuracy > c.accuracy or o.cost < c.cost) for o in cands)
    brute = sorted((c for c in cands if not dominated(c)), key=lambda c: c.cost)
    assert [c.arch for c in front] == [c.arch for c in brute]


def test_soft_mode_and_errors():
    res = evolve(ToySpace(), ToyPredictor(), cost, 0.6, EvolutionConfig(population=40, generations=15, seed=2, mode="soft"))
    assert res.best.accuracy >= 0.6  # the best reported is always a feasible one when any was seen
    with pytest.raises(CodesignError, match="lower --min-accuracy"):
        evolve(ToySpace(), ToyPredictor(), cost, 1.01, EvolutionConfig(population=5, generations=1, max_tries=20))
    with pytest.raises(CodesignError, match="constraint mode"):
        evolve(ToySpace(), ToyPredictor(), cost, 0.5, EvolutionConfig(mode="maybe"))
