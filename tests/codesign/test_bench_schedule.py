"""``codesign bench schedule`` on a small network: timings and the Stream ratio it reports."""
import json

from codesign.cli import main
from codesign.validation.peers import stream_compare as sc


def test_bench_schedule_times_the_search_and_the_stream_comparison(capsys):
    assert main(["bench", "schedule", "--workload", "mobilenet_v2", "--resolution", "32", "--max-layers", "3",
                 "--optimizer", "heuristic", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["workload"] == "mobilenet_v2" and r["layers"] == 53 and 1 <= r["stacks"] < 53
    assert r["cold_s"] > 0 and r["warm_s"] > 0
    # the same search from the CLI finds the same schedule
    assert main(["schedule", "--accelerator", "eyeriss", "--workload", "mobilenet_v2", "--resolution", "32",
                 "--max-layers", "3", "--optimizer", "heuristic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["edp"] == r["edp"]
    s = r["stream"]
    theirs = [run["wall_seconds"] for run in sc.load_data()["runs"]]
    assert s["schedules"] == 3 and s["stream_s_per_schedule"] == [min(theirs), max(theirs)]
    assert s["speedup_cold"] == min(theirs) / s["ours_cold_s_per_schedule"]


def test_bench_schedule_text(capsys):
    assert main(["bench", "schedule", "--workload", "mobilenet_v2", "--resolution", "32", "--max-layers", "2",
                 "--optimizer", "heuristic", "--no-stream"]) == 0
    out = capsys.readouterr().out
    assert "schedule search:" in out and "warm" in out and "Stream" not in out
