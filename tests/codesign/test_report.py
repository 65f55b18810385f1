"""Search reports: every number in report.md agrees with result.json; derived numbers obey the
identities they must (energy by data space adds up to the layer's energy, roofline bounds);
the HTML carries the same tables and embeds the figures."""
import base64
import json
import math
import re
import statistics
from pathlib import Path

import pytest

from codesign.report import write_search_report
from codesign.search.rundir import RunDir
from models import Layer, Network
from models.assets import have_asset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RTOL = 6e-4  # the report prints 4 significant digits


def _num(cell: str) -> float:
    return float(cell.rstrip("x"))


def _close(printed: str, value, rtol=RTOL) -> bool:
    if value is None:
        return printed == "-"
    if isinstance(value, str):
        return printed == value
    x = _num(printed)
    return abs(x - value) <= rtol * max(abs(value), 1e-12)


def parse_markdown(text: str) -> dict:
    """{section heading: [tables]}; a table is (header, rows)."""
    sections, current, table = {}, "", None
    for line in text.splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            sections.setdefault(current, [])
            table = None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if table is None:
                table = (cells, [])
                sections.setdefault(current, []).append(table)
            elif not all(set(c) <= {"-"} for c in cells):
                table[1].append(cells)
        else:
            table = None
    return sections


def _flat_numbers(obj, out):
    if isinstance(obj, bool):
        return out
    if isinstance(obj, (int, float)):
        out.append(float(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            _flat_numbers(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _flat_numbers(v, out)
    return out


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory):
    from codesign.search.executors import SerialExecutor
    from codesign.search.outer_loop import SearchConfig, finalize, run_search

    d = tmp_path_factory.mktemp("report")
    nets = [Network("tiny_a", [Layer.conv("c1", 3, 16, 16, 3, stride=2), Layer.conv("dw", 16, 16, 16, 3, groups=16),
                               Layer.conv("pw", 16, 32, 16, 1), Layer.fc("fc", 32, 10)]),
            Network("tiny_b", [Layer.conv("c1", 8, 24, 8, 3), Layer.conv("c2", 24, 24, 8, 3), Layer.fc("fc", 24, 7)])]
    paths = []
    for n in nets:
        p = d / f"{n.name}.json"
        p.write_text(json.dumps(n.to_dict()))
        paths.append(str(p))
    cfg = SearchConfig(workloads=paths, envelope="eyeriss", budget=6, batch=3, seed=1, mapper="heuristic",
                       final_mapper="heuristic")
    run = RunDir(d / "run")
    run.write_config(cfg.to_dict())
    entries = run_search(cfg, run, SerialExecutor(), progress=False)
    write_search_report(run.path, finalize(cfg, run, entries, 1.0))
    return run.path


def test_report_files_and_cli(fixed_run, capsys):
    from codesign.cli import main

    assert main(["report", str(fixed_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {Path(f).name for f in data["files"]}
    assert {"report.md", "report.html", "report.json", "convergence.png"} <= names
    pngs = [f for f in data["files"] if f.endswith(".png")]
    assert len(pngs) == 1 + 3 * 2  # convergence + (per-layer EDP, energy, roofline) per workload
    for f in pngs:
        b = Path(f).read_bytes()
        assert b.startswith(PNG_MAGIC) and len(b) > 10_000
    html = (fixed_run / "report.html").read_text()
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(embedded) == len(pngs)
    assert all(base64.b64decode(e).startswith(PNG_MAGIC) for e in embedded)
    assert "<img" in html and "src='" not in html.replace("src='data:", "")  # nothing outside the file


def test_every_number_in_the_report_agrees_with_result_json(fixed_run):
    result = json.loads((fixed_run / "result.json").read_text())
    md = (fixed_run / "report.md").read_text()
    sec = parse_markdown(md)

    # summary: one row per workload
    head, rows = sec["Summary"][0]
    assert head[0] == "workload" and len(rows) == 2
    for r in rows:
        w = r[0]
        assert _close(r[1], result["found"]["workloads"][w]["total"]["edp"])
        assert _close(r[2], result["baseline"]["workloads"][w]["total"]["edp"])
        for cell, key in zip(r[3:], ("edp_improvement", "speedup", "energy_saving")):
            assert _close(cell, result["ratios"][w][key])
        # the ratios themselves: baseline / found, computed here
        assert _close(r[3], result["baseline"]["workloads"][w]["total"]["edp"] / result["found"]["workloads"][w]["total"]["edp"])
    m = re.search(r"geomean over workloads\): ([0-9.e+-]+)x", md)
    imp = [result["ratios"][w]["edp_improvement"] for w in result["ratios"]]
    assert _close(m.group(1), math.sqrt(imp[0] * imp[1]))  # geomean of two, by hand

    # accelerators side by side
    _, rows = sec["Found accelerator vs baseline"][0]
    table = {r[0]: r[1:] for r in rows}
    for col, acc in enumerate((result["accelerator"], result["baseline"]["accelerator"])):
        pes = math.prod(d["size"] for d in acc["array"])
        rf = acc["rf"]["capacity_bytes"]
        rf = sum(rf.values()) if isinstance(rf, dict) else rf
        glb = acc["glb"]["capacity_bytes"]
        glb = sum(glb.values()) if isinstance(glb, dict) else glb
        assert table["name"][col] == acc["name"]
        assert table["PEs"][col] == str(pes)
        assert _close(table["register file per PE (bytes)"][col], rf)
        assert _close(table["global buffer (bytes)"][col], glb)
        assert _close(table["on-chip total (bytes)"][col], rf * pes + glb)
        dram = acc["dram"]
        words = dram["bw_words_per_cycle"] if "bw_words_per_cycle" in dram else dram["bw_bits_per_cycle"] / 16
        assert _close(table["DRAM bandwidth (words/cycle)"][col], words)
        assert _close(table["GLB read energy (pJ/word)"][col], acc["glb"]["read_energy_pj"])
        for d in acc["array"]:
            assert f"{d['size']}[{'/'.join(d['loops'])}]" in table["PE array [parallel loops]"][col]

    # convergence: per batch of candidates, recomputed here from result.json
    _, rows = sec["Search convergence"][0]
    batch = result["config"]["batch"]
    conv = result["convergence"]
    assert len(rows) == math.ceil(len(conv) / batch)
    best = math.inf
    for it, r in enumerate(rows):
        chunk = [c for c in conv if c["i"] // batch == it]
        ok = [c["edp"] for c in chunk if c["status"] == "ok"]
        best = min([best] + ok)
        assert r[:3] == [str(it), str(len(chunk)), str(len(ok))]
        assert _close(r[3], min(ok)) and _close(r[4], statistics.median_low(ok)) and _close(r[5], best)
    assert _close(rows[-1][5], min(c["edp"] for c in conv if c["status"] == "ok"))

    for w in result["found"]["workloads"]:
        f_nc, b_nc = result["found"]["workloads"][w], result["baseline"]["workloads"][w]
        totals, layers = sec[f"Workload: {w}"][0], sec[f"Workload: {w}"][1]
        t = {r[0]: r[1:] for r in totals[1]}
        for label, key in (("cycles", "cycles"), ("latency (ms)", "latency_ms"), ("energy (pJ)", "energy_pj"),
                           ("EDP (pJ x cycles)", "edp"), ("utilization", "utilization")):
            assert _close(t[label][0], f_nc["total"][key]) and _close(t[label][1], b_nc["total"][key])
        for c in ("mac", "rf", "noc", "glb", "dram"):
            assert _close(t[f"energy {c} (pJ)"][0], f_nc["total"]["energy_by_component"][c])
        for col, nc in enumerate((f_nc, b_nc)):
            # by data space (derived from the mappings) + MAC energy = total energy (stored)
            by_space = sum(_num(t[f"energy {s} (pJ)"][col]) for s in ("weights", "inputs", "outputs"))
            assert by_space + nc["total"]["energy_by_component"]["mac"] == pytest.approx(nc["total"]["energy_pj"], rel=2e-3)
        head, rows = layers
        assert head[0] == "layer" and len(rows) == len(f_nc["layers"])
        clock = result["accelerator"]["clock_mhz"]
        dram_bw = result["accelerator"]["dram"]["bw_words_per_cycle"]
        pes = math.prod(d["size"] for d in result["accelerator"]["array"])
        for r, lf, lb in zip(rows, f_nc["layers"], b_nc["layers"]):
            assert r[0] == lf["name"] and r[7] == lf["bound"]
            for cell, v in zip(r[1:7], (lf["macs"], lf["cycles"], lf["energy_pj"], lf["edp"], lb["edp"], lf["utilization"])):
                assert _close(cell, v)
            assert lf["cycles"] / (clock * 1e3) == pytest.approx(lf["latency_ms"])
            # energy by data space adds up to the stored layer energy (MAC energy has no data space)
            w_, i_, o_ = (_num(c) for c in r[9:12])
            assert w_ + i_ + o_ + lf["energy_by_component"]["mac"] == pytest.approx(lf["energy_pj"], rel=2e-3)
            # roofline: DRAM traffic is at least the compulsory traffic, and the achieved rate is
            # under both roofs
            intensity = _num(r[8])
            assert intensity <= lf["macs"] / lf["lower_bound"]["dram_words"] * (1 + RTOL)
            achieved = lf["macs"] / lf["cycles"]
            assert achieved <= min(pes, intensity * dram_bw) * (1 + RTOL)
            # every DRAM word moves in the start-up, the steady state or the tail (each rounded up)
            words = lf["macs"] / intensity
            assert lf["cycles"] >= math.ceil(words / dram_bw) - 2 - RTOL * lf["cycles"]
            for cell, k in zip(r[12:15], ("pipeline_cycles", "startup_cycles", "tail_cycles")):
                assert _close(cell, lf[k])
            steady = lf["cycles"] - lf["startup_cycles"] - lf["tail_cycles"]
            assert steady >= lf["compute_cycles"] + lf["pipeline_cycles"]


def test_numbers_outside_derived_cells_all_come_from_result_json(fixed_run):
    result = json.loads((fixed_run / "result.json").read_text())
    known = sorted(_flat_numbers(result, []))
    md = (fixed_run / "report.md").read_text()
    # sums and products of stored numbers (checked in the test above)
    derived_rows = {"PEs", "on-chip total (bytes)", "register file per PE (bytes)", "global buffer (bytes)", "energy weights (pJ)", "energy inputs (pJ)", "energy outputs (pJ)"}
    checked = 0
    for section, tables in parse_markdown(md).items():
        for head, rows in tables:
            for r in rows:
                if r[0] in derived_rows:
                    continue
                cells = list(zip(head, r))
                if head[0] == "iteration":
                    cells = cells[3:]  # iteration number and counts
                if head[0] == "layer":
                    cells = [c for c in cells if c[0] not in ("intensity", "energy W (pJ)", "energy I (pJ)",
                                                              "energy O (pJ)")]
                for h, c in cells:
                    if not re.fullmatch(r"-?[0-9.]+(e[+-][0-9]+)?x?", c):
                        continue
                    x = _num(c)
                    assert any(abs(x - v) <= RTOL * max(abs(v), 1e-12) for v in known), (section, h, c)
                    checked += 1
    assert checked > 50


def test_html_tables_equal_markdown_tables(fixed_run):
    md = parse_markdown((fixed_run / "report.md").read_text())
    html = (fixed_run / "report.html").read_text()
    html_tables = re.findall(r"<table data-name='[^']*'>(.*?)</table>", html, flags=re.S)
    md_tables = [t for ts in md.values() for t in ts]
    assert len(html_tables) == len(md_tables)
    for ht, (head, rows) in zip(html_tables, md_tables):
        cells = [re.findall(r"<t[dh]>(.*?)</t[dh]>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", ht)]
        assert cells[0] == head and cells[1:] == rows


def test_report_errors_are_one_line(tmp_path, capsys):
    from codesign.cli import main

    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "no result.json" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth"),
                    reason="needs the OFA accuracy predictor: set CODESIGN_ASSETS to the shared data folder")
def test_subnet_run_report_has_pareto_fronts(tmp_path):
    from codesign.search.executors import SerialExecutor
    from codesign.search.outer_loop import SearchConfig, finalize, run_search

    cfg = SearchConfig(workloads=[], envelope="eyeriss", budget=1, batch=1, seed=0, final_mapper="heuristic",
                       space="ofa-mbv3", min_accuracy=0.78, population=3, generations=1)
    run = RunDir(tmp_path / "run")
    run.write_config(cfg.to_dict())
    write_search_report(run.path, finalize(cfg, run, run_search(cfg, run, SerialExecutor(), progress=False), 1.0))
    result = json.loads((run.path / "result.json").read_text())
    assert (run.path / "pareto.png").read_bytes().startswith(PNG_MAGIC)
    sec = parse_markdown((run.path / "report.md").read_text())
    head, rows = sec["Sub-network"][0]
    pareto = result["found"]["pareto"]
    assert head[:3] == ["accuracy", "EDP (pJ x cycles)", "latency (ms)"] and len(rows) == len(pareto)
    clock = result["accelerator"]["clock_mhz"]
    for r, p in zip(rows, pareto):
        assert _close(r[0], p["accuracy"]) and _close(r[1], p["cost"])
        # latency re-derived by the report: EDP = energy x cycles, cycles = latency x clock
        assert _num(r[1]) / _num(r[3]) / (clock * 1e3) == pytest.approx(_num(r[2]), rel=2e-3)
    # accuracies on the front rise with EDP and meet the constraint
    accs = [p["accuracy"] for p in sorted(pareto, key=lambda p: p["cost"])]
    assert accs == sorted(accs) and min(accs) >= 0.78
