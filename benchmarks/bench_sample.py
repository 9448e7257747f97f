"""Sample benchmark: the sample stage with the chosen drawings' strokes, at N=10,000 and
N=100,000 from one full-size category (150,152 drawings), raw, simplified and binary, in fresh
processes, alternating with the floor: given the chosen drawings' byte spans, read and decode
them (pread + orjson per line; the binary records' strokes parsed), nothing else, which is
what bringing the strokes costs at least (ours also chooses the rows, reads their store
columns, simplifies raw strokes and writes the Parquet).

Prints medians, ratios and peak memory (the whole process tree's resident set)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import OUT, alternate, python
from join_data import DRAWINGS, build

CATEGORY = ("octopus",)


def binary_file(data: Path) -> None:
    """binary/octopus.bin written from the simplified file by pipeline.formats.binary's writer."""
    import orjson

    from pipeline.formats import binary

    path = data / "binary" / "octopus.bin"
    if path.exists():
        return
    path.parent.mkdir(exist_ok=True)
    records = []
    with (data / "simplified" / "octopus.ndjson").open("rb") as lines:
        for number, line in enumerate(lines):
            row = orjson.loads(line)
            strokes = [(xs, ys) for xs, ys in row["drawing"]]
            record = (int(row["key_id"]), row["countrycode"], row["recognized"], number, strokes)
            records.append(binary.Record(*record))
    binary.write_binary(path, records)


def store(data: Path, fmt: str) -> Path:
    from pipeline.stages.join import run_join

    out = OUT / f"sample-store-{fmt}"
    if not out.exists():
        run_join(data, fmt, CATEGORY, out, OUT / f"sample-join-{fmt}.json", verify_sample=0)
    return out


def params(n: int):
    from pipeline.params import SampleParams

    return SampleParams(n=n, seed=42)


def chosen_rows(processed: Path, n: int, columns: list[str]):
    """The rows the stage chooses (its own code), with these store columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.stages import sample

    files = sample.partitions(processed, CATEGORY)
    table = sample.apply_filters(sample.candidates(files), params(n), CATEGORY)
    positions = table.take(pa.array(sample.choose(table, params(n))))["position"]
    part = next(processed.glob("category=*")) / "part-0.parquet"
    return pq.read_table(part, columns=columns).take(positions)


def spans_path(fmt: str, n: int) -> Path:
    return OUT / f"sample-spans-{fmt}-{n}.json"


def run_contender(name: str, fmt: str, n: int, data: Path) -> None:
    from pipeline.store.layout import drawings_object

    processed = OUT / f"sample-store-{fmt}"
    out = OUT / f"sample-{name}-{fmt}-{n}.parquet"
    if name == "ours":
        from pipeline.stages.sample import run_sample

        run_sample(processed, CATEGORY, params(n), out, data, fmt)
        return
    import orjson

    from pipeline.formats import binary

    fd = os.open(data / drawings_object(fmt, CATEGORY[0]), os.O_RDONLY)
    offsets, lengths = json.loads(spans_path(fmt, n).read_text())
    for offset, length in zip(offsets, lengths, strict=True):
        chunk = os.pread(fd, length, offset)
        if fmt == "binary":
            binary.read_strokes(chunk, 0)
        else:
            orjson.loads(chunk)
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--formats", default="raw,simplified,binary")
    parser.add_argument("--run", nargs=3, metavar=("CONTENDER", "FORMAT", "N"))
    args = parser.parse_args()
    data = OUT / f"join-data-{DRAWINGS}"
    if args.run:
        name, fmt, n = args.run
        run_contender(name, fmt, int(n), data)
        return
    build(data)
    binary_file(data)
    results = {}
    for fmt in args.formats.split(","):
        store(data, fmt)
        for n in map(int, args.sizes.split(",")):
            rows = chosen_rows(store(data, fmt), n, ["byte_offset", "byte_length"])
            spans = [rows[name].to_pylist() for name in ("byte_offset", "byte_length")]
            spans_path(fmt, n).write_text(json.dumps(spans))
            contenders = {
                name: [python(), __file__, "--run", name, fmt, str(n)] for name in ("floor", "ours")
            }
            figures = alternate(contenders, args.repetitions)
            floor, ours = (figures[k]["seconds"] for k in ("floor", "ours"))
            print(
                f"\nsample, {fmt}: N={n:,} of {DRAWINGS:,} drawings, median of {args.repetitions}"
            )
            for name, figure in figures.items():
                print(
                    f"  {name:8s} {figure['seconds']:7.2f} s   peak {figure['peak_mib']:6.0f} MiB"
                )
            print(f"  ours / floor = {ours / floor:.2f}x")
            results[f"{fmt}-{n}"] = figures
    (OUT / "bench_sample.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
