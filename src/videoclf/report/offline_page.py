"""The page template of ``dvc plots show`` / ``dvc plots diff`` with Vega, Vega-Lite and
Vega-Embed inlined, so the page draws with no network (DVC's default loads them from a CDN).

The scripts come from PyPI's ``vl-convert-python`` (one bundle defining ``window.vegaEmbed``,
``vega`` and ``vegaLite``); ``make setup`` writes the template to ``.dvc/plots/offline.html``,
which ``.dvc/config`` names (``plots.html_template``, relative to ``.dvc/``):

    python -m videoclf.offline_plots .dvc/plots/offline.html
"""

from __future__ import annotations

import sys
from pathlib import Path

VEGA_LITE = "v5.20"  # DVC's plot templates use the Vega-Lite v5 schema

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>DVC plots (videoclf, offline)</title>
<!-- Vega, Vega-Lite {vl} and Vega-Embed from vl-convert-python {vlc}, inlined: no network. -->
<script>
{bundle}
</script>
<style>
  body {{ font-family: sans-serif; margin: 1em; }}
  table {{ border-collapse: collapse; }}
  th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
  img {{ max-width: 100%; }}
  .plot {{ margin: 1em 0; }}
</style>
</head>
<body>
"""


def page() -> str:
    """The template text: the bundle inline and DVC's ``{plot_divs}`` marker (no ``{scripts}``,
    so DVC injects no CDN tags)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)  # type: ignore[call-arg]
    head = _PAGE.format(vl=VEGA_LITE, vlc=getattr(vl_convert, "__version__", "?"),
                        bundle=bundle)
    return head + "{plot_divs}\n</body>\n</html>\n"


def write_template(path: Path) -> Path:
    """Write the template (atomically) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page())
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(write_template(Path(sys.argv[1] if len(sys.argv) > 1 else ".dvc/plots/offline.html")))
