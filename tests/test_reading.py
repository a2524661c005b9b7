"""The tags that tie the scripts' comments to the notes, and the reading pages built from them.

The notes live beside the repository (../shared/notes), never in it: the tests that need them skip,
saying why, where they are absent (a user's clone)."""
import io
import re
import tokenize

import pytest

from conftest import ROOT, SCRIPTS
from reading import anchors, build, mathtext

NOTES = ROOT.parent / "shared" / "notes"
needs_notes = pytest.mark.skipif(not anchors.notes_files(NOTES), reason=f"the notes are not at {NOTES} (they are not in the repository)")

# A made-up page of notes in their style: headings, lettered and numbered items, a numbered pseudo-code comment
TOY = """# PART1: 伪代码
## 初始化
1. init θ
2. init φ
## 循环
1. reset
2. **FOR** step:
    a. act
    b. learn:
    1. sample
    2. critic
        i. target $y = r$
        ii. loss
    3. actor
    c. done
# PART2: 损失
## 1. networks
1. actor
## 2. losses
### A. critic
$$
L = (Q - y)^2
$$
### B. actor
title line
text with a phrase once, and twice: twice
```
# 3.2 计算目标值
```
"""


def test_a_tag_finds_the_labelled_place_nearest_the_top():
    lines = anchors.parse_notes(TOY)
    at = lambda path: lines[anchors.resolve(lines, path)[0]].text.strip()  # noqa: E731
    assert at("PART1 b.") == "b. learn:"
    assert at("PART1 b.2") == "2. critic"  # item 2 under b., not the 2. of the initialisation or of the loop
    assert at("PART1 b.2.i") == "i. target $y = r$"
    assert at("PART2 §2 A") == "### A. critic"
    assert at("PART2 A") == "### A. critic"  # A is the only A at its depth
    assert at("PART2 §1") == "## 1. networks"  # the heading, not the item 1. under it
    assert at("title line") == "title line"
    assert at("3.2") == "# 3.2 计算目标值"  # a numbered pseudo-code comment, inside a code fence
    assert at("PART2 phrase once") == "text with a phrase once, and twice: twice"


@pytest.mark.parametrize("path", ["PART1 2", "PART1 b.2.iv", "twice", "nowhere", "PART3"])
def test_a_tag_that_finds_no_place_or_two_is_an_error(path):
    with pytest.raises(anchors.AnchorError):
        anchors.resolve(anchors.parse_notes(TOY), path)


def test_passages_end_with_their_part():
    lines = anchors.parse_notes(TOY)
    start, stop = anchors.resolve(lines, "PART2 A")
    assert [x.text for x in lines[slice(*anchors.passage(lines, start, stop))]] == ["### A. critic", "$$", "L = (Q - y)^2", "$$"]
    start, stop = anchors.resolve(lines, "PART1 b.2")
    assert anchors.passage(lines, start, stop) == (start, stop) and lines[stop].text.strip() == "3. actor"


@needs_notes
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_tag_finds_exactly_one_place_in_the_notes(script):
    notes = {k: anchors.parse_notes(p.read_text(encoding="utf-8")) for k, p in anchors.notes_files(NOTES).items()}
    tags = anchors.tags_in((ROOT / f"{script}.py").read_text(encoding="utf-8"))
    assert len(tags) >= 6, "each script carries the notes' places it computes"
    failures = []
    for tag in tags:
        try:
            anchors.resolve(notes[tag.file], tag.path)
        except (anchors.AnchorError, KeyError) as e:
            failures.append(f"{script}.py:{tag.lineno} {tag.text}: {e}")
    assert not failures, "\n".join(failures)


@needs_notes
def test_the_readme_reading_table_names_places_the_notes_have():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Reading beside the notes"):readme.index("Where the code departs")]
    notes = {k: anchors.parse_notes(p.read_text(encoding="utf-8")) for k, p in anchors.notes_files(NOTES).items()}
    tags = anchors.tags_in(section)
    assert len(tags) >= 30
    for tag in tags:
        anchors.resolve(notes[tag.file], tag.path)


def test_tags_are_only_in_comments_and_docstrings():
    for script in SCRIPTS:
        source = (ROOT / f"{script}.py").read_text(encoding="utf-8")
        comments = {t.start[0] for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
        prose_lines = build.docstring_lines(source) | build.docstring_lines(source, attributes=True) | comments
        assert all(tag.lineno in prose_lines for tag in anchors.tags_in(source)), script


def test_comment_equations_become_mathml():
    mathtext.ERRORS.clear()
    html = mathtext.comment_html("y = r + γ(1 − d)(min_i Q_φ'i(s', a') − α log π_θ(a'|s')), d = termination only")
    # cut after its top-level =, + and commas (so that it can wrap), inside a long bracket too, never inside a short one
    assert re.sub(r"<math.*?</math>", "M", html, flags=re.S) == "M M M M M termination only"
    assert mathtext.equation_pieces("y = r + γ(1 − d)(min_i Q_φ'i(s', a') − α log π_θ(a'|s')), d =") == \
        ["y =", "r +", "γ(1 − d)(min_i Q_φ'i(s', a') −", "α log π_θ(a'|s')),", "d ="]
    assert "<msub><mo>min</mo><mi>i</mi></msub>" in html.replace('<mrow>', '').replace('</mrow>', '')
    assert "<math" not in mathtext.comment_html("the episodes that ended, already reset: log them")
    assert "<math" not in mathtext.comment_html("Defaults are CleanRL's ppo.py and ppo_continuous_action.py.")
    html = mathtext.comment_html("Â_t = δ_t + γλ Â_{t+1}, within the episode")
    assert re.sub(r"<math.*?</math>", "M", html, flags=re.S) == "M M M, within the episode"
    assert not mathtext.ERRORS


def test_an_apostrophe_after_a_word_is_english_and_after_a_symbol_in_an_equation_a_prime():
    mathtext.ERRORS.clear()
    math_as_m = lambda text: re.sub(r"<math.*?</math>", "M", mathtext.comment_html(text), flags=re.S)  # noqa: E731
    # possessives stay prose, with a typographic apostrophe: none of them starts an equation
    assert math_as_m("not in the notes (PPO2's, CleanRL's): V_φ' kept") == "not in the notes (PPO2’s, CleanRL’s): M kept"
    assert math_as_m("within ε of the rollout's V_φ, the data being π_θ's own") == "within M of the rollout’s M, the data being M’s own"
    assert math_as_m("step t's return") == "step t’s return"
    # the primes of an equation stay primes, inside its MathML
    html = mathtext.comment_html("y = r + γ(1 − d) max_a' Q(s', a'; θ⁻)")
    assert "’" not in html and "'" not in re.sub(r"<math.*?</math>", "", html, flags=re.S)
    assert re.findall(r"<mi>&#x02032;</mi>", html) == ["<mi>&#x02032;</mi>"] * 3  # a' under the max, s', a'
    assert "<mi>&#x02032;</mi>" in mathtext.comment_html("V_φ' kept")
    assert not mathtext.ERRORS


def test_a_step_label_is_the_notes_label_not_the_start_of_an_equation():
    assert [build.STEP.match(t).group(1) for t in ("b. a ~ π_θ(·|s)", "g.2 critic update", "3.6 every C steps", "1. ε-greedy")] == \
        ["b.", "g.2", "3.6", "1."]
    assert not any(build.STEP.match(t) for t in ("a ~ π_θ(·|s).", "1 − tanh²(u) = 4/(eᵘ + e⁻ᵘ)²", "a = μ + σ ε"))


def test_a_long_formula_of_the_notes_is_cut_into_pieces_that_wrap():
    mathtext.ERRORS.clear()
    latex = r"y = r + \gamma (1-d) \left( \min_{i=1,2} Q_{\phi'_i}(s', a') - \alpha \log\pi_{\theta}(a'|s') \right) \quad a' \sim \pi(\cdot|s')"
    pieces = mathtext.latex_pieces(latex)
    assert len(pieces) >= 4 and pieces[-1].strip() == r"\pi(\cdot|s')"
    # each piece is whole LaTeX: a cut inside \left( .. \right) closes the fence and opens the next piece's, unseen
    k = next(k for k, p in enumerate(pieces) if p.endswith(r"\right."))
    assert pieces[k].startswith(" \\gamma") and pieces[k + 1].startswith(r"\left. \alpha")
    assert all(p.count(r"\left") == p.count(r"\right") for p in pieces)
    html = mathtext.notes_math(latex, True)
    assert html.count("<math") == len(pieces) and html.count('displaystyle="true"') == len(pieces)
    # never inside braces, nor inside short parentheses
    assert mathtext.latex_pieces(r"\frac{a + b + c + d}{e + f + g + h}") == [r"\frac{a + b + c + d}{e + f + g + h}"]
    assert len(mathtext.latex_pieces(r"\gamma(1 - d + e + f)")) == 1
    # an aligned environment: a line per row
    assert mathtext.notes_math(r"\begin{aligned} a &= b + c \\ d &= e + f \end{aligned}", True).count('<div class="row">') == 2
    assert not mathtext.ERRORS


def test_latex_that_does_not_render_is_counted():
    mathtext.ERRORS.clear()
    assert "<math" in mathtext.notes_math(r"\frac{a}{b} + \mathbb{E}[x]", True)
    assert not mathtext.ERRORS
    mathtext.notes_math(r"\nosuchcommand{x}", False)
    mathtext.notes_math(r"x^{", False)
    assert len(mathtext.ERRORS) == 2


def code_lines(script: str) -> list[str]:
    """The lines a script's page shows as code, in order: not blank, not a comment line, not a docstring, each
    without its trailing comment."""
    source = (ROOT / f"{script}.py").read_text(encoding="utf-8")
    lines, docs = source.splitlines(), build.docstring_lines(source)
    comments = {t.start: t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#") or n in docs:
            continue
        cut = [col for (row, col) in comments if row == n]
        out.append(line[:cut[0]].rstrip() if cut else line)
    return out


def page_code(html: str) -> list[str]:
    import html as h
    cells = re.findall(r'<div class="code"[^>]*>(.*?)</div>', html, re.S)
    return [h.unescape(re.sub(r"<[^>]+>", "", c)) for c in cells]


def test_pages_build_without_the_notes(tmp_path):
    result = build.build(tmp_path, None)
    assert not result["errors"], result["errors"]
    for script in SCRIPTS:
        html = (tmp_path / f"{script}.html").read_text(encoding="utf-8")
        assert page_code(html) == code_lines(script), f"{script}: every code line once, in order"
        assert 'class="passage"' not in html and 'class="tag"' in html
    assert {p.name for p in tmp_path.iterdir()} == set(result["pages"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\(reading/html/([\w-]+\.html)#([\w.]+)\)", readme)
    assert len(links) >= 30
    for page, anchor in links:  # the README's reading table lands on the pages' anchors
        assert f'id="{anchor}"' in (tmp_path / page).read_text(encoding="utf-8"), f"{page}#{anchor}"


@needs_notes
def test_pages_build_with_the_notes_and_render_every_equation(tmp_path):
    result = build.build(tmp_path, NOTES)
    assert not result["errors"], "\n".join(result["errors"])
    for script in SCRIPTS:
        html = (tmp_path / f"{script}.html").read_text(encoding="utf-8")
        tags = anchors.tags_in((ROOT / f"{script}.py").read_text(encoding="utf-8"))
        assert html.count('class="passage"') == len(tags), f"{script}: one passage per tag"
        assert 'class="tex"' not in html and "$" not in re.sub(r"<math.*?</math>", "", html, flags=re.S)
