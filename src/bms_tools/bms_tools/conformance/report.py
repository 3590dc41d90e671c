"""Per-requirement results: the printed PASS/FAIL report and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from bms_tools.conformance.requirements import REQUIREMENTS

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Result:
    number: str
    status: str
    detail: str = ""


@dataclass
class Report:
    subject: str  # what was checked: node name or command
    kind: str
    results: dict[str, Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # printed after the verdict

    def record(self, number: str, ok: bool, detail: str = "") -> None:
        """Record one finding; a requirement fails if any of its findings fails (the first
        failure's detail is kept)."""
        if number not in REQUIREMENTS:
            raise KeyError(f"unknown requirement {number}")
        previous = self.results.get(number)
        if previous is not None and previous.status == FAIL:
            return
        if previous is not None and ok and previous.status == PASS:
            return
        self.results[number] = Result(number, PASS if ok else FAIL, detail)

    def skip(self, number: str, why: str) -> None:
        if number not in self.results:
            self.results[number] = Result(number, SKIP, why)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results.values() if r.status == FAIL]

    def ordered(self) -> list[Result]:
        return sorted(self.results.values(), key=lambda r: r.number)

    def text(self) -> str:
        lines = [f"conformance of {self.subject} as kind {self.kind}"]
        for result in self.ordered():
            line = f"  {result.status:4}  {result.number}  {REQUIREMENTS[result.number].title}"
            if result.detail and result.status != PASS:
                line += f"\n              {result.detail}"
            lines.append(line)
        counts = {s: sum(r.status == s for r in self.results.values()) for s in (PASS, FAIL, SKIP)}
        verdict = "CONFORMS" if not self.failed else "DOES NOT CONFORM"
        lines.append(f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped: {verdict}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def write_junit(self, path: Path) -> None:
        ordered = self.ordered()
        suite = ET.Element("testsuite", name=f"bms conformance {self.kind}", tests=str(len(ordered)),
                           failures=str(len(self.failed)),
                           skipped=str(sum(r.status == SKIP for r in ordered)))
        for result in ordered:
            case = ET.SubElement(suite, "testcase", classname=f"conformance.{self.kind}",
                                 name=f"{result.number} {REQUIREMENTS[result.number].title}")
            if result.status == FAIL:
                ET.SubElement(case, "failure", message=result.detail).text = result.detail
            elif result.status == SKIP:
                ET.SubElement(case, "skipped", message=result.detail)
        root = ET.Element("testsuites")
        root.append(suite)
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
