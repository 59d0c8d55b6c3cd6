"""Data Docs open without internet: every CDN asset of GX's templates is shipped and pages point at it."""

from __future__ import annotations

from pathlib import Path

import great_expectations

from crm.quality.datadocs import ASSETS, CDN_ASSETS, OFFLINE_DIR, external_assets, make_offline

TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"


def test_every_cdn_asset_of_the_installed_gx_templates_is_shipped():
    used = {url for template in TEMPLATES.glob("*.j2") for url in external_assets(template.read_text())}
    assert used, "GX templates moved: the test no longer reads them"
    assert used <= set(CDN_ASSETS), f"not shipped: {sorted(used - set(CDN_ASSETS))}"
    for name in CDN_ASSETS.values():
        assert (ASSETS / name).is_file(), name
    assert list((ASSETS / "fontawesome" / "webfonts").glob("fa-solid-900.woff2"))


def test_pages_at_any_depth_point_at_the_shipped_copy_without_integrity_attributes(tmp_path):
    page = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
        'integrity="sha384-x" crossorigin="anonymous"></script>'
        '<a href="https://greatexpectations.io">GX</a>'
    )
    (tmp_path / "index.html").write_text(page)
    deep = tmp_path / "validations" / "suite" / "run"
    deep.mkdir(parents=True)
    (deep / "result.html").write_text(page)

    assert make_offline(tmp_path) == []

    for html_file in (tmp_path / "index.html", deep / "result.html"):
        html = html_file.read_text()
        assert external_assets(html) == []
        assert "integrity" not in html and "crossorigin" not in html
        assert 'href="https://greatexpectations.io"' in html  # plain links stay
    assert '"../../../static/offline/bootstrap.min.js"' in (deep / "result.html").read_text()
    assert (tmp_path / OFFLINE_DIR / "bootstrap.min.js").is_file()


def test_an_unknown_cdn_asset_is_reported_not_hidden(tmp_path):
    (tmp_path / "index.html").write_text('<script src="https://cdn.example.com/new.js"></script>')
    assert make_offline(tmp_path) == ["https://cdn.example.com/new.js"]
