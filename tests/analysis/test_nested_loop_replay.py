"""A loop nested in others is entered again on every pass of each loop around it, mostly in
the state of an earlier entry: its run is replayed rather than interpreted again (issue 13,
`training_benchmark.py` of PyG, seven loops deep). Replaying must change no finding and must
save interpretations; the work is counted, never timed."""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint.analysis import interpreter
from tbptt_lint.analysis.api import check_source
from tbptt_lint.settings import Settings


def nested(depth: int, innermost: str) -> str:
    """A training loop inside `depth` loops, each of which computes a value of its own; the
    state starts anew before the training loop."""
    lines = [
        "import torch",
        "",
        "",
        "def run(args, model, optimizer, loader):",
        "    hidden = None",
        "    total = 0",
    ]
    indent = "    "
    for level in range(depth):
        lines.append(f"{indent}for item_{level} in args.items_{level}:")
        indent += "    "
        lines.append(f"{indent}count_{level} = total + {level}")
        lines.append(f"{indent}if args.flag_{level}:")
        lines.append(f"{indent}    scale_{level} = count_{level}")
    lines.append(f"{indent}hidden = None")
    lines.append(f"{indent}for x, y in loader:")
    lines += [indent + "    " + line for line in textwrap.dedent(innermost).splitlines()]
    return "\n".join(lines) + "\n"


CORRECT = """\
out, hidden = model(x, hidden)
loss = (out - y).pow(2).mean()
optimizer.zero_grad()
loss.backward()
optimizer.step()
total += loss.item()
hidden = hidden.detach()
"""
# The state is never cut (TBP001) and the loss is summed with its graph (TBP006).
BUGGY = """\
out, hidden = model(x, hidden)
loss = (out - y).pow(2).mean()
optimizer.zero_grad()
loss.backward()
optimizer.step()
total += loss
"""
# A cut copy written back, and a return from deep inside: what a replay must do again.
WRITTEN_BACK = """\
h, c = hidden
h = h.detach()
hidden = (h, c)
out, hidden = model(x, hidden)
loss = out.mean()
loss.backward()
if args.stop:
    return hidden
"""


def findings(source: str) -> list[tuple[str, str]]:
    """(code, every field of the finding: positions, message, fix), sorted."""
    found = check_source(source, "example.py", Settings(select=("TBP",)))
    return sorted((f.code, repr(f)) for f in found)


def body_runs(monkeypatch: pytest.MonkeyPatch, source: str, replay: bool) -> int:
    """How many times loop bodies are interpreted while `source` is linted."""
    count = 0
    real = interpreter.UnitInterpreter.exec_block

    def counted(self, body, paths):  # type: ignore[no-untyped-def]
        nonlocal count
        if self.loop_stack and self.loop_stack[-1].node.body.body is body:
            count += 1
        return real(self, body, paths)

    with monkeypatch.context() as patch:
        patch.setattr(interpreter.UnitInterpreter, "exec_block", counted)
        patch.setattr(interpreter, "REPLAY_LOOP_RUNS", replay)
        findings(source)
    return count


@pytest.mark.parametrize("innermost", [CORRECT, BUGGY, WRITTEN_BACK])
@pytest.mark.parametrize("depth", [1, 3, 6])
def test_replaying_nested_loops_changes_no_finding(monkeypatch, innermost, depth):
    source = nested(depth, innermost)
    replayed = findings(source)
    monkeypatch.setattr(interpreter, "REPLAY_LOOP_RUNS", False)
    assert replayed == findings(source)


def test_the_buggy_nested_loop_is_found_and_its_twin_is_silent():
    buggy = {code for code, *_ in findings(nested(6, BUGGY))}
    assert {"TBP001", "TBP006"} <= buggy
    assert findings(nested(6, CORRECT)) == []


def test_a_loop_six_deep_is_interpreted_far_fewer_times(monkeypatch):
    source = nested(6, CORRECT)
    interpreted = body_runs(monkeypatch, source, replay=False)
    replayed = body_runs(monkeypatch, source, replay=True)
    assert interpreted > 1000  # 1500 on this source: each pass re-runs the loops inside it
    assert replayed < 0.6 * interpreted
