"""Citations a reader can follow: the code and the tests cite the repository's own
pages ("docs/<page>.md section N", the form docs/abi.md has always been cited in), every
cited page exists and has the cited section, and nothing cites a document a clone
of the project lacks."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

DOCS = ROOT / "docs"
SCANNED = ("src", "tests", "bench")
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

# Documents that live outside the repository (written in pieces so that this file
# does not cite them itself): the measured notes the docs/ pages were made from,
# and anything under a sibling folder.
OUTSIDE = re.compile(
    "|".join(
        [
            "REAL" + "-GUNYAH",
            "BOOT" + "-NOTES",
            "UNICORN" + "-NOTES",
            "shared" + "/reference",
            r"\.\./" + "shared",
            r"(?<![\w/])" + "ABI" + r"\.md",
        ]
    )
)

# "docs/abi.md section 9", "docs/abi.md sections 2-4", "docs/real-gunyah.md
# sections 5 and 6", also across a line break in a comment or docstring.
CITATION = re.compile(
    r"(?<![\w/.-])docs/([A-Za-z0-9_-]+)\.md"
    r"(?:,?\s+(?:[#*]\s+)?sections?\s+(\d+(?:\s*(?:-|–|,|and|to)\s*\d+)*))?"
)
HEADING = re.compile(r"^## (\d+)\. \S", re.M)


def cited_sections(text: str) -> list[tuple[str, set[int]]]:
    """Each docs/ page a text cites, with the section numbers it names (none
    when it cites the whole page)."""
    found = []
    for m in CITATION.finditer(text):
        numbers: set[int] = set()
        if m[2]:
            parts = re.findall(r"\d+|-|–|to", m[2])
            i = 0
            while i < len(parts):
                first = int(parts[i])
                if i + 2 < len(parts) and parts[i + 1] in ("-", "–", "to"):
                    numbers.update(range(first, int(parts[i + 2]) + 1))
                    i += 3
                else:
                    numbers.add(first)
                    i += 1
        found.append((m[1], numbers))
    return found


def headings(page: Path) -> set[int]:
    return {int(n) for n in HEADING.findall(page.read_text())}


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT)
            if not path.is_file() or SKIPPED_PARTS & set(rel.parts):
                continue
            if any(part.endswith(".egg-info") for part in rel.parts):
                continue
            data = path.read_bytes()
            if b"\0" in data:
                continue  # a built binary: no citations in it
            files.append(path)
    return files


def test_the_citation_reader_reads_each_form() -> None:
    assert cited_sections("(docs/abi.md section 9)") == [("abi", {9})]
    assert cited_sections("docs/abi.md sections 2-4") == [("abi", {2, 3, 4})]
    assert cited_sections("docs/real-gunyah.md\n# sections 5 and 6") == [("real-gunyah", {5, 6})]
    assert cited_sections("docs/real-gunyah.md sections 11 to 13, 16") == [
        ("real-gunyah", {11, 12, 13, 16})
    ]
    assert cited_sections("docs/vcpu.md, section 2") == [("vcpu", {2})]
    assert cited_sections("see docs/boot.md") == [("boot", set())]
    # an upstream repository's docs/ is not the project's
    assert cited_sections("quic/gunyah-hypervisor docs/api/gunyah_api.md") == []
    assert cited_sections("quic/gunyah-hypervisor/docs/x.md") == []
    assert OUTSIDE.search("(REAL" + "-GUNYAH.md, PSCI)")
    assert OUTSIDE.search("../" + "shared/DESIGN.md")
    assert not OUTSIDE.search("docs/abi.md and docs/real-gunyah.md")


def test_nothing_cites_a_document_outside_the_repository() -> None:
    offenders = []
    for path in scanned_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(errors="replace")
        hits = sorted({m.group(0) for m in OUTSIDE.finditer(text)})
        if hits:
            offenders.append(f"{rel}: {', '.join(hits)}")
    assert not offenders, "cite docs/ instead:\n" + "\n".join(offenders)


def test_every_cited_page_and_section_exists() -> None:
    pages: dict[str, set[int]] = {}
    missing = []
    count = 0
    for path in scanned_files():
        rel = path.relative_to(ROOT).as_posix()
        for page, sections in cited_sections(path.read_text(errors="replace")):
            count += 1
            target = DOCS / f"{page}.md"
            if not target.is_file():
                missing.append(f"{rel}: docs/{page}.md does not exist")
                continue
            if page not in pages:
                pages[page] = headings(target)
            if not sections <= pages[page]:
                missing.append(f"{rel}: docs/{page}.md has no section {sections - pages[page]}")
    assert count > 20  # the scan sees the citations the code makes
    assert {"abi", "real-gunyah"} <= set(pages)
    assert not missing, "\n".join(missing)


def test_the_measured_pages_have_stable_numbered_sections() -> None:
    """Sections are cited by number: each measured page numbers them 1..N with
    no gap or repeat, so adding one at the end never moves a citation."""
    for name in ("abi", "real-gunyah", "boot", "vcpu"):
        numbers = HEADING.findall((DOCS / f"{name}.md").read_text())
        assert [int(n) for n in numbers] == list(range(1, len(numbers) + 1)), name
