"""Does the `dvc plots show` page draw with no network? A real headless Chromium says so.

Opens the page with every host name unresolvable (so nothing can come from a CDN), lets its
scripts run, and counts the Vega plots drawn (``class="marks"`` elements) against the plots
the page asks for (``vegaEmbed`` calls). Needs a ``chromium`` binary (Debian: apt install
chromium); the test suite checks the page's script sources instead, which needs no browser.

    dvc plots show && python benchmarks/plots_offline.py dvc_plots/index.html
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page", nargs="?", default="dvc_plots/index.html")
    ap.add_argument("--browser",
                    default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    if not args.browser:
        print("no chromium found (apt install chromium)", file=sys.stderr)
        return 2
    page = Path(args.page).resolve()
    wanted = len(re.findall(r"vegaEmbed\(", page.read_text()))
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([args.browser, "--headless", "--no-sandbox", "--disable-gpu",
                            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
                            "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
                           capture_output=True, text=True, timeout=180)
    drawn = r.stdout.count('class="marks"')
    print(f"{page}: {drawn} of {wanted} vega plots drawn with no network")
    return 0 if wanted and drawn == wanted else 1


if __name__ == "__main__":
    sys.exit(main())
