"""Report benchmark at N=10,000 and N=100,000 from one full-size category (real-like drawings:
join_data.py builds it from the real heads): our report (map drawn on a canvas, and with
WebGL) against the plainest Bokeh 3 hover report of the same sample (report_reference.py), side
by side in headless Chromium, alternating, each load in a fresh browser.

Figures per page: bytes per drawing (the page minus the same page with no drawings, over N:
every column the page uses), ready (navigation start to the Bokeh document's `idle`), and
hover-to-panel latency (the pointer event's timestamp to the panel plot's next repaint) p50 and
p95 over all hovers of all loads; and the report stage's own time (`run_report`: page, contact
sheet, metrics) in a fresh process. Targets: <= 160 B/drawing at 100,000; ready <= 3 s at
100,000 and <= 1 s at 10,000, and no slower than the reference; hover p95 <= 50 ms and <= the
reference's; the stage <= 30 s at 10,000 and <= 5 min at 100,000.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from common import OUT, ROOT

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from browser import FIND_VIEW, POINT_POSITIONS, browser_page
from join_data import DRAWINGS as FULL_SIZE
from join_data import build as build_category
from report_reference import build as build_reference

from pipeline.params import parse_params
from pipeline.reportkit import likeness
from pipeline.stages.join import run_join
from pipeline.stages.report import (
    ReportInputs,
    coordinates_of,
    drawings_of,
    load_inputs,
    render_html,
)
from pipeline.stages.sample import run_sample
from pipeline.store.layout import GOOGLE_BASE_URL

SIZES = (10_000, 100_000)
HOVERS = 20
CATEGORY = "octopus"  # join_data.py's full-size category

# Installed before the page's scripts: records when the document goes idle, and the time from
# an armed pointer move to the panel's next repaint.
PROBE = """(() => {
  const find = FIND_VIEW;
  window.__bench = {ready: null, latency: null, armed: false, start: null};
  const bench = window.__bench;
  const ready = () => {
    if (bench.ready !== null) { return; }
    bench.ready = performance.now();
    find('panel_plot').repainted.connect(() => {
      if (bench.start === null) { return; }
      bench.latency = performance.now() - bench.start;
      bench.start = null;
    });
  };
  const poll = () => {
    const docs = window.Bokeh && window.Bokeh.documents;
    if (docs && docs.length > 0) {
      if (docs[0].is_idle) { ready(); } else { docs[0].idle.connect(ready); }
      return;
    }
    setTimeout(poll, 0);
  };
  poll();
  window.addEventListener("pointermove", (event) => {
    if (bench.armed) { bench.start = event.timeStamp; bench.armed = false; }
  }, {capture: true});
})();""".replace("FIND_VIEW", FIND_VIEW)


def params(drawings: int):
    return parse_params(
        {
            "dataset": {
                "base_url": GOOGLE_BASE_URL,  # real drawings (the heads), not the demo
                "drawings": "simplified",
                "categories": [CATEGORY],
            },
            "sample": {"n": drawings, "seed": 42},
            "report": {"name": "bench"},
        }
    )


def sample_of(drawings: int) -> tuple[Path, Path]:
    """A cached N-drawing sample of the full-size category (join.json beside it)."""
    raw = build_category(OUT / f"join-data-{FULL_SIZE}")
    store, summary = OUT / "report-store", OUT / "report-store.json"
    if not summary.exists():
        print("joining the full-size category (once)...", flush=True)
        run_join(raw, "simplified", (CATEGORY,), store, summary)
    sample = OUT / f"report-sample-{drawings}.parquet"
    if not sample.exists():
        run_sample(store, (CATEGORY,), params(drawings).sample, sample, raw, "simplified")
    return sample, summary


def stage_seconds(sample: Path, summary: Path, drawings: int, out: Path) -> float:
    """The report stage's wall time in a fresh process (page, contact sheet and metrics)."""
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from bench_report import params;"
        "from pipeline.stages.report import run_report;"
        "start = time.perf_counter();"
        "a = sys.argv;"
        "run_report(Path(a[2]), Path(a[3]), params(int(a[4])), Path(a[5]));"
        "print(time.perf_counter() - start)"
    )
    args = [str(Path(__file__).parent), str(sample), str(summary), str(drawings), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return float(done.stdout.strip().splitlines()[-1])


def build_pages(sample: Path, summary: Path, drawings: int, folder: Path) -> dict:
    """Each contender's page and its size with no drawings."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = load_inputs(sample, summary, params(drawings))
    empty = ReportInputs(inputs.sample.slice(0, 0), inputs.provenance, inputs.params)
    drawings_ = drawings_of(inputs)
    cached = OUT / f"report-layout-{drawings}.npz"  # the map and the neighbours of the sample
    if not cached.exists():
        points = likeness.features(drawings_.bitmaps)  # once for both, as the stage does
        coords = coordinates_of(inputs, drawings_, points)
        np.savez(cached, coords=coords, neighbours=likeness.neighbours(points))
    with np.load(cached) as layout:
        coords, near = layout["coords"], layout["neighbours"]
    pages = {}
    for backend in ("canvas", "webgl"):
        path = folder / f"ours-{backend}.html"
        page = render_html(inputs, drawings_, coords, backend, near)
        path.write_bytes(page.encode("utf-8"))
        pages[f"ours ({backend})"] = (path, len(render_html(empty, backend=backend).encode()))
    reference = folder / "reference.html"
    build_reference(sample, reference)
    empty_sample = folder / "empty.parquet"
    pq.write_table(pq.read_table(sample).slice(0, 0), empty_sample)
    build_reference(empty_sample, folder / "reference-empty.html")
    pages["reference"] = (reference, (folder / "reference-empty.html").stat().st_size)
    return pages


def measure(page_path: Path, hovers: int, seed: int) -> tuple[float, list[float]]:
    """Ready time and the hover latencies (ms) of one load in a fresh browser."""
    with browser_page(width=1300, height=900) as page:
        page.add_init_script(PROBE)
        page.goto(page_path.as_uri(), timeout=120_000)
        page.wait_for_function("() => window.__bench.ready !== null", timeout=120_000)
        ready = page.evaluate("() => window.__bench.ready")
        points = np.array(page.evaluate(POINT_POSITIONS))
        inside = np.flatnonzero((points[:, 0] < 1250) & (points[:, 1] < 880))
        targets = np.random.default_rng(seed).choice(inside, size=hovers, replace=False)
        latencies = []
        for k in targets:
            page.evaluate("() => { window.__bench.armed = true; window.__bench.latency = null; }")
            page.mouse.move(*points[k])
            page.wait_for_function("() => window.__bench.latency !== null")
            latencies.append(page.evaluate("() => window.__bench.latency"))
            page.mouse.move(5, 5)  # off the map: the next move is a fresh hover
        assert page.console_errors == [], page.console_errors
        return ready, latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def bench(drawings: int, repetitions: int, hovers: int, stage: bool = True) -> dict:
    sample, summary = sample_of(drawings)
    pages = build_pages(sample, summary, drawings, OUT / f"report-pages-{drawings}")
    out = OUT / f"report-stage-{drawings}"
    stage = stage_seconds(sample, summary, drawings, out) if stage else float("nan")
    readies: dict[str, list[float]] = {name: [] for name in pages}
    latencies: dict[str, list[float]] = {name: [] for name in pages}
    for repetition in range(repetitions):
        for name, (path, _) in pages.items():
            ready, hovered = measure(path, hovers, seed=repetition)
            readies[name].append(ready)
            latencies[name] += hovered
    results = {}
    for name, (path, empty_bytes) in pages.items():
        size = path.stat().st_size
        results[name] = {
            "ready_ms": statistics.median(readies[name]),
            "hover_p50_ms": percentile(latencies[name], 50),
            "hover_p95_ms": percentile(latencies[name], 95),
            "bytes": size,
            "bytes_per_drawing": (size - empty_bytes) / drawings,
        }
    reference = results["reference"]
    print(
        f"\nreport, {drawings:,} drawings of one full-size category, median ready of "
        f"{repetitions} loads, hover percentiles of {repetitions * hovers} hovers, in Chromium "
        f"(report stage: {stage:.1f} s)"
    )
    heading = ("page", "ready", "hover p50", "p95", "size", "B/drawing")
    print("  {:16s} {:>9s} {:>10s} {:>8s} {:>9s} {:>10s}".format(*heading))
    for name, r in results.items():
        print(
            f"  {name:16s} {r['ready_ms']:7.0f}ms {r['hover_p50_ms']:8.1f}ms "
            f"{r['hover_p95_ms']:6.1f}ms {r['bytes'] / 1e6:7.2f}MB {r['bytes_per_drawing']:10.1f}"
        )
    for name, r in results.items():
        if name != "reference":
            print(
                f"  {name}: ready {r['ready_ms'] / reference['ready_ms']:.2f}x the reference, "
                f"hover p95 {r['hover_p95_ms'] / reference['hover_p95_ms']:.2f}x, "
                f"{r['bytes_per_drawing'] / reference['bytes_per_drawing']:.2f}x its bytes"
            )
    return {"stage_s": stage, "pages": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--hovers", type=int, default=HOVERS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--no-stage", action="store_true", help="pages only, no stage timing")
    args = parser.parse_args()
    results = {
        str(n): bench(n, args.repetitions, args.hovers, not args.no_stage) for n in args.sizes
    }
    (OUT / "bench_report.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"  ({time.perf_counter() - started:.0f} s in all; the machine is shared)")
