"""Thin command line: `python -m pipeline <stage>`, the commands dvc.yaml runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import cpus
from pipeline.errors import PipelineError
from pipeline.params import Params, load_params
from pipeline.store import category_list, layout
from pipeline.store.stage_lock import stage_lock

# The join's summary with every category (the report reads it); its headline is the DVC metric.
JOIN_SUMMARY = layout.REPORTS_DIR / "join_categories.json"


def _after_download(args: argparse.Namespace) -> Params:
    """The parameters of a stage after the download, whose list of categories they must match
    (dvc.yaml tracks that list, not the parameter: pipeline/store/category_list.py)."""
    params = load_params(args.params)
    category_list.check(layout.RAW_DIR, params.dataset.categories)
    return params


def _download(args: argparse.Namespace) -> None:
    from pipeline.stages.download import run_download

    run_download(load_params(args.params).dataset, layout.RAW_DIR)


def _join(args: argparse.Namespace) -> None:
    from pipeline.stages.join import run_join
    from pipeline.stats import headline

    params = _after_download(args)
    dataset = params.dataset
    summary = run_join(
        layout.RAW_DIR,
        dataset.drawings,
        dataset.categories,
        layout.PROCESSED_DIR,
        JOIN_SUMMARY,
        params.join.verify_sample,
        workers=cpus(),
    )
    headline.write(layout.REPORTS_DIR / "join.json", headline.join_figures(summary))
    print(f"joined {summary['drawings']:,} drawings into {layout.PROCESSED_DIR}")


def _profile(args: argparse.Namespace) -> None:
    from pipeline.stages.profile import run_profile
    from pipeline.stats import headline

    params = _after_download(args)
    profile = run_profile(
        layout.PROCESSED_DIR,
        params.dataset.categories,
        layout.PROFILE_DIR,
        layout.REPORTS_DIR / "profile_categories.json",
        layout.REPORTS_DIR / "profile_recognized.json",
        params.profile.min_drawings,
    )
    figures = headline.profile_figures(profile, params.profile.min_drawings)
    headline.write(layout.REPORTS_DIR / "profile.json", figures)
    print(f"profiled {profile.num_rows:,} (category, country) pairs into {layout.PROFILE_DIR}")


def _sample(args: argparse.Namespace) -> None:
    from pipeline.stages.sample import run_sample

    params = _after_download(args)
    sample = run_sample(
        layout.PROCESSED_DIR,
        params.dataset.categories,
        params.sample,
        layout.SAMPLE_PATH,
        layout.RAW_DIR,
        params.dataset.drawings,
    )
    print(f"sampled {sample.num_rows:,} drawings into {layout.SAMPLE_PATH}")


def _report(args: argparse.Namespace) -> None:
    from pipeline.stages.report import run_report

    params = _after_download(args)
    run_report(
        layout.SAMPLE_PATH,
        JOIN_SUMMARY,
        params,
        layout.REPORTS_DIR,
        layout.RAW_DIR / "manifest",
        layout.PROFILE_DIR / "profile.parquet",
        layout.MAP_PATH,
    )
    print(f"wrote {layout.REPORTS_DIR / params.report.name}.html and .png, and {layout.MAP_PATH}")


def _demo(args: argparse.Namespace) -> None:
    from pipeline.demo.generate import generate_demo

    generate_demo(Path(args.out))
    print(f"wrote the demo dataset to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="parameters file")
    stages = parser.add_subparsers(dest="stage", required=True)
    stages.add_parser(
        "download", help="fetch every category's bitmaps and drawings (those not held yet)"
    ).set_defaults(run=_download)
    stages.add_parser("join", help="join bitmaps with metadata into Parquet").set_defaults(
        run=_join
    )
    stages.add_parser("profile", help="profile every category per country").set_defaults(
        run=_profile
    )
    stages.add_parser("sample", help="choose the drawings for the report").set_defaults(run=_sample)
    stages.add_parser("report", help="build the HTML report and metrics").set_defaults(run=_report)
    demo = stages.add_parser("demo", help="regenerate the bundled demo dataset")
    demo.add_argument("--out", default=str(layout.DEMO_DIR))
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.stage == "demo":
            args.run(args)
        else:
            with stage_lock(args.stage):
                args.run(args)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{args.stage}: interrupted; its outputs are written whole or not at all: "
            "run `dvc repro` again",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
