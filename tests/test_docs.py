"""The docs hold together: every relative link and image resolves, and no file cites a
ticket by number (a reader has no access to the tracker; say what was asked instead)."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

# A ticket number: "issue 9", "issue #10", "issues 4", "item 7", "stop 22" (any case).
# Assembled from parts so that this module's own text is not a hit.
_WORDS = ("issue", "item", "stop")
TICKET_NUMBER = re.compile(
    "|".join(word + r" ?#?[0-9]+" for word in _WORDS) + "|" + _WORDS[0] + r"s? [0-9]+",
    re.IGNORECASE,
)
TICKET_SUFFIXES = (".py", ".md", ".sh", ".toml")

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).+?\1")
# [text](target "title") and ![alt](target); text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+[\"'(][^)]*)?\)"
)
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_TARGET = re.compile(
    r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE
)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def tracked_files() -> List[str]:
    """The repository's tracked files (git ls-files), as paths relative to its root."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error})")
    return [name for name in out.decode("utf-8").split("\0") if name]


def markdown_pages() -> List[str]:
    """README.md and every markdown page under docs/ that exists in the working tree."""
    return [
        name
        for name in tracked_files()
        if (name == "README.md" or (name.startswith("docs/") and name.endswith(".md")))
        and (REPO / name).is_file()
    ]


def prose_lines(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) for the lines outside fenced code blocks, code spans blanked."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, CODE_SPAN.sub("", line)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation other than '-'
    and '_' dropped, each space turned into '-'."""
    text = INLINE_LINK.sub(lambda m: re.sub(r"^!?\[|\]\(.*$", "", m.group(0)), heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    kept = "".join(
        ch
        for ch in text
        if ch in " -_"
        or unicodedata.category(ch)[0] in ("L", "N")
        or unicodedata.category(ch) == "Mn"
    )
    return kept.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """Every `#anchor` a markdown file offers: its headings' slugs (repeats numbered as
    GitHub numbers them) and explicit `<a name=...>` / `<a id=...>` targets."""
    found: Set[str] = set()
    seen: Dict[str, int] = {}
    previous = ""
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = ATX_HEADING.match(line)
        setext = SETEXT_UNDERLINE.match(line)
        heading = (
            match.group(2) if match else previous.strip() if setext and previous.strip() else None
        )
        previous = line
        if heading is None:
            continue
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def link_targets(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, target) of every inline link, image, reference definition and HTML
    src/href in a markdown text, outside code."""
    for number, line in prose_lines(text):
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_TARGET):
            for target in pattern.findall(line):
                yield number, target.strip("<>")


def broken_links(page: str) -> List[str]:
    """'page:line: target (why)' for each relative link of a page that does not resolve."""
    source = REPO / page
    problems = []
    for number, target in link_targets(source.read_text(encoding="utf-8")):
        if EXTERNAL.match(target) or target.startswith("//"):
            continue  # external: not fetched
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part)
        if not path_part:
            resolved = source
        elif path_part.startswith("/"):
            resolved = REPO / path_part.lstrip("/")
        else:
            resolved = (source.parent / path_part).resolve()
        where = f"{page}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where} (no such file)")
        elif (
            anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved)
        ):
            problems.append(f"{where} (no heading with that anchor in {resolved.name})")
    return problems


def test_github_slug_follows_githubs_rules():
    assert github_slug("Segment durations: 3, 5 and 10 s") == "segment-durations-3-5-and-10-s"
    assert github_slug("How the 0.1.0 model was reached") == "how-the-010-model-was-reached"
    assert github_slug("`mer score` — the catalog_scorer") == "mer-score--the-catalog_scorer"
    assert github_slug("See [the docs](docs/x.md)") == "see-the-docs"


def test_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n[ok](other.md#a-section) [ok](#page) ![ok](other.md)\n"
        "[gone](missing.md)\n[bad anchor](other.md#no-such-section)\n"
        "```\n[in code](not-checked.md)\n```\n[web](https://example.com/x.md)\n",
        encoding="utf-8",
    )
    problems = broken_links("docs/page.md")
    assert len(problems) == 2
    assert problems[0].startswith("docs/page.md:4: missing.md (no such file)")
    assert problems[1].startswith("docs/page.md:5: other.md#no-such-section (no heading")


def test_every_relative_link_and_image_in_the_docs_resolves():
    pages = markdown_pages()
    assert "README.md" in pages and "docs/results.md" in pages
    problems = [problem for page in pages for problem in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_ticket_pattern_matches_what_it_should():
    hits = ["see issue 9", "Issue #10's", "item 7", "(item 5)", "stop 22", "issues 4 and 5"]
    for text in hits:
        assert TICKET_NUMBER.search(text), text
    for text in ["the item's value", "early stopping at epoch 5", "issue a warning", "items: 3"]:
        assert not TICKET_NUMBER.search(text), text


def test_no_file_cites_a_ticket_number():
    problems = []
    for name in tracked_files():
        path = REPO / name
        if name == THIS_FILE or not name.endswith(TICKET_SUFFIXES) or not path.is_file():
            continue
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            match = TICKET_NUMBER.search(line)
            if match:
                problems.append(f"{name}:{number}: {match.group(0)!r} in {line.strip()[:100]}")
    assert not problems, "say what was asked instead of citing a ticket by number:\n" + "\n".join(
        problems
    )
