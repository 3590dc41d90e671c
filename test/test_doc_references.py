"""Everything a user needs is in the repository: every document reference in README.md and docs/
resolves inside it (relative links, repository paths named in the text, other documents by file
name), no page names a path of a development machine, and the specification's requirement
numbers that the conformance kit claims to verify are the ones it verifies."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bms_tools.conformance.requirements import REQUIREMENTS

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TOP_DIRS = ("docs", "src", "test", "config", "launch", "bench", "scripts")
# A repository path in the text: docs/x.md, src/pkg/file.py, launch/sim.launch.xml, ...
PATH_IN_TEXT = re.compile(r"(?<![\w/.-])((?:" + "|".join(TOP_DIRS) + r")/[\w./-]*[\w/])")
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOCUMENT_NAME = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|tmp/h)/")
# Paths that name what a run creates or a placeholder, not a file of the repository.
GENERATED = ("runs/", "state/", "build/", "install/", "log/")


def _markdown_names() -> set[str]:
    """File names of the repository's Markdown documents (outside build outputs and the venv)."""
    skip = {".git", ".venv", "build", "install", "log", "node_modules", "runs", "state"}
    names = set()
    for _folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip]
        names.update(f for f in files if f.endswith(".md"))
    return names


KNOWN_DOCUMENTS = _markdown_names()


def relative(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def references(doc: Path) -> list[tuple[int, str, Path]]:
    """(line, reference, where it must exist) of every reference in ``doc``."""
    found = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            found.append((number, target, (doc.parent / target.split("#")[0]).resolve()))
        for path in PATH_IN_TEXT.findall(line):
            if any(c in path for c in "<*{$") or "NAME" in path or path.startswith(GENERATED):
                continue
            found.append((number, path, ROOT / path.rstrip(".")))
    return found


@pytest.mark.parametrize("doc", DOCUMENTS, ids=relative)
def test_every_reference_resolves_inside_the_repository(doc: Path):
    broken = [f"{relative(doc)}:{line}: {ref}" for line, ref, target in references(doc)
              if not target.exists() or ROOT not in target.parents and target != ROOT]
    assert not broken, "references to nothing in the repository:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=relative)
def test_documents_named_by_file_name_exist(doc: Path):
    missing = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        missing += [f"{relative(doc)}:{number}: {name}" for name in DOCUMENT_NAME.findall(line) if name not in KNOWN_DOCUMENTS]
    assert not missing, "documents that are not in the repository:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=relative)
def test_no_path_of_a_development_machine(doc: Path):
    lines = [f"{relative(doc)}:{n}: {line.strip()}" for n, line in enumerate(doc.read_text().splitlines(), 1)
             if MACHINE_PATH.search(line)]
    assert not lines, "\n".join(lines)


def test_the_kit_verifies_what_the_specification_says_it_verifies():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "standard").glob("*.md")))
    # A requirement is specified as "**SLV-03** ..." up to the next one; it says "Verified: kit
    # (passive)" or "Verified: kit (intrusive)" when the kit checks it.
    chunks = re.split(r"\*\*([A-Z]{3}-\d{2})\*\*", text)[1:]
    specified = {}
    for number, body in zip(chunks[::2], chunks[1::2], strict=True):
        assert number not in specified, f"{number} is specified twice"
        how = re.search(r"Verified:\*?\s*([^.*]*)", body)
        assert how, f"{number} does not say how it is verified"
        specified[number] = " ".join(how.group(1).split())
    claimed = {n for n, how in specified.items() if how.startswith("kit")}
    assert claimed == set(REQUIREMENTS), (f"the kit checks {sorted(set(REQUIREMENTS) - claimed)} without the "
                                          f"specification saying so, the specification claims "
                                          f"{sorted(claimed - set(REQUIREMENTS))} the kit does not check")
    for number, requirement in REQUIREMENTS.items():
        assert specified[number].startswith(f"kit ({requirement.mode})"), (number, specified[number])
