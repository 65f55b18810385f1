"""``codesign bench costmodel`` on a small batch: throughput and the ratio to ZigZag's cost model."""
import json

from codesign.cli import main
from codesign.validation.peers import zigzag as zz


def test_bench_costmodel_reports_the_ratio_to_zigzag(capsys):
    assert main(["bench", "costmodel", "--mappings", "2000", "--repeats", "1", "--workload", "squeezenet1_1",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mappings"] >= 2000 and r["evals_per_s"] > 0 and 0 < r["valid_fraction"] < 1
    # without --zigzag-python the ZigZag rate is the checked-in run's
    zrate = zz.load_data()["throughput"]["evaluations_per_second"]
    assert r["zigzag_evals_per_s"] == zrate and "checked-in" in r["zigzag_source"]
    assert r["ratio_to_zigzag"] == r["evals_per_s"] / zrate
