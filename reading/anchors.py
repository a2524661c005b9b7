"""Anchors: the tags in the scripts' comments that point at one place in the notes.

A tag is `[NNN key › key ...]` on a comment or docstring line: NNN is the notes file (000-004) and the
keys narrow down to one place in it, each inside the place the previous one found:
- a label, as the notes number their parts: `PART1`, `§2` or `2` (a heading's number), `A`, `g.` (a list
  item), `3.3.2`, or a dotted path of nested items such as `g.2` (item 2 of item g.) or `6.2.4`;
- a phrase, any other words, which must occur exactly once there (a line that is nothing but the phrase,
  such as a title, wins over the phrase inside longer lines).
Within one key, label tokens and phrase words may mix (`actor-critic method 6.2.4`: the phrase, then
item 6.2.4 under it); ` › ` separates keys that are both phrases. A key that finds no place, or more
than one, is an error: `resolve` raises `AnchorError`, and tests/test_reading.py fails on it.

This module reads the notes only where a reader points it at them (`--notes DIR`); nothing of the
notes is stored in the repository.
"""
import re
from dataclasses import dataclass
from pathlib import Path

TAG = re.compile(r"\[(00\d) ([^\[\]\n]+?)\]")
LABEL_TOKEN = re.compile(r"§?(?:PART\d+|\d+(?:\.\d+)*\.?|[A-Z]\.?|(?:[a-z]|[ivx]{1,4})\.(?:\d+(?:\.(?:[a-z]|[ivx]{1,4}))?\.?)?)")
HEADING = re.compile(r"(#{1,6})\s*(.*)")
HEADING_LABEL = re.compile(r"(PART\d+|\d+(?:\.\d+)*|[A-Z])(?=[.:：\s]|[^\x00-\x7f]|$)\.?")
STEP = re.compile(r"\s*#\s+(\d+(?:\.\d+)*)\.?\s")  # a numbered pseudo-code comment: "# 3.2 ..."
ITEM = re.compile(r"(\s*)(\d+|[a-z]{1,4}|[A-Z])\.(?=\s|\*|[^\x00-\x7f]|$)")
MAX_PASSAGE = 45  # non-blank lines at most in one passage


class AnchorError(ValueError):
    pass


@dataclass
class Line:
    text: str
    kind: str = ""  # "h" heading, "step" numbered pseudo-code comment, "item:<digit|letter|roman|upper>", or ""
    level: int = 0  # heading level, step depth, or item indentation
    label: str = ""


@dataclass
class Tag:
    file: str  # "000".."004"
    path: str  # the keys, as written
    lineno: int  # 1-based line in the script
    text: str  # the whole tag, brackets included


def item_kind(label: str) -> str:
    if label.isdigit():
        return "digit"
    if label.isupper():
        return "upper"
    return "roman" if set(label) <= set("ivx") and label != "v" else "letter"


def parse_notes(text: str) -> list[Line]:
    lines, fence = [], False
    for raw in text.splitlines():
        line = Line(raw)
        if raw.lstrip().startswith("```"):
            fence = not fence
        elif (m := STEP.match(raw)) is not None:
            line.kind, line.level, line.label = "step", m.group(1).count(".") + 1, m.group(1)
        elif not fence and (m := HEADING.fullmatch(raw)) is not None:
            line.kind, line.level = "h", len(m.group(1))
            if (label := HEADING_LABEL.match(m.group(2))) is not None:
                line.label = label.group(1)
        elif not fence and (m := ITEM.match(raw)) is not None:
            line.kind, line.level, line.label = "item:" + item_kind(m.group(2)), len(m.group(1).expandtabs(4)), m.group(2)
        lines.append(line)
    return lines


def section_end(lines: list[Line], i: int, stop: int) -> int:
    """The end (exclusive) of the part that line i opens: up to the next heading, step or item of its rank."""
    kind, level = lines[i].kind, lines[i].level
    for j in range(i + 1, stop):
        other = lines[j]
        if kind == "h" and other.kind == "h" and other.level <= level:
            return j
        if kind == "step" and other.kind == "step" and other.level <= level:
            return j
        if kind.startswith("item:") and (other.kind == "h" or (other.kind.startswith("item:") and (
                other.level < level or (other.kind == kind and other.level <= level)))):
            return j
    return stop


def normalise(text: str) -> str:
    return " ".join(text.replace("**", "").replace("`", "").split())


def title(line: Line) -> str:
    text = normalise(line.text.lstrip().lstrip("#"))
    return text.rstrip(":：").strip()


def split_key(key: str) -> list[tuple[str, str]]:
    """A key's tokens as [("phrase", words) | ("label", token)], neighbouring phrase words joined."""
    parts: list[tuple[str, str]] = []
    for token in key.split():
        if LABEL_TOKEN.fullmatch(token):
            parts.append(("label", token.lstrip("§")))
        elif parts and parts[-1][0] == "phrase":
            parts[-1] = ("phrase", parts[-1][1] + " " + token)
        else:
            parts.append(("phrase", token))
    # a lone capital between two phrase words is a word of the phrase ("... 过程 N 用于 ..."), not a label
    for k in range(len(parts) - 2, 0, -1):
        if parts[k - 1][0] == parts[k + 1][0] == "phrase" and parts[k][1].isupper() and len(parts[k][1]) == 1:
            parts[k - 1:k + 2] = [("phrase", " ".join(p[1] for p in parts[k - 1:k + 2]))]
    return parts


def parts_under(lines: list[Line], start: int, stop: int) -> list[int]:
    """The headings, steps and items directly under a part (not inside one another)."""
    found, j = [], start
    while j < stop:
        if lines[j].kind:
            found.append(j)
            j = section_end(lines, j, stop)
        else:
            j += 1
    return found


def find_one_label(lines: list[Line], label: str, start: int, stop: int) -> int | None:
    """The part labelled `label` nearest the top of [start, stop): searched level by level, so that "2" under
    PART3 is its section 2, not an item 2 deeper down. None if there is none; AnchorError if two share the level."""
    frontier = [(start, stop)]
    while frontier:
        level = [i for a, b in frontier for i in parts_under(lines, a, b)]
        hits = [i for i in level if lines[i].label == label]
        if len(hits) > 1:
            raise AnchorError(f"label {label!r} is at {len(hits)} places (lines {', '.join(str(i + 1) for i in hits)})")
        if hits:
            return hits[0]
        frontier = [(i + 1, section_end(lines, i, stop)) for i in level]
    return None


def find_label(lines: list[Line], parts: list[str], start: int, stop: int) -> tuple[int, int]:
    """Follows a dotted label path (["6", "2", "4"]) down nested parts, trying the longest literal label first
    (a heading numbered "3.3.2" is one label)."""
    for k in range(len(parts), 0, -1):
        i = find_one_label(lines, ".".join(parts[:k]), start, stop)
        if i is not None:
            end = section_end(lines, i, stop)
            return find_label(lines, parts[k:], i + 1, end) if k < len(parts) else (i, end)
    raise AnchorError(f"no label {'.'.join(parts)!r} there")


def find_phrase(lines: list[Line], phrase: str, start: int, stop: int) -> tuple[int, int]:
    exact = [i for i in range(start, stop) if title(lines[i]) == phrase]
    if len(exact) == 1:
        hits = exact
    else:
        hits = [i for i in range(start, stop) for _ in range(normalise(lines[i].text).count(phrase))]
    if len(hits) != 1:
        where = f" (lines {', '.join(str(i + 1) for i in hits[:8])})" if hits else ""
        raise AnchorError(f"phrase {phrase!r} is at {len(hits)} places{where}")
    i = hits[0]
    return i, section_end(lines, i, stop) if lines[i].kind else stop


def resolve(lines: list[Line], path: str) -> tuple[int, int]:
    """(first line, end line) of the one place `path` names: 0-based, end exclusive. Raises AnchorError."""
    start, stop = 0, len(lines)
    for key in path.split("›"):
        for what, value in split_key(key):
            if what == "label":
                start, stop = find_label(lines, [p for p in value.split(".") if p], start, stop)
            else:
                start, stop = find_phrase(lines, value, start, stop)
    return start, stop


def passage(lines: list[Line], start: int, stop: int) -> tuple[int, int]:
    """The lines to show for a place: its part of the notes, ending early after its first display equation
    (a title found by a phrase) or at the next numbered pseudo-code comment (a comment found by a phrase),
    and at MAX_PASSAGE non-blank lines."""
    end, shown, in_math = start + 1, 0, False
    labelled = bool(lines[start].kind) and lines[start].kind != "step"
    comment = lines[start].text.lstrip().startswith("#") and not labelled
    for j in range(start, stop):
        text = lines[j].text.strip()
        if j > start and comment and text.startswith("#"):
            break
        if j > start and not labelled and lines[j].kind and lines[j].kind != "step":
            break
        shown += bool(text)
        end = j + 1
        closed = False
        if in_math:
            in_math = not text.endswith("$$")
            closed = not in_math
        elif text.startswith("$$"):
            closed = len(text) > 2 and text.endswith("$$")
            in_math = not closed
        if closed and not labelled:
            break
        if shown >= MAX_PASSAGE:
            break
    return start, end


def notes_files(notes_dir: Path) -> dict[str, Path]:
    """{"000": path, ...}: the notes files in a folder, by their number."""
    return {p.name[:3]: p for p in sorted(Path(notes_dir).glob("00[0-9]_*.txt"))}


def tags_in(source: str) -> list[Tag]:
    """Every tag in a script, in order."""
    return [Tag(m.group(1), m.group(2), n, m.group(0)) for n, line in enumerate(source.splitlines(), 1) for m in TAG.finditer(line)]
