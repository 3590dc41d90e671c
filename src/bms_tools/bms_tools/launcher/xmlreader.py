"""A minimal XML element tree that keeps the line of every element, for error messages."""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from bms_tools.launcher.errors import LaunchError, Location


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    where: Location
    children: list[Element] = field(default_factory=list)


def read_xml(path: Path) -> Element:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LaunchError(Location(path, 0), f"cannot read launch file: {exc.strerror}") from None
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Element] = []
    roots: list[Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        element = Element(tag, attrs, Location(path, parser.CurrentLineNumber))
        (stack[-1].children if stack else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise LaunchError(Location(path, exc.lineno), f"not well-formed XML: {exc}") from None
    return roots[0]
