"""Precision and recall of the linter on the labelled real-code corpus.

    python benchmarks/realworld/score.py [--mirrors DIR] [--work DIR] [--details] [--json FILE]
                                         [--manifest NAME ...]

For every repository and commit of `manifest/*.toml`, the files are brought out of the fetched
snapshot (see snapshots.py; fetch each repository first) and the whole tree is linted as a user
would (`tbptt-lint --isolated --no-cache <root>`, default rules). Then, per labelled file:

- a finding inside a span counts once per (span, code): right when the span expects the code,
  ignored when it tolerates it, a false alarm otherwise;
- a finding in a labelled file outside all of its spans is a false alarm (files are labelled
  whole);
- an expected (span, code) with no finding is a miss.

Precision = right / (right + false alarms); recall = right / expected. Both are printed per rule
and overall. Repositories that are not fetched are named and left out of the figures.
`--manifest round6.toml` scores only the spans of the named manifest files (a held-out round
measured on its own); every manifest file is still loaded and checked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest import Span, load
from snapshots import DEFAULT_MIRRORS, SnapshotMissing, extract


@dataclass
class Finding:
    code: str
    path: str  # relative to the repository root
    line: int  # in a notebook: a line of its code cells joined in order
    message: str


@dataclass
class Score:
    right: set[tuple[str, str]] = field(default_factory=set)  # (span id, code)
    missed: set[tuple[str, str]] = field(default_factory=set)
    false_alarms: list[tuple[str, Finding]] = field(default_factory=list)  # (span id or "", f)
    skipped: list[str] = field(default_factory=list)  # "repo@commit" not available


def lint_tree(root: Path) -> list[Finding]:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tbptt_lint",
            "--isolated",
            "--no-cache",
            "--exit-zero",
            "--output-format",
            "json",
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise RuntimeError(f"tbptt-lint failed on {root}: {run.stderr.strip()}")
    findings = []
    joined_lines: dict[Path, dict[tuple[int, int], int]] = {}
    for item in json.loads(run.stdout or "[]"):
        path = Path(item["filename"])
        relative = path.relative_to(root.resolve()) if path.is_absolute() else path
        line = item["location"]["row"]
        if item.get("cell") is not None:
            if path not in joined_lines:
                joined_lines[path] = notebook_lines(root / relative)
            line = joined_lines[path].get((item["cell"], line), line)
        findings.append(Finding(item["code"], relative.as_posix(), line, item["message"]))
    return findings


def notebook_lines(path: Path) -> dict[tuple[int, int], int]:
    """(cell, line in cell) -> line of the notebook's code cells joined in order, the program
    the linter analyses and the manifest's line numbers count in."""
    from tbptt_lint.notebooks import read_notebook

    positions = read_notebook(path.read_bytes()).positions
    return {position: number for number, position in enumerate(positions, start=1)}


def score_group(spans: list[Span], findings: list[Finding], score: Score) -> None:
    """Score the spans of one repository at one commit against that tree's findings."""
    by_path: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_path[span.path].append(span)
    found: set[tuple[str, str]] = set()
    for finding in findings:
        labelled = by_path.get(finding.path)
        if labelled is None:
            continue  # not a labelled file
        inside = [s for s in labelled if s.contains(finding.line)]
        if not inside:
            score.false_alarms.append(("", finding))
            continue
        for span in inside:
            key = (span.id, finding.code)
            if finding.code in span.expect:
                found.add(key)
            elif finding.code not in span.tolerate and key not in found:
                found.add(key)
                score.false_alarms.append((span.id, finding))
    for span in spans:
        for code in span.expect:
            (score.right if (span.id, code) in found else score.missed).add((span.id, code))


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "-"


def report(spans: list[Span], score: Score, details: bool) -> dict[str, object]:
    scored = [s for s in spans if f"{s.repo}@{s.commit}" not in score.skipped]
    codes = sorted({c for s in scored for c in s.expect} | {f.code for _, f in score.false_alarms})
    right = Counter(code for _, code in score.right)
    missed = Counter(code for _, code in score.missed)
    alarms = Counter(f.code for _, f in score.false_alarms)
    print(
        f"{len(scored)} spans ({sum(s.buggy for s in scored)} buggy) in "
        f"{len({s.path for s in scored})} files of {len({s.repo for s in scored})} repositories"
    )
    if score.skipped:
        print(f"not scored (not fetched): {', '.join(sorted(set(score.skipped)))}")
    header = ("rule", "expected", "found", "missed", "false", "prec", "rec")
    print("\n{:8} {:>8} {:>6} {:>6} {:>6} {:>5} {:>5}".format(*header))
    rows = {}
    for code in codes:
        expected = right[code] + missed[code]
        rows[code] = {
            "expected": expected,
            "found": right[code],
            "missed": missed[code],
            "false_alarms": alarms[code],
            "precision": ratio(right[code], right[code] + alarms[code]),
            "recall": ratio(right[code], expected),
        }
        row = rows[code]
        print(
            f"{code:8} {expected:8} {right[code]:6} {missed[code]:6} {alarms[code]:6} "
            f"{row['precision']:>5} {row['recall']:>5}"
        )
    total_right, total_missed = len(score.right), len(score.missed)
    total_alarms = len(score.false_alarms)
    precision = ratio(total_right, total_right + total_alarms)
    recall = ratio(total_right, total_right + total_missed)
    print(
        f"{'all':8} {total_right + total_missed:8} {total_right:6} {total_missed:6} "
        f"{total_alarms:6} {precision:>5} {recall:>5}"
    )
    print(f"\nprecision {precision} ({total_right} right, {total_alarms} false alarms)")
    print(f"recall    {recall} ({total_right} of {total_right + total_missed} expected found)")
    if details:
        by_id = {s.id: s for s in spans}
        for span_id, code in sorted(score.missed):
            span = by_id[span_id]
            print(f"MISSED {code} in {span_id} ({span.repo}:{span.path}:{span.first}-{span.last})")
        for span_id, finding in score.false_alarms:
            where = f"span {span_id}" if span_id else "outside every span"
            print(
                f"FALSE ALARM {finding.code} {where}: {finding.path}:{finding.line}: "
                f"{finding.message[:160]}"
            )
    return {
        "rules": rows,
        "precision": precision,
        "recall": recall,
        "right": total_right,
        "missed": total_missed,
        "false_alarms": total_alarms,
        "skipped": sorted(set(score.skipped)),
    }


def select(spans: list[Span], names: list[str] | None) -> list[Span]:
    """The spans of the manifest files named (by file name, `round6.toml` or `round6`); all
    spans when none is named. A name that matches no manifest file is an error."""
    if not names:
        return spans
    wanted = {name if name.endswith(".toml") else f"{name}.toml" for name in names}
    wanted = {Path(name).name for name in wanted}
    unknown = wanted - {span.source for span in spans}
    if unknown:
        raise SystemExit(f"no manifest file named {', '.join(sorted(unknown))}")
    return [span for span in spans if span.source in wanted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--work", type=Path, help="where trees are extracted (kept for reuse)")
    parser.add_argument("--details", action="store_true", help="list misses and false alarms")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument(
        "--manifest",
        action="append",
        metavar="NAME",
        help="score only the spans of this manifest file (repeatable), e.g. round6.toml",
    )
    args = parser.parse_args()
    spans = select(load(), args.manifest)
    groups: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for span in spans:
        groups[(span.repo, span.commit)].append(span)
    score = Score()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        for (repo, commit), group in sorted(groups.items()):
            into = work / f"{repo.replace('/', '+')}@{commit[:12]}"
            try:
                root = extract(repo, commit, into, args.mirrors)
            except SnapshotMissing as missing:
                print(f"skipped: {missing}", file=sys.stderr)
                score.skipped.append(f"{repo}@{commit}")
                continue
            score_group(group, lint_tree(root), score)
        figures = report(spans, score, args.details)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
