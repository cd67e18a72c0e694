"""The real-code corpus's manifest is well formed, and its scoring counts what LABELLING.md says.

The corpus itself is scored by `benchmarks/realworld/score.py` from fetched snapshots, which CI
does not have; what can be checked without them is checked here.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from tbptt_lint import testing

ROOT = Path(__file__).resolve().parents[2]
REALWORLD = ROOT / "benchmarks" / "realworld"
sys.path.insert(0, str(REALWORLD))

import manifest  # noqa: E402
import score  # noqa: E402

MIRRORS = ROOT / "tests" / "realworld" / "mirrors"


def test_the_manifest_loads_and_meets_the_corpus_size() -> None:
    spans = manifest.load()
    assert len(spans) >= 80
    assert len({s.repo for s in spans}) >= 25
    assert sum(s.buggy for s in spans) >= 25


def test_every_buggy_span_has_a_mirror_that_expects_its_codes() -> None:
    for span in manifest.load():
        if span.mirror is None:
            assert not span.buggy, f"{span.id}: a buggy span needs a mirror"
            continue
        mirror = ROOT / span.mirror
        assert mirror.exists(), f"{span.id}: {span.mirror} does not exist"
        files = [mirror] if mirror.is_file() else sorted(mirror.glob("*.py"))
        text = "".join(f.read_text(encoding="utf-8") for f in files)
        mirrored = testing.expected_codes(text)
        assert mirrored <= span.expect | span.tolerate, f"{span.id}: {mirrored}"
        assert span.expect <= mirrored, f"{span.id}: the mirror does not show {span.expect}"


def test_no_reserved_repository_is_labelled() -> None:
    reserved_list = ROOT.parent / "shared" / "reserved-repos.txt"
    if not reserved_list.is_file():
        pytest.skip("the reserved list lives beside the project on the team's machines")
    reserved = {
        line.strip().lower()
        for line in reserved_list.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not {s.repo.lower() for s in manifest.load()} & reserved


def write_manifest(directory: Path, text: str) -> None:
    directory.mkdir()
    (directory / "m.toml").write_text(textwrap.dedent(text), encoding="utf-8")


SPAN = """\
    [[span]]
    id = "{id}"
    repo = "a/b"
    commit = "{commit}"
    path = "train.py"
    lines = [{first}, {last}]
    expect = {expect}
    tolerate = {tolerate}
    why = "w"
"""


def span_text(**values: object) -> str:
    defaults: dict[str, object] = {
        "id": "x",
        "commit": "0" * 40,
        "first": 10,
        "last": 20,
        "expect": '["TBP001"]',
        "tolerate": "[]",
    }
    return SPAN.format(**(defaults | values))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (span_text(commit="abc"), "40-hex"),
        (span_text(first=20, last=10), "not a range"),
        (span_text(expect='["TBP1"]'), "TBPnnn"),
        (span_text(tolerate='["TBP001"]'), "both expected and tolerated"),
        (span_text() + span_text(first=30, last=40), "used twice"),
        (span_text() + span_text(id="y", first=15, last=40), "overlap"),
        (span_text().replace('why = "w"', 'why = "w"\nbogus = 1'), "unknown keys"),
    ],
)
def test_malformed_manifests_are_refused_naming_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    write_manifest(tmp_path / "m", text)
    with pytest.raises(manifest.ManifestError, match=problem):
        manifest.load(tmp_path / "m")


def test_scoring_counts_right_missed_tolerated_and_false_alarms(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "m",
        span_text(id="bug", first=10, last=20, expect='["TBP001", "TBP002"]', tolerate='["TBP008"]')
        + span_text(id="clean", first=30, last=40, expect="[]"),
    )
    spans = manifest.load(tmp_path / "m")
    findings = [
        score.Finding("TBP001", "train.py", 12, ""),
        score.Finding("TBP001", "train.py", 13, ""),  # same span and code: counted once
        score.Finding("TBP008", "train.py", 14, ""),  # tolerated
        score.Finding("TBP011", "train.py", 15, ""),  # unexpected in a buggy span
        score.Finding("TBP006", "train.py", 35, ""),  # in a clean span
        score.Finding("TBP006", "train.py", 50, ""),  # a labelled file, outside spans
        score.Finding("TBP001", "other.py", 12, ""),  # not a labelled file
    ]
    result = score.Score()
    score.score_group(spans, findings, result)
    assert result.right == {("bug", "TBP001")}
    assert result.missed == {("bug", "TBP002")}
    assert [(span_id, f.code, f.line) for span_id, f in result.false_alarms] == [
        ("bug", "TBP011", 15),
        ("clean", "TBP006", 35),
        ("", "TBP006", 50),
    ]


def test_scoring_can_be_restricted_to_named_manifest_files() -> None:
    spans = manifest.load()
    sources = sorted({s.source for s in spans})
    assert score.select(spans, None) == spans
    first = sources[0]
    chosen = score.select(spans, [first.removesuffix(".toml")])
    assert chosen and {s.source for s in chosen} == {first}
    assert score.select(spans, [first]) == chosen
    with pytest.raises(SystemExit, match="no manifest file named nowhere.toml"):
        score.select(spans, ["nowhere"])
