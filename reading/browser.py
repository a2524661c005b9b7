"""The pages as a reader's browser shows them: Debian's Chromium, headless, driven by Playwright.

`chromium()` opens the system's Chromium (never a browser downloaded at run time) with a fresh profile;
`check_page` measures what a reader sees on one page (tests/test_browser.py asserts on it); and

    python reading/browser.py docs/

builds the pages without the notes and keeps the screenshots that the README shows (the notes' text
never goes into the repository, so these pages show the tags, not the passages).
"""
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH = 1280


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium(height: int = 900):
    """A Playwright page in the system's headless Chromium, 1280 px wide, with a profile of its own."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
                                                       viewport={"width": WIDTH, "height": height})
        context.set_default_timeout(180_000)  # a page of MathML loads in seconds, but a loaded machine is slower
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


# One pass over the page in the browser: what the checks need, measured where the reader sees it.
MEASURE = """() => {
  const root = document.documentElement;
  const maths = [...document.querySelectorAll('math')].map(m => { const r = m.getBoundingClientRect(); return [r.width, r.height]; });
  const code = [...document.querySelectorAll('.code')].map(e => e.textContent);
  const twin = side => [...document.querySelectorAll('td.c.' + side)].map(e => e.textContent);
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const landed = [];
  for (const a of document.querySelectorAll('a[href^="#"]')) {
    const target = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
    if (!target) { landed.push([a.getAttribute('href'), 'missing']); continue; }
    a.click();  // a same-page fragment: the browser scrolls to it at once
    const top = target.getBoundingClientRect().top;
    const atBottom = window.scrollY + window.innerHeight >= root.scrollHeight - 2;
    landed.push([a.getAttribute('href'), Math.abs(top) <= 2 || (atBottom && top > 0 && top < window.innerHeight) ? 'ok' : 'top ' + top]);
  }
  window.scrollTo(0, 0);
  // what runs out of its box: a formula, code or a tag wider than the prose, passage or comment that holds it
  const overflow = [];
  for (const box of document.querySelectorAll('.prose, .passage, .eq')) {
    const right = box.getBoundingClientRect().right - parseFloat(getComputedStyle(box).paddingRight);
    const wide = box.scrollWidth > box.clientWidth + 1 ? box
      : [...box.querySelectorAll('math, pre, code, .tag, .display')].find(e => e.getBoundingClientRect().right > right + 1);
    if (wide) overflow.push(box.className + ': ' + wide.textContent.trim().slice(0, 80));
  }
  // a passage of the notes beside the code, never over it
  const overlaps = [...document.querySelectorAll('.passage')].filter(p => {
    const ln = p.closest('section').querySelector('.ln');
    return ln && p.getBoundingClientRect().right > ln.getBoundingClientRect().left + 1;
  }).map(p => p.id);
  // each code row as tall as a whole number of its lines: nothing beside it (a formula, a taller line height)
  // stretches a row by a fraction of a line
  const rows = [...document.querySelectorAll('.code')].map(e =>
    [e.previousElementSibling.textContent, e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)]);
  return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, maths, code, twinA: twin('a'), twinB: twin('b'),
          text: document.body.innerText, links, landed, overflow, overlaps, rows,
          merrors: [...document.querySelectorAll('merror')].map(e => e.textContent)};
}"""


def check_page(page, path: Path) -> dict:
    page.goto(path.resolve().as_uri())
    return page.evaluate(MEASURE)


def screenshots(folder: Path) -> list[Path]:
    """docs/reading-sac_continuous.png (the top of the critic's losses) and docs/reading-sac-twins.png."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from reading import build

    shots = []
    with tempfile.TemporaryDirectory() as out:
        build.build(Path(out), None)
        with chromium(height=1000) as page:
            for name, anchor, target in (("sac_continuous.html", "critic_loss", "reading-sac_continuous.png"),
                                         ("sac_continuous--sac_no_reparam.html", "a204", "reading-sac-twins.png")):
                page.goto((Path(out) / name).as_uri() + "#" + anchor)
                page.evaluate("() => window.scrollBy(0, -8)")
                page.screenshot(path=str(folder / target))
                shots.append(folder / target)
    return shots


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Builds the pages without the notes and writes the README's two screenshots.")
    parser.add_argument("folder", nargs="?", type=Path, default=Path("docs"), help="where the screenshots go (default: docs)")
    folder = parser.parse_args().folder
    if not folder.is_dir():
        sys.exit(f"error: {folder} is not a folder")
    for shot in screenshots(folder):
        print("wrote", shot)
