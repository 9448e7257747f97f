"""Rebuild third_party/vega/plots_page.html: the page `dvc plots show` and `dvc plots diff` fill
(.dvc/config plots.html_template), with vega, vega-lite and vega-embed inline so that it draws
offline. DVC's own page loads them from a CDN.

The scripts come from the packages published on the npm registry, at the versions DVC's
default page names (dvc_render/vega.py), fetched with `npm pack` and checked against the
sha512 integrity pinned in third_party/vega/pins.json; each package's LICENSE is kept beside
the page. The page has no `{scripts}` placeholder, so DVC adds no CDN tag to it.

Run as `make plots-template` (needs npm and the registry); the output is committed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "third_party" / "vega"
PINS = OUT_DIR / "pins.json"

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC Plot</title>
<!-- vega, vega-lite and vega-embed inline (licences: third_party/vega/LICENSE-*), so that the
page draws offline. Rebuilt by `make plots-template` (ci/plots_template.py). -->
{scripts}
<style>
table {{ border-spacing: 15px; }}
body {{ font-family: sans-serif; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def integrity(data: bytes) -> str:
    """npm's `dist.integrity` of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(name: str, version: str, work: Path) -> bytes:
    """The package's tarball from the registry, through npm itself."""
    out = subprocess.run(
        ["npm", "pack", "--silent", f"{name}@{version}", "--pack-destination", str(work)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (work / out.splitlines()[-1]).read_bytes()


def member(archive: tarfile.TarFile, path: str) -> str:
    handle = archive.extractfile(f"package/{path}")
    if handle is None:
        raise SystemExit(f"error: {path} missing from the package")
    return handle.read().decode("utf-8")


def script(source: str) -> str:
    """A script tag holding `source`, without its source map comment (no file to load)."""
    lines = [line for line in source.splitlines() if not line.startswith("//# sourceMappingURL=")]
    body = "\n".join(lines)
    if "</script" in body.lower():
        raise SystemExit("error: a script holds '</script' and cannot be inlined")
    return f"<script>\n{body}\n</script>"


def main() -> int:
    pins = json.loads(PINS.read_text(encoding="utf-8"))
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        for pin in pins["packages"]:
            data = fetch(pin["name"], pin["version"], Path(tmp))
            if integrity(data) != pin["integrity"]:
                print(
                    f"error: {pin['name']}@{pin['version']} does not match the integrity in "
                    f"{PINS.relative_to(ROOT)}; check the registry or update the pin",
                    file=sys.stderr,
                )
                return 1
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                scripts.append(script(member(archive, pin["script"])))
                licence = OUT_DIR / f"LICENSE-{pin['name']}"
                licence.write_text(member(archive, "LICENSE"), encoding="utf-8")
    page = PAGE.format(scripts="\n".join(scripts))
    (OUT_DIR / "plots_page.html").write_text(page, encoding="utf-8")
    print(f"wrote {(OUT_DIR / 'plots_page.html').relative_to(ROOT)} ({len(page):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
