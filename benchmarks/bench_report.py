"""Report benchmark at N=10,000: our report against the plainest Bokeh 3 hover report of the
same sample, side by side in headless Chromium, alternating, each load in a fresh browser.

Figures per page: ready (navigation start to the Bokeh document's `idle`), hover-to-panel
latency (the pointer event's timestamp to the panel plot's next repaint, median over a set of
points), and bytes per drawing beyond the same page with no drawings. Prints medians and the
ratios to the reference; targets: ready and hover <= 1.25x the reference, ready <= 1.5 s,
<= 400 bytes per drawing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from common import OUT, ROOT

sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from browser import FIND_VIEW, POINT_POSITIONS, browser_page
from report_reference import build as build_reference

from pipeline.demo import DEMO_CATEGORIES, generate_demo
from pipeline.join import run_join
from pipeline.params import parse_params
from pipeline.report import ReportInputs, load_inputs, render_html
from pipeline.sample import run_sample

DRAWINGS = 10_000
HOVERS = 25

# Installed before the page's scripts: records when the document goes idle, and the time from
# an armed pointer move to the panel's next repaint.
PROBE = """(() => {
  const find = FIND_VIEW;
  window.__bench = {ready: null, latency: null, armed: false, start: null};
  const bench = window.__bench;
  const ready = () => {
    if (bench.ready !== null) { return; }
    bench.ready = performance.now();
    find('panel').repainted.connect(() => {
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


def sample_of(drawings: int) -> tuple[Path, Path]:
    """A cached N-drawing sample of the demo generator's categories (join.json beside it)."""
    per_category = -(-drawings * 102 // 100 // len(DEMO_CATEGORIES))
    root = OUT / f"report-data-{drawings}"
    sample, summary = root / "sample.parquet", root / "join.json"
    if sample.exists():
        return sample, summary
    print(f"building {drawings:,} drawings in {root} (once)...", flush=True)
    generate_demo(root / "raw", per_category=per_category)
    run_join(root / "raw", "simplified", DEMO_CATEGORIES, root / "store", summary)
    run_sample(
        root / "store", DEMO_CATEGORIES, params(drawings).sample, sample, root / "raw", "simplified"
    )
    return sample, summary


def params(drawings: int, layout: str = "pca"):
    return parse_params(
        {
            "dataset": {
                "base_url": "data/demo",
                "drawings": "simplified",
                "categories": list(DEMO_CATEGORIES),
            },
            "sample": {"n": drawings, "seed": 42},
            "report": {"name": "bench", "layout": layout},
        }
    )


def build_pages(sample: Path, summary: Path, folder: Path) -> dict[str, tuple[Path, int]]:
    """Each contender's page, and its size with no drawings."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = {}
    for layout in ("pca", "random"):
        inputs = load_inputs(sample, summary, params(DRAWINGS, layout))
        empty = ReportInputs(inputs.sample.slice(0, 0), inputs.provenance, inputs.params)
        path = folder / f"ours-{layout}.html"
        path.write_bytes(render_html(inputs).encode("utf-8"))
        pages[f"ours ({layout})"] = (path, len(render_html(empty).encode("utf-8")))
    reference = folder / "reference.html"
    build_reference(sample, reference)
    empty_sample = folder / "empty.parquet"
    pq.write_table(pq.read_table(sample).slice(0, 0), empty_sample)
    build_reference(empty_sample, folder / "reference-empty.html")
    pages["reference"] = (reference, (folder / "reference-empty.html").stat().st_size)
    return pages


def measure(page_path: Path, hovers: int) -> tuple[float, float]:
    """Ready time and median hover latency (ms) of one load in a fresh browser."""
    with browser_page(width=1300, height=900) as page:
        page.add_init_script(PROBE)
        page.goto(page_path.as_uri())
        page.wait_for_function("() => window.__bench.ready !== null")
        ready = page.evaluate("() => window.__bench.ready")
        if hovers == 0:
            return ready, float("nan")
        points = np.array(page.evaluate(POINT_POSITIONS))
        inside = np.flatnonzero((points[:, 0] < 1250) & (points[:, 1] < 880))
        targets = np.random.default_rng(7).choice(inside, size=hovers, replace=False)
        latencies = []
        for k in targets:
            page.evaluate("() => { window.__bench.armed = true; window.__bench.latency = null; }")
            page.mouse.move(*points[k])
            page.wait_for_function("() => window.__bench.latency !== null")
            latencies.append(page.evaluate("() => window.__bench.latency"))
            page.mouse.move(5, 5)  # off the map: the next move is a fresh hover
        assert page.console_errors == [], page.console_errors
        return ready, statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--hovers", type=int, default=HOVERS)
    args = parser.parse_args()
    sample, summary = sample_of(DRAWINGS)
    pages = build_pages(sample, summary, OUT / "report-pages")
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in pages}
    for _ in range(args.repetitions):
        for name, (path, _) in pages.items():
            runs[name].append(measure(path, args.hovers))
    results = {}
    for name, (path, empty_bytes) in pages.items():
        size = path.stat().st_size
        results[name] = {
            "ready_ms": statistics.median(r for r, _ in runs[name]),
            "hover_ms": statistics.median(h for _, h in runs[name]),
            "bytes": size,
            "bytes_per_drawing": (size - empty_bytes) / DRAWINGS,
        }
    reference = results["reference"]
    print(f"\nreport, {DRAWINGS:,} drawings, median of {args.repetitions} loads in Chromium")
    print(f"  {'page':15s} {'ready':>9s} {'hover':>9s} {'size':>10s} {'B/drawing':>10s}")
    for name, r in results.items():
        print(
            f"  {name:15s} {r['ready_ms']:7.0f}ms {r['hover_ms']:7.1f}ms "
            f"{r['bytes'] / 1e6:8.2f}MB {r['bytes_per_drawing']:10.1f}"
        )
    for name, r in results.items():
        if name == "reference":
            continue
        print(
            f"  {name}: ready {r['ready_ms'] / reference['ready_ms']:.2f}x the reference "
            f"(target <= 1.25x, and <= 1500 ms), hover "
            f"{r['hover_ms'] / reference['hover_ms']:.2f}x (target <= 1.25x), "
            f"{r['bytes_per_drawing']:.0f} B/drawing (target <= 400)"
        )
    (OUT / "bench_report.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
