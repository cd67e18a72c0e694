"""Helpers a TBP001 state goes through that the run cannot see.

A run that names files (pre-commit, an editor) reads the project modules they import, but not
a helper imported from outside the project (an installed package of the team's, a sibling
repository): `hidden = cut_state(hidden)` then looks like no cut at all. The finding is right
as far as the run can tell, so it stays, and its message names the helper and the setting
that declares it (`detach-functions`).
"""

from __future__ import annotations

import sys

import libcst as cst

from tbptt_lint.analysis.events import RecurrentCall
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants

# Libraries whose functions the analysis models (or that never cut a tensor's graph): a
# state passed to `torch.cat` goes through no helper of the user's.
KNOWN_LIBRARIES = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "numpy",
        "scipy",
        "pandas",
        "einops",
        "lightning",
        "pytorch_lightning",
        "transformers",
        "tqdm",
        "wandb",
        *sys.stdlib_module_names,
    }
)


def unseen_helpers(model: FileModel, call: RecurrentCall, state: str) -> list[tuple[str, str]]:
    """(name as called, qualified name) of each imported function that the loop around `call`
    passes `state` to and whose module is not part of the run, in source order."""
    index = model.context.index
    if index is None or not call.loops:
        return []
    imports = model.context.imports
    found: dict[str, str] = {}
    for node in descendants([call.loops[-1]]):
        if not isinstance(node, cst.Call) or node is call.call:
            continue
        callee = dotted_name(node.func)
        if callee is None or callee.split(".")[0] not in imports.aliases:
            continue
        qualified = imports.qualify(callee) or callee
        module = qualified.rpartition(".")[0]
        if (
            not module
            or qualified.split(".")[0] in KNOWN_LIBRARIES
            or index.module(module) is not None
            or not any(_mentions(arg.value, state) for arg in node.args)
        ):
            continue
        found.setdefault(callee, qualified)
    return list(found.items())


def _mentions(expression: cst.BaseExpression, state: str) -> bool:
    if dotted_name(expression) == state:
        return True
    return any(
        isinstance(node, cst.BaseExpression) and dotted_name(node) == state
        for node in descendants([expression])
    )


def unseen_helpers_note(helpers: list[tuple[str, str]]) -> str:
    """The sentence added to the message; empty without unseen helpers."""
    if not helpers:
        return ""
    called, qualified = helpers[0]
    return (
        f" The state goes through `{called}` (`{qualified}`), which this run cannot see (its "
        "module is not among the linted files or the project modules they import): if it "
        f'cuts the state, add "{qualified}" to `detach-functions` in the configuration.'
    )
