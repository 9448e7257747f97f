"""Report benchmark at N=10,000 and N=100,000 from one full-size category (real-like drawings:
join_data.py builds it from the real heads): our report (map drawn on a canvas, and with
WebGL) against the plainest Bokeh 3 hover report of the same sample (report_reference.py), side
by side in headless Chromium, alternating, each load in a fresh browser.

Figures per page: bytes per drawing (the page minus the same page with no drawings, over N:
every column the page uses), ready (navigation start to the Bokeh document's `idle`), and
hover latency as a user waits for it: the pointer moved from outside the map onto one of 20
drawings spread over it, from that pointer event to the panel's source holding a drawing within
12 px (ours: `panel`'s key_id[0]; the reference: `panel_image` holding its bitmap), p50 and p95
over all hovers of all loads, and to the end of the frame that repaints the panel; and the
report stage's own time (`run_report`: page, contact sheet, metrics) in a fresh process.
Targets: <= 160 B/drawing at 100,000; ready <= 3 s at 100,000 and <= 1 s at 10,000, and no
slower than the reference; hover p50 and p95 <= the reference's; the stage <= 30 s at 10,000
and <= 5 min at 100,000.
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
from pipeline.reportkit import embedding, likeness
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

# Installed before the page's scripts: records when the document goes idle and, for an armed
# hover, the time from the pointer's move onto the map to the moment the panel's source holds one
# of the drawings within 12 px of the pointer (`shown`: ours, its `panel` source's key_id[0]; the
# reference, its `panel_image` holding that drawing's bitmap), and to the end of the frame that
# repaints the panel after it (`painted`: when the user sees it).
PROBE = """(() => {
  const find = FIND_VIEW;
  window.__bench = {ready: null, start: null, shown: null, painted: null, test: null};
  const bench = window.__bench;
  const ready = () => {
    if (bench.ready !== null) { return; }
    bench.ready = performance.now();
    const doc = Bokeh.documents[0];
    const panel = doc.get_model_by_name('panel') ?? doc.get_model_by_name('panel_image');
    panel.change.connect(() => {
      if (bench.start !== null && bench.shown === null && bench.test()) {
        bench.shown = performance.now() - bench.start;
      }
    });
    // The frame that repaints the panel ends (all its animation callbacks, the map's and
    // tooltip's painting with them) before a message posted from it is handled.
    const channel = new MessageChannel();
    channel.port1.onmessage = () => { bench.painted = performance.now() - bench.start; };
    find('panel_plot').repainted.connect(() => {
      if (bench.shown !== null && bench.painted === null) { channel.port2.postMessage(0); }
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
    if (bench.test !== null && bench.start === null) { bench.start = event.timeStamp; }
  }, {capture: true});
})();""".replace("FIND_VIEW", FIND_VIEW)

# Arms the probe for a hover onto any of the drawings `near` (indices of the `drawings` source).
ARM = """(near) => {
  const doc = Bokeh.documents[0];
  const bench = window.__bench;
  const panel = doc.get_model_by_name('panel');
  if (panel !== null) {
    const keys = doc.get_model_by_name('drawings').data.key_id;
    const wanted = new Set(near.map((i) => String(keys[i])));
    bench.test = () => wanted.has(String(panel.data.key_id[0]));
  } else {
    const image = doc.get_model_by_name('panel_image');
    const pixels = doc.get_model_by_name('bitmaps').data.pixels;
    const side = image.data.image[0].length;
    bench.test = () => {
      const shown = image.data.image[0];
      return near.some((i) => shown.every((v, p) => v === pixels[i * side + p]));
    };
  }
  bench.start = null; bench.shown = null; bench.painted = null;
}"""
NEAR_PX = 12  # a hover shows a drawing within this many pixels of the pointer


def spread_targets(points: np.ndarray, hovers: int, width: int, height: int) -> list[int]:
    """`hovers` drawings spread over the map: the nearest to each cell centre of a grid over the
    drawings' screen extent (within the viewport), each far from the one before."""
    inside = np.flatnonzero(
        (points[:, 0] > 10) & (points[:, 0] < width - 10) & (points[:, 1] < height - 10)
    )
    low, high = points[inside].min(axis=0), points[inside].max(axis=0)
    columns = int(np.ceil(np.sqrt(hovers * 1.25)))
    rows = int(np.ceil(hovers / columns))
    cells = [((c + 0.5) / columns, (r + 0.5) / rows) for r in range(rows) for c in range(columns)]
    targets = []
    for fx, fy in cells[:hovers]:
        centre = low + (high - low) * np.array([fx, fy])
        targets.append(int(inside[np.argmin(((points[inside] - centre) ** 2).sum(axis=1))]))
    return targets


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
        points = embedding.features(drawings_.bitmaps)  # once for both, as the stage does
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


def measure(page_path: Path, hovers: int) -> tuple[float, list[float], list[float]]:
    """Ready time and the hover latencies (ms, to the panel's source, to its repaint) of one
    load in a fresh browser."""
    width, height = 1300, 900
    with browser_page(width=width, height=height) as page:
        page.add_init_script(PROBE)
        page.goto(page_path.as_uri(), timeout=120_000)
        page.wait_for_function("() => window.__bench.ready !== null", timeout=120_000)
        ready = page.evaluate("() => window.__bench.ready")
        points = np.array(page.evaluate(POINT_POSITIONS))
        shown, painted = [], []
        for k in spread_targets(points, hovers, width, height):
            near = np.flatnonzero(((points - points[k]) ** 2).sum(axis=1) <= NEAR_PX**2)
            page.mouse.move(5, 5)  # from outside the map: the move onto it is a fresh hover
            page.evaluate(ARM, near.tolist())
            page.mouse.move(*points[k])
            page.wait_for_function("() => window.__bench.painted !== null", timeout=30_000)
            shown.append(page.evaluate("() => window.__bench.shown"))
            painted.append(page.evaluate("() => window.__bench.painted"))
        assert page.console_errors == [], page.console_errors
        return ready, shown, painted


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def bench(drawings: int, repetitions: int, hovers: int, stage: bool = True) -> dict:
    sample, summary = sample_of(drawings)
    pages = build_pages(sample, summary, drawings, OUT / f"report-pages-{drawings}")
    out = OUT / f"report-stage-{drawings}"
    stage = stage_seconds(sample, summary, drawings, out) if stage else float("nan")
    readies: dict[str, list[float]] = {name: [] for name in pages}
    shown: dict[str, list[float]] = {name: [] for name in pages}
    painted: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(repetitions):
        for name, (path, _) in pages.items():  # alternating, each load in a fresh browser
            ready, to_source, to_paint = measure(path, hovers)
            readies[name].append(ready)
            shown[name] += to_source
            painted[name] += to_paint
    results = {}
    for name, (path, empty_bytes) in pages.items():
        size = path.stat().st_size
        results[name] = {
            "ready_ms": statistics.median(readies[name]),
            "hover_p50_ms": percentile(shown[name], 50),
            "hover_p95_ms": percentile(shown[name], 95),
            "painted_p50_ms": percentile(painted[name], 50),
            "painted_p95_ms": percentile(painted[name], 95),
            "bytes": size,
            "bytes_per_drawing": (size - empty_bytes) / drawings,
        }
    reference = results["reference"]
    print(
        f"\nreport, {drawings:,} drawings of one full-size category, median ready of "
        f"{repetitions} loads, hover percentiles of {repetitions * hovers} hovers (pointer from "
        f"outside the map onto a drawing: to the panel's source holding one within {NEAR_PX} px, "
        f"and to the panel's repaint), in Chromium (report stage: {stage:.1f} s)"
    )
    heading = ("page", "ready", "hover p50", "p95", "painted p50", "p95", "size", "B/drawing")
    print("  {:16s} {:>9s} {:>10s} {:>8s} {:>12s} {:>8s} {:>9s} {:>10s}".format(*heading))
    for name, r in results.items():
        print(
            f"  {name:16s} {r['ready_ms']:7.0f}ms {r['hover_p50_ms']:8.1f}ms "
            f"{r['hover_p95_ms']:6.1f}ms {r['painted_p50_ms']:10.1f}ms "
            f"{r['painted_p95_ms']:6.1f}ms {r['bytes'] / 1e6:7.2f}MB {r['bytes_per_drawing']:10.1f}"
        )
    for name, r in results.items():
        if name != "reference":
            print(
                f"  {name}: ready {r['ready_ms'] / reference['ready_ms']:.2f}x the reference, "
                f"hover p50 {r['hover_p50_ms'] / reference['hover_p50_ms']:.2f}x, "
                f"p95 {r['hover_p95_ms'] / reference['hover_p95_ms']:.2f}x (painted "
                f"{r['painted_p50_ms'] / reference['painted_p50_ms']:.2f}x, "
                f"{r['painted_p95_ms'] / reference['painted_p95_ms']:.2f}x), "
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
