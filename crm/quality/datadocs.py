"""Data Docs that open without internet: the CDN assets of Great Expectations' pages, shipped locally."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).parent / "assets" / "vendor"
OFFLINE_DIR = "static/offline"

# The CDN addresses in GX's page templates -> the shipped file (relative to ASSETS).
CDN_ASSETS: dict[str, str] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-prefers-dark.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed.min.js",
}

_ASSET_TAG = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"'](https?://[^\"']+)[\"'][^>]*>", re.I)
# Subresource integrity and CORS mode make browsers refuse a script loaded from file://.
_SRI = re.compile(r"\s+(?:integrity|crossorigin)\s*=\s*[\"'][^\"']*[\"']", re.I)


def external_assets(html: str) -> list[str]:
    """Scripts and style sheets a page loads from the network (links to web pages are not counted)."""
    return _ASSET_TAG.findall(html)


def _rewrite(html: str, prefix: str) -> str:
    def local(match: re.Match) -> str:
        tag, url = match.group(0), match.group(1)
        if url not in CDN_ASSETS:
            return tag
        return _SRI.sub("", tag.replace(url, f"{prefix}/{CDN_ASSETS[url]}"))

    return _ASSET_TAG.sub(local, html)


def make_offline(site_dir: Path) -> list[str]:
    """Copy the shipped assets into a built Data Docs site and point its pages at them.

    Returns the external assets left in any page (empty when every CDN address was known).
    """
    target = site_dir / OFFLINE_DIR
    shutil.copytree(ASSETS, target, dirs_exist_ok=True)
    left: list[str] = []
    for page in sorted(site_dir.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(target, page.parent)).as_posix()
        offline = _rewrite(html, prefix)
        if offline != html:
            page.write_text(offline, encoding="utf-8")
        left += external_assets(offline)
    return sorted(set(left))
