"""The unlabelled speed and silence corpus: four popular repositories at pinned commits.

    python benchmarks/realworld/speed_corpus.py DIR            # build it (from fetched snapshots)
    python benchmarks/realworld/speed_corpus.py DIR --lint     # and print every finding in it

Fetch the four repositories first (`fetch github:pytorch/examples`, ...). The corpus is their
`.py` files (and `.gitignore`s) at the commits below, without symbolic links: 2,764 files. None of
it is labelled; the linter should report nothing here, and every finding it does report is
reviewed by hand (list them in the session's notes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from snapshots import DEFAULT_MIRRORS, extract

SPEED_CORPUS = {
    "pytorch/examples": "77f55b912142e11fcfdf5b530231fb9c52f181e8",
    "huggingface/pytorch-image-models": "aa4b5850c1543fa488abf260f18390eda46cf85d",
    "facebookresearch/fairseq": "3d262bb25690e4eb2e7d3c1309b1e9c406ca4b99",
    "pyg-team/pytorch_geometric": "5c6461b2305ad068a6d61165b3c55852a11aaa41",
}


def build(into: Path, mirrors: Path = DEFAULT_MIRRORS) -> list[Path]:
    """Extract each repository under `into/<owner>+<name>`; returns the roots."""
    roots = []
    for repo, commit in SPEED_CORPUS.items():
        root = into / repo.replace("/", "+")
        extract(repo, commit, root, mirrors)
        for notebook in root.rglob("*.ipynb"):
            notebook.unlink()  # the corpus is defined as the .py files
        roots.append(root)
    return roots


def lint(roots: list[Path]) -> int:
    """Print every finding, one line each; returns how many there were."""
    total = 0
    for root in roots:
        run = subprocess.run(
            [sys.executable, "-m", "tbptt_lint", "--isolated", "--no-cache", "--exit-zero"]
            + ["--output-format", "json", "."],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        for item in json.loads(run.stdout or "[]"):
            total += 1
            path = Path(item["filename"]).relative_to(root.resolve())
            print(
                f"{root.name}/{path}:{item['location']['row']}: {item['code']} "
                f"{item['message'][:200]}"
            )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("into", type=Path)
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--lint", action="store_true", help="lint it and print every finding")
    args = parser.parse_args()
    roots = build(args.into, args.mirrors)
    files = sum(1 for root in roots for _ in root.rglob("*.py"))
    print(f"{args.into}: {files} Python files from {len(roots)} repositories")
    if args.lint:
        print(f"{lint(roots)} findings")


if __name__ == "__main__":
    main()
