"""Run every fixture under the tracer on a device and compare with its `# expect:` comments.

Meant for one short run on a lent GPU (`python benchmarks/cuda_check.py`), and runnable here
with `--device cpu`. Models and data move by `torch.set_default_device(device)`, which also
exercises the re-entrant `Tensor.backward` path. For each fixture it prints the measured
strides and horizons, the verdict against the expectation, and the fused RNN node names seen
(`CudnnRnnBackward0` on CUDA, `MkldnnRnnLayerBackward0` for nn.LSTM on CPU). The last line is
a one-line summary. Exit code 0 when every fixture agrees.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tbptt_lint.tracer.fixture_check import run_fixture  # noqa: E402

FUSED_MARKERS = ("Cudnn", "Mkldnn", "Miopen", "Rnn")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--fixtures", default=str(ROOT / "fixtures"), help="fixture directory")
    parser.add_argument("--budget", type=float, default=150.0, help="stop after this many s")
    parser.add_argument("-k", default="", help="only fixtures whose name contains this")
    args = parser.parse_args()

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available; use --device cpu")
        return 2
    started = time.perf_counter()
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}, device {args.device} ({device_name})")
    if args.device.startswith("cuda"):
        print(f"cudnn {torch.backends.cudnn.version()}, enabled {torch.backends.cudnn.enabled}")

    paths = sorted(p for p in Path(args.fixtures).glob("*.py") if args.k in p.name)
    agree = disagree = errors = skipped = 0
    cudnn_fixtures = 0
    previous = torch.get_default_device()
    for path in paths:
        if time.perf_counter() - started > args.budget:
            skipped += 1
            print(f"SKIP  {path.name}: time budget spent")
            continue
        torch.set_default_device(args.device)
        try:
            result = run_fixture(path)
        except Exception as exc:  # noqa: BLE001 - one broken fixture must not stop the run
            errors += 1
            print(f"ERROR {path.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            continue
        finally:
            torch.set_default_device(previous)
        fused = sorted(n for n in result.node_names if any(m in n for m in FUSED_MARKERS))
        if any("Cudnn" in n for n in fused):
            cudnn_fixtures += 1
        verdict = "pass" if result.passed else "fail"
        expected = "pass" if result.expect_pass else "fail"
        ok = result.agrees
        agree += ok
        disagree += not ok
        raised = f" raised={result.raised.splitlines()[0][:80]!r}" if result.raised else ""
        print(
            f"{'OK   ' if ok else 'DIFF '} {path.name}: k1={result.k1} k2={result.k2} "
            f"strides={_short(result.strides)} horizons={_short(result.horizons)} "
            f"tracer={verdict} expected={expected} raise_ok={result.raise_ok}{raised} "
            f"fused={','.join(fused) or '-'} ({result.seconds:.1f}s)"
        )
        if not ok:
            for problem in result.problems[:2]:
                print(f"      {problem[:300]}")
            for err in result.internal_errors[:1]:
                print(f"      internal: {err.strip().splitlines()[-1][:300]}")
    took = time.perf_counter() - started
    print(
        f"SUMMARY device={args.device} fixtures={len(paths)} agree={agree} disagree={disagree} "
        f"errors={errors} skipped={skipped} cudnn_fused_fixtures={cudnn_fixtures} "
        f"seconds={took:.1f}"
    )
    return 0 if disagree == errors == skipped == 0 else 1


def _short(values: list[int], limit: int = 6) -> str:
    text = ",".join(map(str, values[:limit]))
    return f"[{text}{',...' if len(values) > limit else ''}]"


if __name__ == "__main__":
    sys.exit(main())
