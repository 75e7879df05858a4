"""A small, safe markdown subset for card details (the same subset as `static/markdown.js`).

Why our own: card `detail` is markdown (CDS Hooks), the pages must work offline without a build
step, and the text may hold anything a FHIR record contained. So HTML is escaped *first* and only
our own tags are produced: headings, paragraphs, block quotes, bold, italics, inline code, lists, tables,
horizontal rules and links (http, https, mailto and relative URLs only).
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UL = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_OL = re.compile(r"^(\s*)\d{1,9}[.)]\s+(.*)$")
_HR = re.compile(r"^\s*(?:-\s*){3,}$|^\s*(?:\*\s*){3,}$|^\s*(?:_\s*){3,}$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_QUOTE = re.compile(r"^\s{0,3}&gt;\s?")
_CODE = re.compile(r"`([^`]+)`")
# URLs may hold one level of balanced parentheses (DOIs such as 10.1016/S0140-6736(21)00933-8)
_LINK = re.compile(r"\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
_SAFE_SCHEME = re.compile(r"^(?:https?:|mailto:)", re.IGNORECASE)
_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")


def safe_url(url: str) -> str | None:
    """The URL if it is http(s), mailto or relative; None for javascript:, data: and the like."""
    url = url.strip()
    probe = re.sub(r"[\x00-\x20]", "", url)
    if _SAFE_SCHEME.match(probe):
        return url
    if _HAS_SCHEME.match(probe):
        return None
    return url


def _inline(escaped: str) -> str:
    """Inline markup on already-escaped text."""
    codes: list[str] = []

    def keep_code(m: re.Match[str]) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    text = _CODE.sub(keep_code, escaped)

    def link(m: re.Match[str]) -> str:
        label, raw = m.group(1), html.unescape(m.group(2))
        url = safe_url(raw)
        if url is None:
            return label
        href = html.escape(url, quote=True)
        external = url.lower().startswith(("http:", "https:"))
        rel = ' target="_blank" rel="noopener noreferrer"' if external else ""
        return f'<a href="{href}"{rel}>{label}</a>'

    text = _LINK.sub(link, text)
    text = _BOLD.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", text)
    text = _ITALIC.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], text)


def _cell(tag: str, value: str, aligns: list[str], col: int) -> str:
    cls = f' class="al-{aligns[col]}"' if col < len(aligns) and aligns[col] else ""
    return f"<{tag}{cls}>{_inline(value)}</{tag}>"


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def _align(sep: str) -> list[str]:
    out = []
    for cell in _cells(sep):
        left, right = cell.startswith(":"), cell.endswith(":")
        out.append("center" if left and right else "right" if right else "left" if left else "")
    return out


def render_markdown(text: str | None) -> Markup:
    """Markdown subset → HTML; anything else in the input is shown as text, never as markup."""
    if not text:
        return Markup("")
    lines = html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Markup(_blocks(lines, 0))


def _blocks(lines: list[str], depth: int) -> str:
    """Block structure of already-escaped lines (blockquotes recurse, a few levels at most)."""
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush_para() -> None:
        if para:
            out.append("<p>" + _joined(para) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush_para()
            i += 1
            continue
        m = _HEADING.match(line)
        if m:
            flush_para()
            level = min(len(m.group(1)) + 2, 6)  # a card is already inside the page's h2/h3
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]) and "-" in lines[i + 1]:
            flush_para()
            head, aligns = _cells(line), _align(lines[i + 1])
            i += 2
            rows: list[list[str]] = []
            while i < len(lines) and lines[i].strip() and "|" in lines[i]:
                rows.append(_cells(lines[i]))
                i += 1


            table = ['<div class="md-table"><table><thead><tr>']
            table += [_cell("th", c, aligns, n) for n, c in enumerate(head)]
            table.append("</tr></thead><tbody>")
            for row in rows:
                row = (row + [""] * len(head))[: max(len(head), 1)]
                table.append("<tr>" + "".join(_cell("td", c, aligns, n) for n, c in enumerate(row)) + "</tr>")
            table.append("</tbody></table></div>")
            out.append("".join(table))
            continue
        if _QUOTE.match(line) and depth < 4:
            flush_para()
            inner: list[str] = []
            while i < len(lines) and _QUOTE.match(lines[i]):
                inner.append(_QUOTE.sub("", lines[i], count=1))
                i += 1
            out.append("<blockquote>" + _blocks(inner, depth + 1) + "</blockquote>")
            continue
        if _HR.match(line):
            flush_para()
            out.append("<hr>")
            i += 1
            continue
        if _UL.match(line) or _OL.match(line):
            flush_para()
            i = _list(lines, i, out)
            continue
        para.append(line)
        i += 1
    flush_para()
    return "\n".join(out)


def _joined(lines: list[str]) -> str:
    """Lines of one paragraph: two trailing spaces are a line break (markdown), else a space."""
    parts = []
    for n, line in enumerate(lines):
        parts.append(line.strip())
        if n < len(lines) - 1:
            parts.append("\x01" if line.endswith("  ") else " ")
    return _inline("".join(parts)).replace("\x01", "<br>")


def _list(lines: list[str], i: int, out: list[str]) -> int:
    """A list starting at line i (nested by indentation); returns the next unread line."""
    first = _UL.match(lines[i]) or _OL.match(lines[i])
    assert first is not None
    indent = len(first.group(1).expandtabs(4))
    tag = "ul" if _UL.match(lines[i]) else "ol"
    out.append(f"<{tag}>")
    text: list[str] = []  # the current item's lines (raw, escaped)
    nested: list[str] = []  # its sub-lists (HTML)
    open_item = False

    def close() -> None:
        if open_item:
            out.append("<li>" + _joined(text) + "".join(nested) + "</li>")

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not (_UL.match(nxt) or _OL.match(nxt)):
                break
            i += 1
            continue
        m = _UL.match(line) or _OL.match(line)
        if m:
            depth = len(m.group(1).expandtabs(4))
            if depth > indent + 1 and open_item:
                sub: list[str] = []
                i = _list(lines, i, sub)
                nested.append("".join(sub))
                continue
            if depth < indent:
                break
            close()
            text, nested, open_item = [m.group(2)], [], True
            i += 1
            continue
        if line.startswith((" ", "\t")) and open_item:
            text.append(line)
            i += 1
            continue
        break
    close()
    out.append(f"</{tag}>")
    return i
