"""The reading pages in a real browser: Debian's headless Chromium, driven by Playwright.

What a reader sees, on every page: each equation laid out (a MathML box of non-zero size, no error mark, and
no raw LaTeX or `$` left in the visible text); each code line once, in order, the rows a whole number of
lines tall; each link landing on its target; nothing wider than a 1280 px window, no formula wider than the
prose, passage or comment that holds it, and no passage of the notes over the code. Built with the notes
where they are (../shared/notes), without them elsewhere. One test, so that one browser does it all (pytest -n 2
would start one per worker). Skips where no Chromium is installed, except in CI (CI=true), where it fails."""
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


def test_the_pages_as_a_reader_sees_them(tmp_path):
    result = build.build(tmp_path, NOTES if anchors.notes_files(NOTES) else None)
    assert not result["errors"], result["errors"]
    with browser.chromium() as page:
        pages = {name: browser.check_page(page, tmp_path / name) for name in result["pages"]}
    problems = []
    for name, seen in pages.items():
        # every equation laid out, no LaTeX left raw
        if not all(w > 0 and h > 0 for w, h in seen["maths"]):
            problems.append(f"{name}: a math element with no size")
        if raw := RAW_TEX.search(seen["text"]):
            problems.append(f"{name}: raw LaTeX in the visible text: ...{seen['text'][max(0, raw.start() - 60):raw.end() + 20]}...")
        # every link lands: within the page, its target at the top of the window; to another page, a page with that id
        problems += [f"{name}: link {href} {state}" for href, state in seen["landed"] if state != "ok"]
        for href in seen["links"]:
            target, _, anchor = href.partition("#")
            if target and not (tmp_path / target).exists():
                problems.append(f"{name} links to a missing page {target}")
            elif target and anchor and f'id="{anchor}"' not in (tmp_path / target).read_text(encoding="utf-8"):
                problems.append(f"{name}: {href} has no target")
        # no horizontal scroll in a 1280 px window, nor inside the prose, a passage or a comment (a formula wider than
        # its box is cut off or needs scrolling there); no passage over the code
        if seen["scrollWidth"] > seen["clientWidth"]:
            problems.append(f"{name}: {seen['scrollWidth']} px wide in a {seen['clientWidth']} px window")
        problems += [f"{name}: wider than its box, {what}" for what in seen["overflow"]]
        problems += [f"{name}: passage {id} over the code" for id in seen["overlaps"]]
        problems += [f"{name}: a formula with an error mark: {text}" for text in seen["merrors"]]
        # the code's lines evenly spaced: every row a whole number of lines tall
        problems += [f"{name}: row of line {line} is {lines:.2f} lines tall" for line, lines in seen["rows"] if abs(lines - round(lines)) > 0.02]
    # every code line once, in order; each twin page shows both files whole
    for script in SCRIPTS:
        if pages[f"{script}.html"]["code"] != code_lines(script):
            problems.append(f"{script}.html: the code lines are not the script's, once each and in order")
    for a, b in build.TWINS:
        seen = pages[f"{a}--{b}.html"]
        for side, name in (("twinA", a), ("twinB", b)):
            shown = [line.rstrip() for line in seen[side] if line.strip()]
            if shown != [line.rstrip() for line in (ROOT / f"{name}.py").read_text(encoding="utf-8").splitlines() if line.strip()]:
                problems.append(f"{a}--{b}.html: {name}.py is not shown whole, in order")
    assert not problems, "\n".join(problems)
    assert sum(len(seen["maths"]) for seen in pages.values()) > 300 and sum(len(seen["landed"]) for seen in pages.values()) > 50
