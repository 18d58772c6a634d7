"""The documentation holds together inside the repository.

- Every relative link in the README and `docs/*.md` names a file of the repository, and
  its `#fragment`, when the target is a Markdown page, names one of that page's headings.
- Nothing in the README, the docs, the code, the tests or the configuration refers to a
  path outside the repository: no `../shared/...`, no relative path that climbs out of the
  checkout, no absolute path into the directory that holds the checkout.
- A page `docs/NAME.md` named in code or configuration exists, and so does a document
  named bare (`DOMAIN.md`), at the top, in `docs/` or beside the file naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_FILES = ("README.md", "Makefile", "setup.cfg", "pyproject.toml", "ruff.toml", ".ci/run")
SOURCE_DIRS = ("hub", "connectors", "config", "tests", "docs")
SOURCE_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".cfg", ".toml", ".ini", ".txt", ".html"}
SKIPPED_PARTS = {"__pycache__", "node_modules", "artifacts"}

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
CLIMBING = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+(?:/[\w.-]+)*")
DOCS_PAGE = re.compile(r"(?<![\w./-])docs/[\w.-]+\.md\b")
BARE_DOCUMENT = re.compile(r"(?<![\w./-])[A-Z][A-Z_]*\.md\b")


def source_files() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*")):
            if (path.is_file() and path.suffix in SOURCE_SUFFIXES
                    and not SKIPPED_PARTS & set(path.relative_to(ROOT).parts)
                    and path.resolve() != THIS):
                files.append(path)
    return files


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of a Markdown page that do not resolve inside `root`."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    name = page.relative_to(root)
    problems = []
    for target in LINK.findall(text) + REFERENCE_LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: ... : not a path
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not inside(resolved, root):
            problems.append(f"{name}: {target} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{name}: {target} does not exist")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{name}: {target}: no heading #{fragment} in "
                            f"{resolved.relative_to(root)}")
    return problems


def outside_references(path: Path, root: Path = ROOT) -> list[str]:
    """References in a file to paths outside `root`, and to `docs/` pages that are missing."""
    text = path.read_text(encoding="utf-8", errors="replace")
    name = path.relative_to(root)
    problems = []
    if "../shared" in text:
        problems.append(f"{name}: refers to ../shared")
    parent = str(root.parent).rstrip("/") + "/"
    if parent != "/" and parent in text:
        problems.append(f"{name}: an absolute path under {parent}")
    if path.suffix == ".md":
        problems += [f"{name}: {token} is outside the repository"
                     for token in CLIMBING.findall(text)
                     if not inside(path.parent / token, root)]
    else:
        problems += [f"{name}: {page} does not exist"
                     for page in sorted(set(DOCS_PAGE.findall(text)))
                     if not (root / page).is_file()]
    problems += [f"{name}: {document} is not in the repository"
                 for document in sorted(set(BARE_DOCUMENT.findall(text)))
                 if not any((folder / document).is_file()
                            for folder in (root, root / "docs", path.parent))]
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_nothing_refers_to_a_path_outside_the_repository() -> None:
    files = source_files()
    assert ROOT / "README.md" in files and ROOT / "hub" / "__init__.py" in files
    problems = [problem for path in files for problem in outside_references(path)]
    assert problems == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """Each kind of breakage is reported, in a checkout of its own."""
    assert slug("`aeo_node`") == "aeo_node"
    assert slug("Who a partner may see") == "who-a-partner-may-see"
    assert slug("Telling the hub about a change") == "telling-the-hub-about-a-change"
    root = tmp_path / "checkout"
    (root / "docs").mkdir(parents=True)
    (root / "hub").mkdir()
    (root / "docs" / "architecture.md").write_text("# Architecture\n\n## Glossary\n")
    page = root / "docs" / "probe.md"
    page.write_text("[a](missing.md) [b](architecture.md#no-such-heading) "
                    "[c](../../elsewhere.md) [d](https://example.org/x) "
                    "[e](architecture.md#glossary) [f](#probe)\n\n# Probe\n\n"
                    "See ../shared/DESIGN.md and `../../outside/file.md`, not "
                    "`../hub/x.py`.\n\n```\n[g](inside-a-fence.md)\n```\n")
    assert [problem.split(": ", 1)[1] for problem in broken_links(page, root)] == [
        "missing.md does not exist",
        "architecture.md#no-such-heading: no heading #no-such-heading in "
        "docs/architecture.md",
        "../../elsewhere.md points outside the repository",
    ]
    assert [problem.split(": ", 1)[1] for problem in outside_references(page, root)] == [
        "refers to ../shared",
        "../../elsewhere.md is outside the repository",
        "../../outside/file.md is outside the repository",
    ]

    code = root / "hub" / "probe.py"
    code.write_text(f'"""See docs/architecture.md, docs/no-such-page.md, '
                    f'{tmp_path}/shared/x, README.md and DOMAIN.md."""\n')
    (root / "README.md").write_text("# Probe\n")
    assert [problem.split(": ", 1)[1] for problem in outside_references(code, root)] == [
        f"an absolute path under {tmp_path}/",
        "docs/no-such-page.md does not exist",
        "DOMAIN.md is not in the repository",
    ]
