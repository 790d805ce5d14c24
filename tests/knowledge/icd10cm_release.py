"""Checks ICD-10-CM entries of the code lists against the CMS release shipped in PyPI simple-icd-10-cm."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import yaml

with warnings.catch_warnings():  # 1.5.0 loads its data through importlib.resources' deprecated read_text
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    import simple_icd_10_cm as release

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
PACKAGE = "simple-icd-10-cm"
# The release every verified ICD-10-CM entry was checked against; its `source` must name it. A new package
# version ships a new release: re-run these checks, fix what they report and update this text and the sources.
PACKAGE_VERSION = "1.5.0"
RELEASE_YEAR = "2026"  # the <version> of the release's tabular XML: the CMS fiscal year (Oct 2025 - Sep 2026)
RELEASE_SOURCE = f"CMS ICD-10-CM FY{RELEASE_YEAR} (April 1, 2026 update), PyPI {PACKAGE} {PACKAGE_VERSION}"


@dataclass(frozen=True)
class NonCodePrefix:
    """A family prefix that is not itself a code: the release heading it stands for and why it is right."""

    heading: str  # a chapter or block of the release; its description is the entry's display
    chapter: str  # every release code beginning with the prefix must lie in this chapter
    why: str


NON_CODE_PREFIXES: dict[str, NonCodePrefix] = {
    "C": NonCodePrefix(
        heading="C00-C96", chapter="2",
        why="ICD-10-CM has no code 'C'. Every code beginning with C is a malignant neoplasm of chapter 2 "
            "(C00-C96 with C4A, C7A, C7B), the range the release heads 'Malignant neoplasms (C00-C96)'; the "
            "letter keeps chapter 2's D codes (in situ, benign, uncertain behaviour) out.",
    ),
    "O": NonCodePrefix(
        heading="15", chapter="15",
        why="ICD-10-CM has no code 'O'. Chapter 15 'Pregnancy, childbirth and the puerperium (O00-O9A)' is "
            "exactly the codes beginning with O, so the letter is the chapter.",
    ),
}


@dataclass(frozen=True)
class ListEntry:
    """One ICD-10-CM code or family of a code-list file, as written there."""

    file: str
    kind: str  # "code" or "prefix"
    code: str
    display: str
    source: str
    verified: object
    laterality: str | None
    laterality_digit: Mapping[str, str] | None = None

    @property
    def name(self) -> str:
        return f"{self.file} {self.kind} {self.code}"


def read_entries(directories: Iterable[Path], systems: Mapping[str, str]) -> list[ListEntry]:
    """Every ICD-10-CM entry of the code-list files in these directories (absent ones are skipped)."""
    entries: list[ListEntry] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            label = f"{directory.parent.name}/{directory.name}/{path.name}"
            for kind, section in (("code", "codes"), ("prefix", "prefixes")):
                for raw in document.get(section) or []:
                    if systems.get(str(raw.get("system")), raw.get("system")) != ICD10CM:
                        continue
                    entries.append(ListEntry(
                        file=label, kind=kind, code=str(raw.get(kind)), display=str(raw.get("display")),
                        source=str(raw.get("source")), verified=raw.get("verified"),
                        laterality=raw.get("laterality"),
                        laterality_digit=raw.get("laterality_digit"),
                    ))
    return entries


def side_of(description: str) -> str | None:
    """The laterality a release description states ("right", "left", "bilateral"), or None."""
    words = set(re.findall(r"[a-z]+", description.lower()))
    if "bilateral" in words or {"right", "left"} <= words:
        return "bilateral"
    return "right" if "right" in words else "left" if "left" in words else None


def _common_side(codes: Iterable[str]) -> str | None:
    """The side every one of these codes states, or None when they differ or state none."""
    sides = {side_of(release.get_description(code)) for code in codes}
    return sides.pop() if len(sides) == 1 else None


def _leaves_under(prefix: str) -> list[str]:
    return [code for code in release.get_descendants(prefix) if release.is_leaf(code)]


def _codes_beginning(prefix: str) -> list[str]:
    wanted = prefix.replace(".", "").upper()
    return [code for code in release.get_all_codes(False) if code.startswith(wanted)]


def problems(entry: ListEntry) -> list[str]:
    """What is wrong with one entry against the release; an empty list means the check passed."""
    found: list[str] = []
    exception = NON_CODE_PREFIXES.get(entry.code) if entry.kind == "prefix" else None
    if exception is not None:
        inside = _codes_beginning(entry.code)
        outside = [c for c in inside if exception.chapter not in release.get_ancestors(c)]
        if not inside or outside:
            found.append(f"documented non-code prefix no longer matches chapter {exception.chapter}: "
                         f"{len(inside)} codes begin with it, outside the chapter: {outside[:5]}")
        expected_display = release.get_description(exception.heading)
        expected_side = _common_side(c for c in inside if release.is_leaf(c))
    elif not release.is_valid_item(entry.code):
        return [f"{entry.code!r} is not in the release", *_verification(entry, passed=False)]
    elif entry.kind == "code" and not release.is_leaf(entry.code):
        found.append(f"{entry.code!r} is a category, not a complete code: list it under prefixes")
        expected_display, expected_side = release.get_description(entry.code), None
    elif entry.kind == "prefix" and not release.is_category_or_subcategory(entry.code):
        return [f"prefix {entry.code!r} is a chapter or block, not a category or subcategory code "
                "(document it in NON_CODE_PREFIXES if it is right)", *_verification(entry, passed=False)]
    else:
        expected_display = release.get_description(entry.code)
        leaves = [entry.code] if release.is_leaf(entry.code) else _leaves_under(entry.code)
        expected_side = _common_side(leaves)
    if entry.display != expected_display:
        found.append(f"display {entry.display!r} differs from the release's {expected_display!r}")
    if entry.laterality != expected_side:
        found.append(f"laterality {entry.laterality!r} but the release gives {expected_side!r}")
    if entry.kind == "prefix" and exception is None and release.is_valid_item(entry.code):
        found += _digit_problems(entry)
    return found + _verification(entry, passed=not found)


def digit_side_key(code: str) -> str:
    """The character that carries a code's laterality digit (a 7th character, a letter, is skipped)."""
    bare = code.replace(".", "")
    if len(bare) == 7 and bare[-1].isalpha():
        bare = bare[:-1]
    return bare[-1:]


def digit_side(code: str, digits: Mapping[str, str]) -> str | None:
    """The side a family's laterality digit gives a code."""
    return digits.get(digit_side_key(code))


def _digit_problems(entry: ListEntry) -> list[str]:
    """A family whose codes name different sides needs a laterality_digit, and it must give each code
    the side its description states (and no side to a code that states none)."""
    leaves = _leaves_under(entry.code)
    sides = {side_of(release.get_description(c)) for c in leaves}
    if entry.laterality_digit is None:
        by_digit: dict[str, set[str | None]] = {}
        for code in leaves:
            by_digit.setdefault(digit_side_key(code), set()).add(side_of(release.get_description(code)))
        uniform = all(len(found) == 1 for found in by_digit.values())  # else no digit can say the side
        return ([f"the family's codes name different sides {sorted(s or '-' for s in sides)} by their last "
                 "digit: give a laterality_digit"] if uniform and len(sides - {None}) and len(sides) > 1 else [])
    wrong = [c for c in leaves if digit_side(c, entry.laterality_digit) != side_of(release.get_description(c))]
    return [f"laterality_digit gives the wrong side to {wrong[:5]}"] if wrong else []


def _verification(entry: ListEntry, passed: bool) -> list[str]:
    if not passed:
        return ["verified must not be true for an entry that fails the check"] if entry.verified is True else []
    found = []
    if entry.verified is not True:
        found.append("the check passed: set verified: true")
    if RELEASE_SOURCE not in entry.source:
        found.append(f"source must name the release it was checked against: {RELEASE_SOURCE!r}")
    return found


def installed_release() -> tuple[str, str]:
    """The installed package version and the <version> (fiscal year) of the tabular XML it ships."""
    data = resources.files("simple_icd_10_cm") / "data"
    tabular = [item for item in data.iterdir() if item.name.endswith(".xml")]
    head = ""
    if len(tabular) == 1:
        with tabular[0].open("rb") as xml:
            head = xml.read(400).decode("utf-8")
    year = re.search(r"<version>(\w+)</version>", head)
    return metadata.version(PACKAGE), year.group(1) if year else ""


def uncovered(family: str, entries: Iterable[ListEntry]) -> list[str]:
    """The release's complete codes in this family (or the code itself) that no entry matches: an entry
    matches its own code exactly and, as a prefix, every code it begins (compared without dots)."""
    def bare(code: str) -> str:
        return code.replace(".", "").upper()

    codes = {bare(e.code) for e in entries if e.kind == "code"}
    prefixes = [bare(e.code) for e in entries if e.kind == "prefix"]
    leaves = [family] if release.is_leaf(family) else _leaves_under(family)
    return [leaf for leaf in leaves
            if bare(leaf) not in codes and not any(bare(leaf).startswith(p) for p in prefixes)]
