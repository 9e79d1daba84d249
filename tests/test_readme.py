"""README.md and docs/: links that resolve inside the repository, and the quickstart.

* every relative link (inline ``[text](target)``, reference definitions and
  ``<target>`` autolinks) in README.md and in every page under docs/ names a
  file inside the repository; a ``#fragment`` on a Markdown target names one
  of its headings;
* README.md mentions no path outside the repository: no ``../``, no Markdown
  file and no backquoted path that does not exist here;
* the quickstart of README.md (and of the docs' home page) is exactly
  ``uv run contextstore demo`` and ``uv run pytest``.

Code (fenced blocks and inline code spans) is not searched for links.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
QUICKSTART = ["uv run contextstore demo", "uv run pytest"]

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}).*?^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S
)
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE = re.compile(r"^[ ]{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_AUTOLINK = re.compile(r"<([^<>\s]+)>")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_SNIPPET = re.compile(r"^-{1,3}8<-{1,3}[ \t]+\"([^\"]+)\"[ \t]*$", re.M)


def pages() -> list[Path]:
    """README.md and every Markdown page of the docs."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def without_code(text: str) -> str:
    """``text`` with fenced blocks and inline code spans blanked out."""
    text = _FENCE.sub("", text)
    return _CODE_SPAN.sub("", text)


def links(text: str) -> list[str]:
    """Every link target of a Markdown text, outside code."""
    prose = without_code(text)
    found = [m.group(1) for m in _INLINE_LINK.finditer(prose)]
    found += [m.group(1) for m in _REFERENCE.finditer(prose)]
    found += [m.group(1) for m in _AUTOLINK.finditer(prose) if not m.group(1).startswith("!")]
    return found


def is_relative(target: str) -> bool:
    return not _SCHEME.match(target) and not target.startswith(("//", "#"))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (MkDocs' default)."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def expanded(path: Path) -> str:
    """The text of a page with its ``--8<-- "FILE"`` snippets (repository root) inlined."""
    text = path.read_text(encoding="utf-8")
    return _SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text(encoding="utf-8"), text)


def anchors(path: Path) -> set[str]:
    return {slug(m.group(1)) for m in _HEADING.finditer(_FENCE.sub("", expanded(path)))}


def broken_links(page: Path, text: str | None = None) -> list[str]:
    """The relative links of ``page`` (or of ``text`` placed at ``page``) that do
    not resolve inside the repository."""
    if text is None:
        text = page.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if not is_relative(target):
            continue
        path_part, _, fragment = target.partition("#")
        path_part = path_part.split("?", 1)[0]
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return problems


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section (up to the next heading of level 1-2)."""
    match = re.search(
        rf"^##[ \t]+{re.escape(title)}[ \t]*\n(.*?)(?=^#{{1,2}}[ \t]|\Z)", text, re.M | re.S
    )
    assert match is not None, f"no '## {title}' section"
    return match.group(1)


def commands(block_section: str) -> list[str]:
    """The shell commands of the fenced blocks of a section, comments dropped."""
    found = []
    for block in _FENCE.finditer(block_section):
        for line in block.group(0).splitlines()[1:-1]:
            command = re.sub(r"(^|\s)#.*$", "", line).strip()
            if command:
                found.append(command)
    return found


# -- the checks ---------------------------------------------------------------


def test_there_are_docs_pages() -> None:
    assert README.is_file()
    assert (DOCS / "index.md").is_file()
    assert len(pages()) > 5


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_to_the_docs() -> None:
    targets = {t.partition("#")[0] for t in links(README.read_text(encoding="utf-8"))}
    assert "docs/index.md" in targets
    assert any(t.startswith("docs/guide/") for t in targets)


def test_the_readme_mentions_no_path_outside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    assert "../" not in text
    assert "..\\" not in text
    for target in links(text):
        if is_relative(target):
            assert not target.startswith("/"), target
    # every Markdown file it names, linked or not, is a file of the repository
    for name in set(re.findall(r"[\w./-]*\w\.md\b", text)):
        assert (ROOT / name).is_file(), f"README names {name}, which is not in the repository"
    # and so is every path it quotes in backquotes
    for span in _CODE_SPAN.finditer(_FENCE.sub("", text)):
        token = span.group(2).strip()
        if "/" in token and " " not in token and "://" not in token and not token.startswith("-"):
            assert (ROOT / token).exists(), f"README quotes {token}, which is not in the repository"


@pytest.mark.parametrize(
    ("page", "title"), [(README, "Quickstart"), (DOCS / "index.md", "Quickstart")]
)
def test_the_quickstart_is_exactly_the_two_commands(page: Path, title: str) -> None:
    assert commands(section(page.read_text(encoding="utf-8"), title)) == QUICKSTART


# -- the checker itself can fail ------------------------------------------------


def test_the_checker_reports_what_does_not_resolve() -> None:
    text = (
        "[ok](store.md) [anchor ok](store.md#lifecycle) [outside](../../../etc/passwd) "
        "[missing](nowhere.md) [bad anchor](store.md#no-such-heading) "
        "[web](https://example.com) [self](#top) `[in code](nowhere.md)`\n"
        "```\n[fenced](nowhere-either.md)\n```\n"
    )
    # checked as if it were a page in docs/guide/ (nothing is written there)
    assert broken_links(DOCS / "guide" / "probe.md", text) == [
        "../../../etc/passwd: outside the repository",
        "nowhere.md: no such file",
        "store.md#no-such-heading: no heading #no-such-heading in store.md",
    ]


def test_the_quickstart_parser_sees_an_extra_command() -> None:
    text = (
        "## Quickstart\n\n```sh\nuv run contextstore demo\nuv sync  # extra\nuv run pytest\n```\n"
    )
    assert commands(section(text, "Quickstart")) == [
        "uv run contextstore demo",
        "uv sync",
        "uv run pytest",
    ]


def test_slugs_follow_markdown_toc() -> None:
    assert slug("The engine factory: `contextstore.engine`") == (
        "the-engine-factory-contextstoreengine"
    )
    assert slug("Adopting old legacy files") == "adopting-old-legacy-files"
