"""The labelled spans of `manifest/*.toml`, read and checked (see LABELLING.md)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
MANIFEST_DIR = HERE / "manifest"
PROJECT_ROOT = HERE.parents[1]
CODE = re.compile(r"^TBP\d{3}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
SPAN_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
REQUIRED = ("id", "repo", "commit", "path", "lines", "expect", "why")
OPTIONAL = ("tolerate", "mirror")


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Span:
    id: str
    repo: str
    commit: str
    path: str
    first: int
    last: int
    expect: frozenset[str]
    tolerate: frozenset[str]
    why: str
    mirror: str | None
    source: str  # the manifest file it came from

    @property
    def buggy(self) -> bool:
        return bool(self.expect)

    def contains(self, line: int) -> bool:
        """`line`: 1-based; in a notebook, a line of its code cells joined in order."""
        return self.first <= line <= self.last


def _span(table: dict[str, object], source: Path) -> Span:
    where = f"{source.name}: span {table.get('id', '?')!r}"
    missing = [key for key in REQUIRED if key not in table]
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(missing)}")
    unknown = set(table) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise ManifestError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    span_id, repo, commit, path = (str(table[k]) for k in ("id", "repo", "commit", "path"))
    lines = table["lines"]
    expect = table["expect"]
    tolerate = table.get("tolerate", [])
    if not SPAN_ID.match(span_id):
        raise ManifestError(f"{where}: id must match {SPAN_ID.pattern}")
    if repo.count("/") != 1:
        raise ManifestError(f"{where}: repo must be owner/name")
    if not COMMIT.match(commit):
        raise ManifestError(f"{where}: commit must be a full 40-hex SHA")
    if not (isinstance(lines, list) and len(lines) == 2 and all(isinstance(n, int) for n in lines)):
        raise ManifestError(f"{where}: lines must be [first, last]")
    if not 1 <= lines[0] <= lines[1]:
        raise ManifestError(f"{where}: lines {lines} are not a range")
    for key, codes in (("expect", expect), ("tolerate", tolerate)):
        if not isinstance(codes, list) or not all(
            isinstance(c, str) and CODE.match(c) for c in codes
        ):
            raise ManifestError(f"{where}: {key} must be a list of TBPnnn codes")
    if set(expect) & set(tolerate):
        raise ManifestError(f"{where}: a code is both expected and tolerated")
    mirror = table.get("mirror")
    return Span(
        id=span_id,
        repo=repo,
        commit=commit,
        path=path,
        first=lines[0],
        last=lines[1],
        expect=frozenset(expect),
        tolerate=frozenset(tolerate),
        why=str(table["why"]),
        mirror=str(mirror) if mirror is not None else None,
        source=source.name,
    )


def load(directory: Path = MANIFEST_DIR) -> list[Span]:
    """Every span of every manifest file, checked: ids unique, and the spans of one file at one
    commit apart (a file may be labelled at several commits: before and after a fix)."""
    spans: list[Span] = []
    for source in sorted(directory.glob("*.toml")):
        with source.open("rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise ManifestError(f"{source.name}: {error}") from None
        tables = data.get("span", [])
        if not isinstance(tables, list):
            raise ManifestError(f"{source.name}: [[span]] tables expected")
        spans.extend(_span(table, source) for table in tables)
    seen: dict[str, Span] = {}
    for span in spans:
        if span.id in seen:
            raise ManifestError(f"span id {span.id!r} is used twice")
        seen[span.id] = span
    by_file: dict[tuple[str, str, str], list[Span]] = {}
    for span in spans:
        by_file.setdefault((span.repo, span.commit, span.path), []).append(span)
    for group in by_file.values():
        ordered = sorted(group, key=lambda s: s.first)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if after.first <= before.last:
                raise ManifestError(f"spans {before.id} and {after.id} overlap")
    return spans
