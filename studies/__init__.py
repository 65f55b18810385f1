"""Runnable studies: each ``python -m studies.<name> [--quick]`` writes ``studies/out/<name>/``
with a ``report.md``, its data (JSON and CSV) and PNG figures. ``--quick`` is the small run CI
executes; the full run is the one ``docs/studies.md`` quotes."""

STUDIES = ("naas_vs_baselines", "mapping_matters", "flops_vs_latency", "latency_monotonicity", "oneproxy_nb201",
           "depth_first", "zero_cost_proxies", "mcu_fit", "nb201_cosearch", "differentiable_vs_evolution")
