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
             "std": r"\operatorname{std}", "var": r"\operatorname{var}", "dim": r"\dim", "KL": r"\operatorname{KL}"}
# English words in a comment: a run of them is prose, not an equation
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+(?:_[A-Za-z0-9]+)+|[A-Za-z]{3,}|\b(?:if|of|or|to|in|is|on|by|at|an|as|be|it|no|we|so|up|do)\b"
                  r"|\ba(?= [a-z]{3,})|\b[0-9]+’s")  # "a random action": the article, not the action a; "000’s"
STRONG = re.compile(r"[=←~≈≥≤∈∝·×‖∇Σ_^²⁻√±]|[α-ωΑ-Ω]|\b(?:log|min|max|argmax|tanh|clip|exp)\b|E\[")
BREAK = re.compile(r"(?<= [=+−←≈≥≤]) (?![^(\[{]*[)\]}])")  # after " = ", " + " ...: not inside brackets


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
        if c in "_^":
            body, i = script(i + 1)
            out.append(c + body)
            continue
        if c == " " and function and re.match(r" +[A-Za-zα-ωΑ-Ωϵϕ]", s[i:]):
            out.append(r"\, ")
            i += 1
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
    """MathML for a LaTeX string; on failure, the LaTeX as visible text, and the failure counted in ERRORS."""
    try:
        result = convert(latex, display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises a zoo of exception types
        ERRORS.append(f"{type(e).__name__}: {e}: {latex[:120]}")
        return f'<code class="tex">{html.escape(latex)}</code>'
    unknown = re.findall(r">(\\[A-Za-z]+)<", result)
    if unknown:
        ERRORS.append(f"unknown {', '.join(sorted(set(unknown)))}: {latex[:120]}")
        return f'<code class="tex">{html.escape(latex)}</code>'
    return result


def math_spans(text: str) -> list[tuple[bool, str]]:
    """[(is_equation, piece)]: the pieces of a comment, in order. A piece between two runs of English words
    is an equation if it has an operator, a Greek letter, a sub- or superscript or a function name."""
    pieces, last = [], 0
    words = [m for m in WORD.finditer(text) if is_prose_word(text, m)]
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
            lead = re.match(r"^[\s,;:.('’]*", piece).group(0)
            trail = re.search(r"[\s,;:.-]*$", piece[len(lead):]).group(0)
            core = piece[len(lead):len(piece) - len(trail)]
            core, extra = balance(core)
            result += [(False, lead), (True, core), (False, extra + trail)]
        else:
            result.append((False, piece))
    return [(m, p) for m, p in result if p]


def is_prose_word(text: str, m: re.Match) -> bool:
    """A word of the prose, not of an equation: not a function applied to something (log π, min_i, max(...)),
    not a sub- or superscript (a_low), and not a name of a term (the 'CLIP' of L^CLIP)."""
    word, before, after = m.group(0), text[max(0, m.start() - 1):m.start()], text[m.end():m.end() + 4]
    if before in ("_", "^"):
        return False
    if "_" in word and (word.split("_")[0] in FUNCTIONS or len(word.split("_")[0]) == 1):
        return False  # min_i, a_low: an equation's
    if word in FUNCTIONS:
        return not re.match(r"[_(\[²⁻]| ?[α-ωΑ-Ωϵϕ]| ?[A-Za-z]\b", after)
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


def comment_html(text: str) -> str:
    """A comment's text as HTML: prose escaped (with `code` and *emphasis*), equations as MathML."""
    out = []
    text = re.sub(r"(?<=[0-9α-ωΑ-Ω])'s\b", "\u2019s", text)  # α's, 000's: a possessive, not a prime
    for k, segment in enumerate(re.split(r"`([^`]+)`", text)):
        if k % 2:  # `code`
            out.append(f"<code>{html.escape(segment)}</code>")
            continue
        for is_math, piece in math_spans(segment):
            if is_math:
                # cut after its top-level operators into pieces, so that a long equation wraps in a narrow column
                out.append(" ".join(mathml(to_latex(part)) for part in BREAK.split(piece) if part))
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
    for pattern, repl in NOTES_FIXES:
        latex = pattern.sub(repl, latex)
    return mathml(latex.strip(), display)


def latex_pieces(latex: str) -> list[str]:
    """Inline LaTeX cut after its top-level relations and + (outside braces, \\left..\\right and environments),
    so that a long formula in a narrow column wraps between pieces instead of running out of it."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        if latex.startswith(("\\left", "\\begin"), i):
            depth += 1
        elif latex.startswith(("\\right", "\\end"), i):
            depth -= 1
        c = latex[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            word = m.group(1)
            if depth == 0 and word in ("approx", "leq", "geq", "le", "ge", "leftarrow", "to") and i - start > 12:
                pieces.append(latex[start:i + len(m.group(0))])
                start = i + len(m.group(0))
            i += len(m.group(0))
            continue
        depth += c == "{"
        depth -= c == "}"
        if depth == 0 and c in "=+" and i - start > 12:
            pieces.append(latex[start:i + 1])
            start = i + 1
        i += 1
    pieces.append(latex[start:])
    return [p for p in pieces if p.strip()] if depth == 0 else [latex]


def inline_markdown(text: str) -> str:
    """One line of the notes (no display math in it) as HTML: $..$ as MathML, **bold**, `code`, images named."""
    if text.count("**") % 2 == 0:  # bold around math too: marked before the math is cut out
        text = re.sub(r"\*\*(.+?)\*\*", "\x01\\1\x02", text)
    text = re.sub(r"^([-*])\s+", "• ", text)
    out, pos = [], 0
    for m in re.finditer(r"(?<!\\)\$([^$]+)\$", text):
        out.append(markdown_text(text[pos:m.start()]))
        out.append(" ".join(notes_math(piece, False) for piece in latex_pieces(m.group(1))))
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
