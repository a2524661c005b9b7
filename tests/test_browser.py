"""The reading pages in a real browser: Debian's headless Chromium, driven by Playwright.

What a reader sees, on every page: each equation laid out (a MathML box of non-zero size, and no raw
LaTeX or `$` left in the visible text); each code line once, in order; each link landing on its target;
and nothing wider than a 1280 px window. Built with the notes where they are (../shared/notes), without
them elsewhere. Skips where no Chromium is installed, except in CI (CI=true), where it fails."""
import os
import re

import pytest

from conftest import ROOT, SCRIPTS
from reading import anchors, browser, build
from test_reading import NOTES, code_lines

if browser.chromium_path() is None:
    if os.environ.get("CI"):
        pytest.fail("CI needs Chromium for the reading pages' test: the README's test command installs it (apt-get install chromium)")
    pytest.skip("no Chromium here (apt-get install chromium)", allow_module_level=True)

RAW_TEX = re.compile(r"\\(frac|mathbb|mathcal|left|right|theta|pi|alpha|gamma|sum|begin|text)\b|\$")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    result = build.build(out, NOTES if anchors.notes_files(NOTES) else None)
    assert not result["errors"], result["errors"]
    with browser.chromium() as page:
        return out, {name: browser.check_page(page, out / name) for name in result["pages"]}


def test_every_equation_is_laid_out(measured):
    _, pages = measured
    for name, seen in pages.items():
        assert all(w > 0 and h > 0 for w, h in seen["maths"]), f"{name}: a math element with no size"
        raw = RAW_TEX.search(seen["text"])
        assert raw is None, f"{name}: raw LaTeX in the visible text: ...{seen['text'][max(0, raw.start() - 60):raw.end() + 20]}..."
    assert sum(len(seen["maths"]) for seen in pages.values()) > 300


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_code_line_once_in_order(measured, script):
    _, pages = measured
    assert pages[f"{script}.html"]["code"] == code_lines(script)


def test_twin_pages_show_both_files_whole(measured):
    _, pages = measured
    for a, b in build.TWINS:
        seen = pages[f"{a}--{b}.html"]
        for side, name in (("twinA", a), ("twinB", b)):
            shown = [line.rstrip() for line in seen[side] if line.strip()]
            assert shown == [line.rstrip() for line in (ROOT / f"{name}.py").read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_link_lands(measured):
    out, pages = measured
    for name, seen in pages.items():
        assert all(state == "ok" for _, state in seen["landed"]), f"{name}: {[x for x in seen['landed'] if x[1] != 'ok']}"
        for href in seen["links"]:
            if not href.startswith("#"):
                page, _, anchor = href.partition("#")
                assert (out / page).exists(), f"{name} links to a missing page {page}"
                if anchor:
                    assert f'id="{anchor}"' in (out / page).read_text(encoding="utf-8"), f"{name}: {href} has no target"


def test_no_horizontal_scroll_at_1280_px(measured):
    _, pages = measured
    for name, seen in pages.items():
        assert seen["scrollWidth"] <= seen["clientWidth"], f"{name}: {seen['scrollWidth']} px wide in a {seen['clientWidth']} px window"
