"""Math for the reading pages: the scripts' Unicode equations and the notes' LaTeX, as MathML.

The comments write equations in Unicode (`y = r + γ(1 − d) max_a' Q(s', a'; θ⁻)`); `comment_html` finds
the spans of a comment that are equations, turns each into LaTeX and then into MathML with latex2mathml
(Chromium lays MathML out itself: no script, no font download). `notes_html` renders a passage of the
notes: their `$...$` and `$$...$$` LaTeX as MathML, and the little Markdown they use. Every conversion
that fails, or that leaves a LaTeX command unknown to latex2mathml, is counted in `ERRORS`.
"""
import html
import re
import unicodedata

from latex2mathml.converter import convert

ERRORS: list[str] = []  # the LaTeX that did not convert, with why

SYMBOLS = {
    "−": "-", "←": r"\leftarrow ", "→": r"\to ", "↦": r"\mapsto ", "≈": r"\approx ", "≥": r"\geq ", "≤": r"\leq ",
    "≠": r"\neq ", "·": r"\cdot ", "×": r"\times ", "‖": r"\| ", "∇": r"\nabla ", "Σ": r"\sum ", "Π": r"\prod ",
    "∈": r"\in ", "∝": r"\propto ", "∞": r"\infty ", "⊙": r"\odot ", "~": r"\sim ", "±": r"\pm ", "…": r"\ldots ",
    "√": r"\sqrt ", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "\\": r"\backslash ", "|": r"\mid ",
}
SUPERSCRIPTS = {"²": "2", "³": "3", "¹": "1", "⁰": "0", "⁻": "-", "⁺": "+", "ᵀ": "T", "ᵘ": "u", "ⁿ": "n", "ᵏ": "k", "ⁱ": "i", "ᵗ": "t"}
ACCENTS = {"\u0303": "tilde", "\u0302": "hat", "\u0304": "bar"}
FUNCTIONS = {"log": r"\log", "exp": r"\exp", "min": r"\min", "max": r"\max", "tanh": r"\tanh",
             "mean": r"\operatorname{mean}",
             "argmax": r"\operatorname{argmax}", "argmin": r"\operatorname{argmin}", "clip": r"\operatorname{clip}",
             "softplus": r"\operatorname{softplus}", "relu": r"\operatorname{relu}", "huber": r"\operatorname{huber}",
             "std": r"\operatorname{std}", "var": r"\operatorname{var}", "dim": r"\dim", "KL": r"\operatorname{KL}",
             "diag": r"\operatorname{diag}"}
# English words in a comment: a run of them is prose, not an equation. Also: a TensorBoard tag (charts/q_values);
# "critic(s)"; the number of a notes file ("notes 001"); the article a ("a random action", "a Gaussian", "a 256-256
# MLP"), not the action a; and a word's possessive ’s ("CleanRL’s", "000’s")
WORD = re.compile(r"(?:\b[a-z]{3,}/[A-Za-z0-9_]+|[A-Za-z]{3,}\(s\)|[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[A-Za-z]{3,}"
                  r"|\b(?:if|of|or|to|in|is|on|by|at|an|as|be|it|no|we|so|up|do)\b|(?<=[Nn]otes )[0-9]{3}\b"
                  r"|\ba(?= [a-z]{3,}| [A-Z][a-z]{2,}| [0-9]+-[0-9])|\b[0-9]+(?=’s))(?:’s\b)?")
# A command line in a comment, shown as code: python ppo.py --env-id CartPole-v1
COMMAND = re.compile(r"(?<!`)\bpython [\w./-]+\.py(?: --?[\w-]+(?: (?!-|python\b)[^\s()]+)?)*")
# 's after a word, a Greek letter, a digit or "al.": English (CleanRL's, α's), not a prime (s', a')
POSSESSIVE = re.compile(r"(?<=[0-9A-Za-zα-ωΑ-Ωϵϕ.])'s\b")
STRONG = re.compile(r"[=←~≈≥≤∈∝·×‖∇Σ_^²⁻√±]|[α-ωΑ-Ω]|\b(?:log|min|max|argmax|tanh|clip|exp)\b|E\[")
BREAK = re.compile(r"(?<= [=+−←≈≥≤~·]) |(?<=,) ")  # after " = ", " + " ... and ", ": where an equation may wrap


def to_latex(span: str) -> str:
    """A Unicode equation as LaTeX: subscripts, superscripts, accents, function names, operators."""
    s = unicodedata.normalize("NFD", span)
    out, i = [], 0

    def script(j: int) -> tuple[str, int]:
        """The sub- or superscript that starts at s[j]: {..}, (..) or a run of letters, digits and primes."""
        if j < len(s) and s[j] in "{(":
            close, depth, k = "}" if s[j] == "{" else ")", 0, j
            while k < len(s):
                depth += s[k] in "{("
                depth -= s[k] in "})"
                if depth == 0:
                    break
                k += 1
            return "{" + to_latex(s[j + 1:k]) + "}", k + 1
        m = re.match(r"[A-Za-z0-9α-ωΑ-Ωϵϕ'′]+", s[j:])
        if not m:
            return "{}", j
        run = m.group(0)
        if run in FUNCTIONS:
            return "{" + FUNCTIONS[run] + "}", j + len(run)
        if re.fullmatch(r"[A-Za-z]{3,}", run):
            return r"{\mathrm{" + run + "}}", j + len(run)
        return "{" + run + "}", j + len(run)

    function = False  # the last thing written was a function's name (and its subscript): log, min_i
    while i < len(s):
        c = s[i]
        if s.startswith(("<=", ">="), i):
            out.append(r"\leq " if c == "<" else r"\geq ")
            i += 2
            continue
        if c in "_^":
            body, i = script(i + 1)
            out.append(c + body)
            continue
        if c == " " and function and re.match(r" +[A-Za-z0-9α-ωΑ-Ωϵϕ]", s[i:]):
            out.append(r"\, ")  # log π, log 2
            i += 1
            continue
        if (number := re.match(r"([0-9]+(?:\.[0-9]+)?)e(-?[0-9]+)\b", s[i:])) and not re.match(r"[A-Za-z0-9_.]", s[i - 1:i]):
            out.append(number.group(1) + r" \cdot 10^{" + number.group(2) + "}")  # 7e-4: 7·10⁻⁴
            i += len(number.group(0))
            continue
        if greek := re.match(r"([α-ωϵϕ]'*)([0-9]+|[ij](?![A-Za-z]))", s[i:]):
            out.append(greek.group(1) + "_{" + greek.group(2) + "}")  # φ1, φ'i: the notes' φ_1, φ'_i
            i += len(greek.group(0))
            function = False
            continue
        function = c.isascii() and c.isalpha() and re.match(r"[A-Za-z]+", s[i:]).group(0) in FUNCTIONS
        if c in SUPERSCRIPTS or (c == "*" and i and s[i - 1] != " "):
            run = re.match(r"[%s*]+" % "".join(SUPERSCRIPTS), s[i:]).group(0)
            out.append("^{" + "".join(SUPERSCRIPTS.get(x, x) for x in run) + "}")
            i += len(run)
            continue
        elif c in ACCENTS and out:
            out[-1] = "\\" + ACCENTS[c] + "{" + out[-1] + "}"
        elif c in SYMBOLS:
            out.append(SYMBOLS[c])
        elif c == "E" and s[i + 1:i + 2] == "[":
            out.append(r"\mathbb{E}")
        elif c.isalpha() and c.isascii():
            word = re.match(r"[A-Za-z]+", s[i:]).group(0)
            if len(word) == 1:
                out.append(word)
            else:
                out.append(FUNCTIONS.get(word, r"\operatorname{" + word + "}") + " ")
            i += len(word)
            continue
        elif c == "{" or c == "}":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def mathml(latex: str, display: bool = False) -> str:
    """MathML for a LaTeX string; on failure, the LaTeX as visible text, and the failure counted in ERRORS. With
    `display`, in display style, but inline, so that a formula's pieces can share a line."""
    try:
        result = convert(latex, display="block" if display else "inline")
        result = result.replace('display="block"', 'display="inline" displaystyle="true"', 1)
    except Exception as e:  # latex2mathml raises a zoo of exception types
        ERRORS.append(f"{type(e).__name__}: {e}: {latex[:120]}")
        return f'<code class="tex">{html.escape(latex)}</code>'
    unknown = re.findall(r">(\\[A-Za-z]+)<", result)
    if unknown:
        ERRORS.append(f"unknown {', '.join(sorted(set(unknown)))}: {latex[:120]}")
        return f'<code class="tex">{html.escape(latex)}</code>'
    return result


def math_spans(text: str, names: frozenset = frozenset()) -> list[tuple[bool, str]]:
    """[(is_equation, piece)]: the pieces of a comment, in order. A piece between two runs of English words
    is an equation if it has an operator, a Greek letter, a sub- or superscript or a function name. `names`:
    the names the script's code defines (q_network), prose although they look like a subscript."""
    pieces, last = [], 0
    words = [m for m in WORD.finditer(text) if is_prose_word(text, m, names)]
    # prose runs: words and the spaces and light punctuation between them
    runs, start, end = [], None, None
    for m in words:
        if start is not None and re.fullmatch(r"[\s,;:.!?*\"`'()-]*", text[end:m.start()]):
            end = m.end()
            continue
        if start is not None:
            runs.append((start, end))
        start, end = m.start(), m.end()
    if start is not None:
        runs.append((start, end))
    for a, b in runs:
        pieces.append((True, text[last:a]))  # (may be an equation, piece)
        pieces.append((False, text[a:b]))
        last = b
    pieces.append((True, text[last:]))
    result = []
    for candidate, piece in pieces:
        if candidate and STRONG.search(piece) and re.search(r"[^\s,;:.]", piece):
            lead = re.match(r"^[\s,;:.()\]'’]*", piece).group(0)  # a ')' or ']' here closes the prose's bracket
            trail = re.search(r"(?:’s\b|[\s,;:.-])*$", piece[len(lead):]).group(0)  # π_θ’s: the ’s is English
            core = piece[len(lead):len(piece) - len(trail)]
            core, extra = balance(core)
            result += [(False, lead), (True, core), (False, extra + trail)]
        else:
            result.append((False, piece))
    return [(m, p) for m, p in result if p]


def is_prose_word(text: str, m: re.Match, names: frozenset = frozenset()) -> bool:
    """A word of the prose, not of an equation: not a function applied to something (log π, min_i, max(...)),
    not a sub- or superscript (a_low), and not a name of a term (the 'CLIP' of L^CLIP). One of the code's
    `names` is prose unless applied to something (fc_mu(s))."""
    word, before, after = m.group(0), text[max(0, m.start() - 1):m.start()], text[m.end():m.end() + 4]
    if before in ("_", "^") or text[max(0, m.start() - 2):m.start()] == "E[":
        return False  # the "low" of a_low, the "bracket" of E[bracket]
    if word in names:
        return not after.startswith(("(", "["))
    if "_" in word and (word.split("_")[0] in FUNCTIONS or len(word.split("_")[0]) == 1):
        return False  # min_i, a_low: an equation's
    if word.endswith("(s)"):
        return word[:-3] not in FUNCTIONS  # critic(s), not relu(s)
    if word in FUNCTIONS:
        return not re.match(r"[_(\[²⁻]| ?[α-ωΑ-Ωϵϕ]| ?[A-Za-z]\b| [0-9]", after)  # log π, log 2
    return not after.startswith(("_", "^", "(", "["))


def balance(core: str) -> tuple[str, str]:
    """Moves a trailing unmatched ')' or ']' out of an equation (it closes the prose's parenthesis), and a
    trailing '(' or '[' (it opens the prose's)."""
    extra = ""
    while core and core[-1] in "([":
        trimmed = core[:-1].rstrip()
        core, extra = trimmed, core[len(trimmed):] + extra
    while core and core[-1] in ")]" and core.count(core[-1]) > core.count("(" if core[-1] == ")" else "["):
        core, extra = core[:-1], core[-1] + extra
    return core, extra


def equation_pieces(span: str, long: int = 28) -> list[str]:
    """A comment's equation cut where it may wrap (BREAK): outside its brackets; a piece still `long` characters or
    more also inside them, one level deeper at a time, but never inside a short pair ((1 − d), (s', a')) nor in a
    sub- or superscript, so that a long equation fits a narrow column."""
    ends, opened, inside = {}, [], []
    for k, c in enumerate(span):  # inside[k]: the brackets open at k
        inside.append(tuple(opened))
        if c in "([{":
            opened.append(k)
        elif c in ")]}" and opened:
            ends[opened.pop()] = k

    def allowed(k: int) -> bool:
        return all(span[o - 1:o] not in ("_", "^") for o in inside[k]) and \
            (not inside[k] or ends.get(inside[k][-1], len(span)) - inside[k][-1] > 16)

    candidates = [m.start() for m in BREAK.finditer(span) if allowed(m.start())]
    cuts = set()
    for depth in (0, 1, 2):
        bounds = [0] + sorted(cuts) + [len(span)]
        for a, b in zip(bounds, bounds[1:]):
            if depth == 0 or b - a >= long:
                cuts.update(k for k in candidates if a < k < b and len(inside[k]) == depth)
    bounds = [-1] + sorted(cuts) + [len(span)]
    return [span[a + 1:b] for a, b in zip(bounds, bounds[1:]) if span[a + 1:b].strip()]


def comment_html(text: str, names: frozenset = frozenset()) -> str:
    """A comment's text as HTML: prose escaped (with `code` and *emphasis*), equations as MathML. `names`: the
    names the script's code defines, which stay prose."""
    out = []
    text = POSSESSIVE.sub("\u2019s", text)
    text = COMMAND.sub(lambda m: f"`{m.group(0)}`", text)
    for k, segment in enumerate(re.split(r"`([^`]+)`", text)):
        if k % 2:  # `code`
            out.append(f"<code>{html.escape(segment)}</code>")
            continue
        for is_math, piece in math_spans(segment, names):
            if is_math:
                # cut after its top-level operators into pieces, so that a long equation wraps in a narrow column
                out.append(" ".join(mathml(to_latex(part)) for part in equation_pieces(piece)))
            else:
                out.append(re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", html.escape(piece)))
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# The notes: Markdown with LaTeX
# ------------------------------------------------------------------------------------------------
NOTES_FIXES = [  # LaTeX the notes use that latex2mathml reads otherwise
    (re.compile(r"\\begin\{(aligned|align\*?)\}"), r"\\begin{split}"),
    (re.compile(r"\\end\{(aligned|align\*?)\}"), r"\\end{split}"),
    (re.compile(r"\\text\{([^}]*)\}"), lambda m: r"\text{" + m.group(1).replace("_", r"\_") + "}"),
    (re.compile(r"\^(\\[A-Za-z]+|[A-Za-z0-9])('+)"), r"^{\1\2}"),  # θ^μ': the prime belongs to the superscript
    (re.compile(r"\\arg\s*\\max"), r"\\operatorname{arg\\,max}"),
    (re.compile(r"\\arg\b"), r"\\operatorname{arg}"),
]


def notes_math(latex: str, display: bool) -> str:
    """The notes' LaTeX as MathML, cut into pieces (see latex_pieces) that the browser lays out whole and wraps
    between, so that a long formula fits a narrow column. Display math keeps its display style (limits under a Σ),
    and an aligned environment becomes one line per row."""
    for pattern, repl in NOTES_FIXES:
        latex = pattern.sub(repl, latex)
    latex = latex.strip()
    if not display:
        return " ".join(mathml(piece) for piece in latex_pieces(latex))
    env = re.fullmatch(r"\\begin\{split\}(.*)\\end\{split\}", latex, re.S)
    rows = [re.sub(r"(?<!\\)&", "", row) for row in re.split(r"\\\\", env.group(1)) if row.strip()] if env else [latex]
    lines = [" ".join(mathml(piece, display=True) for piece in latex_pieces(row.strip())) for row in rows]
    return "".join(f'<div class="row">{line}</div>' for line in lines) if len(lines) > 1 else lines[0]


CUT_BEFORE = ("nabla", "sum", "prod", "frac")
CUT_AFTER = ("approx", "leq", "geq", "le", "ge", "leftarrow", "to", "sim", "neq", "propto", "cdot", "times")


def latex_pieces(latex: str) -> list[str]:
    r"""LaTeX cut after its top-level relations, + and binary −, and commas, and before a \quad or a ∇, Σ, Π or
    fraction that is a factor of a long product: outside braces, environments and parentheses (a cut inside
    \left( .. \right) closes the piece with \right. and opens the next with \left., so that each piece is whole
    LaTeX). A piece still long is cut inside its parentheses too, one level deeper at a time. No piece shorter
    than 7 characters is cut off."""
    pieces = cut_at_depth(latex, 0)
    for depth in (1, 2):
        pieces = [q for piece in pieces for q in (cut_at_depth(piece, depth) if glyphs(piece) > 36 else [piece])]
    return pieces


def glyphs(latex: str) -> int:
    """About how many symbols a piece of LaTeX shows: a command counts one, braces and scripts' marks none."""
    return len(re.sub(r"[{}_^\s]", "", re.sub(r"\\(?:left|right)\b|\\[A-Za-z]+", "x", latex)))


def cut_at_depth(latex: str, depth: int) -> list[str]:
    """latex_pieces' cuts, inside at most `depth` parentheses, and never inside a short pair of them: (s_{i,t}, a_{i,t})
    stays whole."""
    pieces, start, prefix = [], 0, ""
    braces = 0
    fences, parens = [], []  # the \left delimiters and the parentheses open here
    ends = closing_parens(latex)

    def cut(at: int) -> None:
        nonlocal start, prefix
        before, after = re.sub(r"\\(?:left|right)\.", "", latex[start:at]), latex[at:]
        if before.strip() and not re.fullmatch(r"(?:\s|\\right\W)*", after):  # no piece of nothing but fences
            pieces.append(prefix + latex[start:at] + r"\right." * len(fences))
            prefix, start = r"\left." * len(fences), at

    i = 0
    while i < len(latex):
        c = latex[i]
        top = braces == 0 and len(parens) <= depth and not (parens and ends.get(parens[-1], len(latex)) - parens[-1] < 40)
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            word, i = m.group(1), i + len(m.group(0))
            if word == "left":
                fences.append(i)
            elif word == "right" and fences:
                fences.pop()
            elif word in ("begin", "end"):
                braces += 1 if word == "begin" else -1
            elif word in ("quad", "qquad") and top or word in CUT_BEFORE and top and i - start > 12:
                cut(i - len(m.group(0)))  # before a space, or before a factor of a long product
            elif word in CUT_AFTER and top and i - start > 6:
                cut(i)
            if word in ("left", "right") and i < len(latex) and latex[i] in "()[]|./":
                i += 1  # the delimiter of \left( or \right): a fence, not a parenthesis
            continue
        braces += (c == "{") - (c == "}")
        if c == "(":
            parens.append(i)
        elif c == ")" and parens:
            parens.pop()
        elif c == ")":
            return [latex]
        i += 1
        before = latex[:i - 1].rstrip()[-1:]
        binary = c == "-" and before and before not in "([{=+-,;|^_&"
        if top and (c in "=+," or binary) and i - start > 6:
            cut(i)
    if braces or parens or fences:  # not balanced as this reads it: one piece
        return [latex]
    pieces.append(prefix + latex[start:])
    return [p for p in pieces if p.strip()]


def closing_parens(latex: str) -> dict[int, int]:
    r"""{position of a "(": position of its ")"}, the delimiters of \left( and \right) left out."""
    ends, opened = {}, []
    for m in re.finditer(r"\\(?:left|right)[()]|\\.|[()]", latex):
        if m.group(0) == "(":
            opened.append(m.start())
        elif m.group(0) == ")" and opened:
            ends[opened.pop()] = m.start()
    return ends


def inline_markdown(text: str) -> str:
    """One line of the notes (no display math in it) as HTML: $..$ as MathML, **bold**, `code`, images named."""
    if text.count("**") % 2 == 0:  # bold around math too: marked before the math is cut out
        text = re.sub(r"\*\*(.+?)\*\*", "\x01\\1\x02", text)
    text = re.sub(r"^([-*])\s+", "• ", text)
    out, pos = [], 0
    for m in re.finditer(r"(?<!\\)\$([^$]+)\$", text):
        out.append(markdown_text(text[pos:m.start()]))
        out.append(notes_math(m.group(1), False))
        pos = m.end()
    out.append(markdown_text(text[pos:]))
    return "".join(out).replace("\x01", "<strong>").replace("\x02", "</strong>")


def markdown_text(text: str) -> str:
    text = html.escape(text)
    figure = lambda m: f'<span class="figure">[figure {m.group(1).rsplit("/", 1)[-1]} of the notes]</span>'  # noqa: E731
    text = re.sub(r"!\[[^\]]*\]\(([^)]*)\)", figure, text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def notes_html(lines: list[str]) -> str:
    """A passage of the notes as HTML: headings, paragraphs, code blocks and display math, line by line."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            # the notes' fences hold pseudo-code, some of it with $..$ LaTeX in it: rendered like the text
            out.append("<pre>" + "\n".join(inline_markdown(x) if "$" in x else html.escape(x) for x in lines[i + 1:j]) + "</pre>")
            i = j + 1
            continue
        if "$$" in stripped:
            before, _, rest = line.partition("$$")
            body, j = [rest], i
            while "$$" not in body[-1] and j + 1 < len(lines):
                j += 1
                body.append(lines[j])
            text = "\n".join(body)
            latex, _, after = text.partition("$$")
            if before.strip():
                out.append(f'<p style="margin-left:{indent(before)}em">{inline_markdown(before.strip())}</p>')
            out.append(f'<div class="display">{notes_math(latex, True)}</div>')
            if after.strip():
                lines[j] = after  # the rest of the closing line is text (or more math)
                i = j
                continue
            i = j + 1
            continue
        if stripped in ("---", "***"):
            out.append("<hr>")
        elif stripped:
            heading = re.match(r"(#{1,6})\s*(.*)", stripped)
            if heading:
                out.append(f'<p class="h">{inline_markdown(heading.group(2))}</p>')
            else:
                out.append(f'<p style="margin-left:{indent(line)}em">{inline_markdown(stripped)}</p>')
        i += 1
    return "\n".join(out)


def indent(line: str) -> float:
    return round(min(len(line) - len(line.lstrip()), 16) * 0.35, 2)
