"""Builds the reading pages: each script with its comments as prose and its equations rendered beside
the code, the twins side by side, and an index. With --notes, every tag `[NNN key]` in a comment also
shows the passage of the notes it points at, its LaTeX rendered.

    python reading/build.py --notes ../shared/notes        (then open reading/html/index.html)

The pages are static HTML with MathML (latex2mathml) and Pygments' highlighting: no script, nothing
fetched, readable offline. The notes stay on the reader's machine: reading/html/ is not committed.
"""
import argparse
import difflib
import html
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from pygments import lex
from pygments.lexers import PythonLexer
from pygments.token import Comment, Token

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from reading import anchors, mathtext  # noqa: E402

SCRIPTS = ["sac_continuous", "sac_no_reparam", "td3", "ddpg", "dqn", "ddqn", "ppo", "a2c"]
TWINS = [("sac_continuous", "sac_no_reparam"), ("ddpg", "td3"), ("dqn", "ddqn"), ("a2c", "ppo")]
BANNER = re.compile(r"#\s*-{20,}\s*$")
STEP = re.compile(r"^(g\.\d|\d+\.\d+|[a-h]\.|\d+\.)\s+(?=\S)")  # b. g.2 3. 3.6; not the action a, nor a 1 that starts an equation

# The notes are Chinese: each font stack names the CJK fonts of Linux (Debian's fonts-noto-cjk, fonts-wqy-microhei),
# macOS and Windows after the Latin ones, so that the browser takes the Chinese from whichever the reader has.
CJK_SERIF = '"Noto Serif CJK SC", "Source Han Serif SC", "Songti SC", SimSun'
CJK_SANS = '"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei"'
SERIF = f'"Noto Serif", "DejaVu Serif", Georgia, {CJK_SERIF}, {CJK_SANS}, serif'
SANS = f'"DejaVu Sans", Arial, {CJK_SANS}, sans-serif'
MONO = f'"DejaVu Sans Mono", Menlo, Consolas, "Noto Sans Mono CJK SC", {CJK_SANS}, monospace'
PITCH = "20px"  # the code's line pitch: a line of the comment column and of the line numbers is as tall

CSS = """
body { font: 15px/1.5 @serif; margin: 0; color: #1d1d1f; background: #fff; }
header { padding: 10px 24px; border-bottom: 1px solid #ddd; background: #fafafa; }
header a { margin-right: 16px; }
h1 { font-size: 22px; margin: 8px 0; }
h2 { font-size: 17px; margin: 0 0 4px; }
main { padding: 0 24px 48px; }
.block { display: grid; grid-template-columns: minmax(0, 30%) 3.2em minmax(0, 1fr) minmax(0, 21%);
         border-top: 1px solid #eee; }
.block.head { border-top: 2px solid #bbb; margin-top: 18px; }
.prose { grid-column: 1; padding: 6px 14px 10px 0; overflow-wrap: anywhere; overflow-x: auto; }
.prose p { margin: 0 0 6px; }
.ln { grid-column: 2; text-align: right; padding-right: 8px; color: #aaa; font: 12px/@pitch @mono; }
.code { grid-column: 3; font: 12.5px/@pitch @mono; white-space: pre-wrap; overflow-wrap: anywhere;
        background: #f7f7f9; padding: 0 8px; min-width: 0; }
.eq { grid-column: 4; align-self: start; padding: 0 0 0 12px; font-size: 13.5px; line-height: @pitch; overflow-wrap: anywhere;
      color: #333; min-width: 0; }
.fill { grid-column: 3; background: #f7f7f9; }
.eq math, .prose math { font-size: 1.05em; }
.eq math { margin-block: -4px; }  /* a sub- or superscript reaches into the leading: the line stays one pitch tall */
.step { font-weight: bold; color: #6b3fa0; }
.nobr { white-space: nowrap; }
.tag { display: inline-block; font: 12px/1.4 @sans; background: #eef3ff; color: #2446a8;
       border: 1px solid #c9d6ff; border-radius: 4px; padding: 0 5px; margin: -2px 2px; white-space: nowrap; text-decoration: none; }
.passage { border-left: 3px solid #c9d6ff; background: #fbfcff; margin: 6px 0 8px; padding: 4px 10px; max-height: 32em;
           overflow-y: auto; font-size: 13.5px; }
.passage .src { font: 12px @sans; color: #666; }
.passage p { margin: 2px 0; } .passage .h { font-weight: bold; margin-top: 6px; }
.passage pre { white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.5 @mono; background: #f3f3f3; padding: 4px; }
.display { margin: 4px 0; text-align: center; }  /* a formula's pieces, each laid out whole, wrap between them */
.display .row { margin: 2px 0; }
.figure { color: #888; font-style: italic; }
code.tex { color: #a00; }
table.twin { border-collapse: collapse; width: 100%; table-layout: fixed; font: 12.5px/1.5 @mono; }
table.twin td { vertical-align: top; white-space: pre-wrap; overflow-wrap: anywhere; padding: 0 6px; }
table.twin td.n { width: 3em; color: #aaa; text-align: right; }
table.twin tr.changed td.c { background: #fff5d6; } table.twin tr.changed td.n { color: #a07000; }
table.twin tr.only-a td.c.a, table.twin tr.only-b td.c.b { background: #e6ffec; }
table.twin tr.only-a td.n.a, table.twin tr.only-b td.n.b { color: #1a7f37; }
table.twin td.mark { width: 1.2em; color: #a07000; text-align: center; }
.legend span { padding: 0 6px; margin-right: 8px; }
header.sticky { position: sticky; top: 0; z-index: 1; } header.sticky h1 { font-size: 18px; margin: 2px 0; } header.sticky p { margin: 2px 0; }
table.twin td.n { scroll-margin-top: 110px; }
.index td, .index th { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; } .index td:first-child { white-space: nowrap; }
""".replace("@serif", SERIF).replace("@sans", SANS).replace("@mono", MONO).replace("@pitch", PITCH)
STYLE = "".join(f".tok-{k} {{ color: {v} }}\n" for k, v in {
    "k": "#8a2be2", "s": "#1a7f37", "c": "#6a737d; font-style: italic", "n": "#1d1d1f", "f": "#005cc5", "m": "#b35900",
    "d": "#5a8f5a", "b": "#0b6bcb", "o": "#444"}.items())


def token_class(ttype) -> str:
    for t, c in ((Token.String.Doc, "d"), (Token.Keyword, "k"), (Token.String, "s"), (Comment, "c"), (Token.Name.Function, "f"),
                 (Token.Name.Class, "f"), (Token.Name.Builtin, "b"), (Token.Number, "m"), (Token.Operator, "o")):
        if ttype in t:
            return c
    return ""


def highlighted_lines(source: str, drop_comments: bool) -> list[str]:
    """The source's lines as HTML, highlighted by Pygments; with drop_comments, without the trailing comments."""
    lines, current = [], []
    for ttype, value in lex(source, PythonLexer()):
        parts = value.split("\n")
        for k, part in enumerate(parts):
            if k:
                lines.append(current)
                current = []
            if part:
                current.append((ttype, part))
    lines.append(current)
    out = []
    for tokens in lines[:len(source.splitlines())]:
        if drop_comments and any(t in Comment for t, _ in tokens) and any(t not in Comment and v.strip() for t, v in tokens):
            tokens = [(t, v) for t, v in tokens if t not in Comment]
            while tokens and not tokens[-1][1].strip():
                tokens.pop()
        out.append("".join(f'<span class="tok-{c}">{html.escape(v)}</span>' if (c := token_class(t)) else html.escape(v)
                           for t, v in tokens))
    return out


@dataclass
class Row:
    lineno: int
    code: str  # highlighted code, trailing comment removed
    comment: str = ""  # the trailing comment's text
    indent: int = 0  # the line's leading spaces: a wrapped line goes on 4 further in


@dataclass
class Block:
    prose: list[tuple[int, str]] = field(default_factory=list)  # (line number, text) of comments and docstrings
    rows: list[Row] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    heading: bool = False


def docstring_lines(source: str, attributes: bool = False) -> set[int]:
    """Line numbers (1-based) of the module's, classes' and functions' docstrings; with `attributes`, of the
    attributes' docstrings instead (the strings under Args' fields, which tyro shows as --help)."""
    import ast
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            for k, child in enumerate(node.body):
                if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant) and isinstance(child.value.value, str) \
                        and (k == 0) != attributes:
                    lines.update(range(child.lineno, child.end_lineno + 1))
    return lines


def trailing_comments(source: str) -> dict[int, str]:
    """{line: comment text} for the comments that follow code on their line."""
    out, code_on = {}, set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            if tok.start[0] in code_on:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            code_on.update(range(tok.start[0], tok.end[0] + 1))
    return out


def qualified_names(source: str) -> dict[int, str]:
    """{line of a def or class: its name, with its class's in front (Actor.sample)}."""
    import ast
    names = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                names[child.lineno] = prefix + child.name
                walk(child, prefix + child.name + "." if isinstance(child, ast.ClassDef) else prefix + child.name + ".")
    walk(ast.parse(source), "")
    return names


def blocks_of(source: str) -> list[Block]:
    """The script cut into blocks: a run of comment lines (or a docstring) and the code under it, up to the next
    comment line, or the next def or class."""
    lines = source.splitlines()
    docs, trailing, code = docstring_lines(source), trailing_comments(source), highlighted_lines(source, True)
    for n in docstring_lines(source, attributes=True):  # a tag in a flag's docstring: beside it, as a comment's is
        if tags := anchors.TAG.findall(lines[n - 1]):
            trailing[n] = " ".join(f"[{file} {path}]" for file, path in tags)
    names = qualified_names(source)
    blocks, block, after_decorator = [], Block(), False
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            if n in docs:
                block.prose.append((n, ""))
            continue
        is_comment = stripped.startswith("#") and n not in docs
        starts_def = re.match(r"\s*(@|def |class )", line) is not None and n not in docs
        tagged = n in trailing and anchors.TAG.search(trailing[n]) and len(block.rows) > 1
        if (block.rows and (is_comment or (starts_def and not after_decorator) or tagged)) or (block.heading and not is_comment):
            blocks.append(block)
            block = Block()
            if tagged and lines[blocks[-1].rows[-1].lineno - 1].rstrip().endswith(":"):
                block.rows.append(blocks[-1].rows.pop())  # a tagged line starts a block, with the header it belongs to
        after_decorator = stripped.startswith("@") and n not in docs
        if BANNER.match(stripped):
            block.heading = True
        elif is_comment:
            block.prose.append((n, stripped.lstrip("#").strip()))
        elif n in docs:
            block.prose.append((n, stripped.strip('"').strip()))
        else:
            if n in names:
                block.ids.append(names[n])
            block.rows.append(Row(n, code[n - 1], trailing.get(n, ""), len(line) - len(line.lstrip())))
    blocks.append(block)
    return [b for b in blocks if b.prose or b.rows]


class Notes:
    """The reader's notes, when --notes names them: the passages the tags point at, as HTML."""

    def __init__(self, folder: Path | None):
        self.files = {k: anchors.parse_notes(p.read_text(encoding="utf-8")) for k, p in anchors.notes_files(folder).items()} if folder else {}
        self.missing: list[str] = []

    def passage(self, tag: anchors.Tag) -> str | None:
        if not self.files:
            return None
        if tag.file not in self.files:
            self.missing.append(f"{tag.text}: no notes file {tag.file}")
            return None
        lines = self.files[tag.file]
        try:
            start, stop = anchors.resolve(lines, tag.path)
        except anchors.AnchorError as e:
            self.missing.append(f"{tag.text}: {e}")
            return None
        start, end = anchors.passage(lines, start, stop)
        inside_fence = sum(line.text.lstrip().startswith("```") for line in lines[:start]) % 2 == 1  # a passage that starts in a code block
        body = mathtext.notes_html(["```"] * inside_fence + [line.text for line in lines[start:end]])
        return body + ('<p class="src">… (the notes go on)</p>' if end < stop else "")


def tag_id(tag: anchors.Tag) -> str:
    return f"n{tag.lineno}-" + re.sub(r"[^A-Za-z0-9]+", "-", f"{tag.file} {tag.path}").strip("-")


def text_html(lines: list[tuple[int, str]], notes: Notes, passages: list, names: frozenset) -> str:
    """Comment lines, (line number, text), joined into one text (an equation may go on over a line's end): its step
    label, prose and equations; each tag as a link to its passage (with --notes). `names`: the code's names."""
    text, tags = "", []
    for lineno, line in lines:
        text += " " * bool(text)
        tags += [(len(text) + m.start(), len(text) + m.end(), anchors.Tag(m.group(1), m.group(2), lineno, m.group(0)))
                 for m in anchors.TAG.finditer(line)]  # a tag is on one line, as anchors.tags_in finds it
        text += line
    out, pos = [], 0
    for start, end, tag in tags:
        out.append(prose_html(text[pos:start], names))
        trail = re.match(r"[.,;:)]*", text[end:]).group(0)  # kept on the tag's line: no lone "." under it
        label = f"notes {tag.file} · {html.escape(tag.path)}"
        body = notes.passage(tag)
        if body is None:
            link = f'<span class="tag" id="at-{tag_id(tag)}" title="build with --notes DIR to show this place of the notes">{label}</span>'
        else:
            link = f'<a class="tag" id="at-{tag_id(tag)}" href="#{tag_id(tag)}">{label}</a>'
            passages.append(f'<div class="passage" id="{tag_id(tag)}"><div class="src">notes {tag.file} · {html.escape(tag.path)}</div>{body}</div>')
        out.append(f'<span class="nobr">{link}{html.escape(trail)}</span>' if trail else link)
        pos = end + len(trail)
    out.append(prose_html(text[pos:], names))
    return "".join(out)


def prose_html(text: str, names: frozenset) -> str:
    m = STEP.match(text)
    label = f'<span class="step">{html.escape(m.group(1))}</span> ' if m else ""
    return label + mathtext.comment_html(text[m.end():] if m else text, names)


def code_names(source: str) -> frozenset:
    """The code's names with an underscore inside (q_network, next_obs): in a comment they are prose, not a
    symbol with a subscript."""
    return frozenset(t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                     if t.type == tokenize.NAME and "_" in t.string.strip("_"))


def paragraphs(prose: list[tuple[int, str]], notes: Notes, names: frozenset) -> str:
    """Comment lines joined into paragraphs (a new one at a step label or after a sentence's end), passages after."""
    paras, passages, current = [], [], []
    for n, text in prose:
        if current and (STEP.match(text) or not text or current[-1][1].endswith((".", ":", ")"))):
            paras.append(current)
            current = []
        if text:
            current.append((n, text))
    if current:
        paras.append(current)
    out = ["<p>" + text_html(para, notes, passages, names) + "</p>" for para in paras]
    return "".join(out) + "".join(passages)


def script_page(name: str, notes: Notes) -> str:
    source = (ROOT / f"{name}.py").read_text(encoding="utf-8")
    twin = next((f"{a}--{b}.html" for a, b in TWINS if name in (a, b)), None)
    names = code_names(source)
    parts = []
    for block in blocks_of(source):
        ids = "".join(f'<span id="{i}"></span>' for i in block.ids)
        rows, passages = [], []  # the passages of the tags beside the code go under the block's prose
        n = len(block.rows)
        # A comment beside a line goes on down beside the lines under it up to the next comment, so that a comment
        # longer than its line does not push the code apart: the rows it spans keep the code's line pitch, and
        # only the last of them grows if the comment needs more (see .block's rows below).
        commented = [k for k, row in enumerate(block.rows, 1) if row.comment] + [n + 1]
        until = {k: commented[i + 1] for i, k in enumerate(commented[:-1])}
        tracks = ["auto"] * n
        for k, stop in until.items():
            tracks[k - 1:stop - 2] = [f"minmax(auto, {PITCH})"] * (stop - 1 - k)
        for k, row in enumerate(block.rows, 1):
            hang = row.indent + 4  # a wrapped line goes on 4 further in than its own
            rows.append(f'<div class="ln" style="grid-row:{k}" id="L{row.lineno}">{row.lineno}</div>'
                        f'<div class="code" style="grid-row:{k};padding-left:calc(8px + {hang}ch);text-indent:-{hang}ch">{row.code or " "}</div>')
            if row.comment:
                rows.append(f'<div class="eq" style="grid-row:{k} / {until[k]}">{text_html([(row.lineno, row.comment)], notes, passages, names)}</div>')
        prose = paragraphs(block.prose, notes, names) + "".join(passages)
        if block.heading and block.prose:
            prose = "<h2>" + prose.removeprefix("<p>").replace("</p>", "</h2>", 1)
        parts.append(f'<section class="block{" head" if block.heading else ""}" style="grid-template-rows: {" ".join(tracks)} 1fr">'
                     f'<div class="prose" style="grid-row: 1 / span {n + 1}">{ids}{prose}</div>{"".join(rows)}'
                     f'<div class="fill" style="grid-row:{n + 1}"></div></section>')
    nav = f'<a href="index.html">index</a>' + (f'<a href="{twin}">side by side with its twin</a>' if twin else "")
    return page(f"{name}.py", f"<header>{nav}<h1>{name}.py</h1></header><main>{''.join(parts)}</main>")


def twin_page(a: str, b: str) -> str:
    src_a, src_b = ((ROOT / f"{x}.py").read_text(encoding="utf-8") for x in (a, b))
    la, lb = src_a.splitlines(), src_b.splitlines()
    ha, hb = highlighted_lines(src_a, False), highlighted_lines(src_b, False)
    rows, changed = [], 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [("same", i, j) for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        changed += (i2 - i1) + (j2 - j1)
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = (i1 + k if i1 + k < i2 else None), (j1 + k if j1 + k < j2 else None)
            rows.append(("changed" if i is not None and j is not None else "only-a" if i is not None else "only-b", i, j))
    body = []
    for kind, i, j in rows:
        mark = "" if kind == "same" else "≠" if kind == "changed" else "+"
        def cell(x, h, lines, side):
            if x is None:
                return f'<td class="n {side}"></td><td class="c {side}"></td>'
            hang = len(lines[x]) - len(lines[x].lstrip()) + 4  # a wrapped line goes on 4 further in than its own
            return (f'<td class="n {side}" id="{side}{x + 1}">{x + 1}</td>'
                    f'<td class="c {side}" style="padding-left:calc(6px + {hang}ch);text-indent:-{hang}ch">{h[x] or " "}</td>')
        body.append(f'<tr class="{kind}">{cell(i, ha, la, "a")}<td class="mark">{mark}</td>{cell(j, hb, lb, "b")}</tr>')
    legend = ('<p class="legend"><span style="background:#fff5d6">a line that differs</span><span style="background:#e6ffec">'
              f'a line only one of them has</span> {changed} lines differ in all, counted on both sides</p>')
    head = (f'<header class="sticky"><a href="index.html">index</a><a href="{a}.html">{a}.py</a><a href="{b}.html">{b}.py</a>'
            f"<h1>{a}.py beside {b}.py</h1>{legend}</header>")
    table = (f'<table class="twin"><colgroup><col style="width:3em"><col><col style="width:1.2em"><col style="width:3em"><col></colgroup>'
             f'<tr><th></th><th>{a}.py</th><th></th><th></th><th>{b}.py</th></tr>{"".join(body)}</table>')
    return page(f"{a}.py beside {b}.py", f"{head}<main>{table}</main>")


def index_page(notes: Notes, notes_dir: Path | None) -> str:
    rows = []
    for name in SCRIPTS:
        source = (ROOT / f"{name}.py").read_text(encoding="utf-8")
        first = source.split('"""')[1].strip().splitlines()[0]
        tags = anchors.tags_in(source)
        rows.append(f'<tr><td><a href="{name}.html">{name}.py</a></td><td>{html.escape(first)}</td><td>{len(tags)} tags</td></tr>')
    twins = "".join(f'<li><a href="{a}--{b}.html">{a}.py beside {b}.py</a></li>' for a, b in TWINS)
    places: dict[tuple[str, str], list[str]] = {}  # (notes file, place) -> the lines that compute it
    for name in SCRIPTS:
        for tag in anchors.tags_in((ROOT / f"{name}.py").read_text(encoding="utf-8")):
            places.setdefault((tag.file, tag.path), []).append(f'<a href="{name}.html#at-{tag_id(tag)}">{name}.py:{tag.lineno}</a>')
    by_notes = "".join(f'<tr><td>notes {file}</td><td>{html.escape(path)}</td><td>{", ".join(links)}</td></tr>'
                       for (file, path), links in sorted(places.items()))
    with_notes = ("The tags show the passages of the notes in " + html.escape(str(notes_dir))) if notes.files else (
        "Built without the notes: the tags name their places. <code>python reading/build.py --notes DIR</code> shows the passages.")
    return page("Reading beside the notes", f'<header><h1>Reading beside the notes</h1><p>{with_notes}</p></header><main>'
                f'<h2>The scripts</h2><table class="index">{"".join(rows)}</table><h2>The twins, side by side</h2><ul>{twins}</ul>'
                f'<h2>From the notes to the code</h2><table class="index">{by_notes}</table></main>')


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>{html.escape(title)}</title><style>{CSS}{STYLE}</style></head><body>{body}</body></html>\n")


def build(out: Path, notes_dir: Path | None) -> dict:
    """Writes every page into `out`. Returns {"pages": [...], "errors": [...]}: math that did not render and tags
    that found no place in the notes (both empty on a good build)."""
    mathtext.ERRORS.clear()
    notes = Notes(notes_dir)
    out.mkdir(parents=True, exist_ok=True)
    pages = {"index.html": index_page(notes, notes_dir)}
    pages.update({f"{name}.html": script_page(name, notes) for name in SCRIPTS})
    pages.update({f"{a}--{b}.html": twin_page(a, b) for a, b in TWINS})
    for filename, text in pages.items():
        (out / filename).write_text(text, encoding="utf-8")
    return {"pages": list(pages), "errors": mathtext.ERRORS + notes.missing}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notes", type=Path, help="the folder of your notes (000_*.txt ... 004_*.txt): each tag shows its passage")
    p.add_argument("--out", type=Path, default=ROOT / "reading" / "html", help="where the pages go (default: reading/html)")
    args = p.parse_args()
    if args.notes is not None and not anchors.notes_files(args.notes):
        sys.exit(f"error: --notes {args.notes}: no notes files (000_*.txt ... 004_*.txt) there")
    result = build(args.out, args.notes)
    for error in result["errors"]:
        print(f"warning: {error}", file=sys.stderr)
    print(f"wrote {len(result['pages'])} pages to {args.out}: open {args.out / 'index.html'}")


if __name__ == "__main__":
    main()
