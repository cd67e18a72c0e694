"""What the report and a failed `assert_tbptt` say first: the verdict, the typical horizon, and
the odd windows named as ramps and tails after it."""

from __future__ import annotations

from _render_synth import synth

from tbptt_lint.tracer.assertions import check_tbptt
from tbptt_lint.tracer.records import BackwardCall
from tbptt_lint.tracer.report import describe_pattern, render_html, render_text


def windows(horizons: list[int], strides: list[int] | None = None) -> list[BackwardCall]:
    strides = strides or [5] * len(horizons)
    calls, step = [], 0
    for i, (h, s) in enumerate(zip(horizons, strides, strict=True)):
        step += s
        calls.append(
            BackwardCall(index=i, step=step, stride=s, horizon=h, graph_nodes=1, saved_bytes=0)
        )
    return calls


def test_a_wrong_k2_is_headlined_with_the_typical_horizon():
    # 54 windows of 5, the last one 4 steps long: asserting k2=10 must not headline the tail.
    calls = windows([5] * 53 + [4], [5] * 53 + [4])
    problems = check_tbptt(calls, None, 10)
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith("horizon: 53 of 54 windows reach back 5 steps; expected k2=10.")
    assert "#53 (tail) reached back 4 steps" in text
    assert text.index("53 of 54") < text.index("#53 (tail)")
    assert "assert k2=5" in text  # windows of the stride: maybe k2 is what was wrong


def test_every_window_alike_says_all():
    problems = check_tbptt(windows([1] * 4, [10] * 4), 10, 10)
    assert problems[0].startswith("horizon: all 4 windows reach back 1 step; expected k2=10.")
    assert "cut at every step" in problems[0]


def test_one_odd_window_is_still_named_with_singular_steps():
    problems = check_tbptt(windows([5, 5, 1, 5]), 5, 5)
    assert "backward #2 (after step 15) reached back 1 step, expected k2=5" in problems[0]
    problems = check_tbptt(windows([5, 5, 1, 5], [5, 5, 1, 5]), 5, None)
    assert "backward #2 came 1 step after the previous one" in problems[0]


def test_steady_state_comes_from_the_typical_windows_with_ramps_and_tails_named():
    s = synth(30, 5)
    s.calls = windows([2, 4, 5, 5, 5, 5, 3], [2, 2, 5, 5, 5, 5, 3])
    text = describe_pattern(s)
    assert text.startswith("Steady state: 4 of 7 calls have stride 5, horizon 5.")
    assert "Ramp-up: #0 (stride 2, horizon 2), #1 (stride 2, horizon 4)." in text
    assert "Tail: #6 (stride 3, horizon 3)." in text
    s.calls = windows([5, 5, 5])
    assert describe_pattern(s) == "Steady state: all 3 backward calls have stride 5, horizon 5."
    s.calls = windows([20], [20])
    assert describe_pattern(s) == "One backward call: stride 20, horizon 20."


def test_text_report_puts_the_verdict_before_the_table():
    s = synth(30, 5, "every")
    lines = render_text(s).splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("Verdict:"))
    table = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "step"])
    assert verdict == 1 and verdict < table


def test_html_report_shows_the_verdict_then_the_timeline_then_the_table():
    from tbptt_lint.tracer.report import render_html

    page = render_html(synth(30, 5, "every"))
    verdict = page.index('class="verdict')
    timeline = page.index("<h2>Timeline</h2>")
    table = page.index("<h2>Backward calls</h2>")
    assert verdict < timeline < table


def test_a_single_window_is_named_as_before_and_two_alike_are_both():
    problems = check_tbptt(windows([20], [20]), None, 5)
    assert problems[0].startswith("horizon: backward #0 (after step 20) reached back 20 steps")
    problems = check_tbptt(windows([3, 3]), None, 5)
    assert problems[0].startswith("horizon: both windows reach back 3 steps; expected k2=5.")


def test_the_report_header_counts_in_words():
    many = synth(30, 5, "every")
    assert render_text(many).splitlines()[0].startswith("tbptt-lint trace: 6 backward calls, 30 ")
    assert "6 backward calls, 30 time steps." in render_html(many)
    one = synth(5, 5, "every")
    assert render_text(one).splitlines()[0].startswith("tbptt-lint trace: 1 backward call, 5 ")
