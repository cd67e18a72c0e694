"""The rule registry: every rule class, in code order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tbptt_lint import catalog
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.tbp001_state_not_detached import StateNotDetached
from tbptt_lint.rules.tbp002_partial_detach import PartialDetach
from tbptt_lint.rules.tbp003_detach_result_discarded import DetachResultDiscarded
from tbptt_lint.rules.tbp004_detach_every_step import DetachEveryStep
from tbptt_lint.rules.tbp005_retain_graph_bandaid import RetainGraphBandaid
from tbptt_lint.rules.tbp006_loss_accumulated_with_graph import LossAccumulatedWithGraph
from tbptt_lint.rules.tbp007_no_truncation import NoTruncation
from tbptt_lint.rules.tbp008_data_instead_of_detach import DataInsteadOfDetach
from tbptt_lint.rules.tbp009_window_misaligned import WindowMisaligned
from tbptt_lint.rules.tbp010_batch_dim_sliced import BatchDimSliced
from tbptt_lint.rules.tbp011_state_crosses_sequences import StateCrossesSequences
from tbptt_lint.rules.tbp012_optimizer_step_misplaced import OptimizerStepMisplaced
from tbptt_lint.rules.tbp013_warmup_with_grad import WarmupWithGrad
from tbptt_lint.rules.tbp014_detach_inplace_on_view import DetachInplaceOnView
from tbptt_lint.rules.tbp015_state_not_threaded import StateNotThreaded

if TYPE_CHECKING:
    from tbptt_lint.analysis.model import FileModel


class SyntaxErrorRule(Rule):
    """The file could not be decoded or parsed, so it was not analysed.

    Reported with the line and column the parser stopped at. Other files are still linted.
    """

    code = "TBP900"

    def check(self, model: FileModel) -> Iterator[Finding]:
        return iter(())  # reported by the engine, which owns reading and parsing


class IoErrorRule(Rule):
    """The path could not be read: it does not exist, is not readable, or is not a regular file.

    Reported with the operating system's reason. Other files are still linted.
    """

    code = "TBP901"

    def check(self, model: FileModel) -> Iterator[Finding]:
        return iter(())  # reported by the engine, which owns reading and parsing


ALL_RULES: tuple[type[Rule], ...] = (
    StateNotDetached,
    PartialDetach,
    DetachResultDiscarded,
    DetachEveryStep,
    RetainGraphBandaid,
    LossAccumulatedWithGraph,
    NoTruncation,
    DataInsteadOfDetach,
    WindowMisaligned,
    BatchDimSliced,
    StateCrossesSequences,
    OptimizerStepMisplaced,
    WarmupWithGrad,
    DetachInplaceOnView,
    StateNotThreaded,
    SyntaxErrorRule,
    IoErrorRule,
)

RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}
SYNTAX_ERROR_CODE = catalog.SYNTAX_ERROR_CODE
IO_ERROR_CODE = catalog.IO_ERROR_CODE
# Selection works on the catalog, which the command line loads without these classes.
enabled_codes = catalog.enabled_codes


def rules_matching(selector: str) -> list[type[Rule]]:
    """Rules whose code starts with `selector` (a full code or a prefix such as "TBP0")."""
    return [rule for rule in ALL_RULES if rule.code.startswith(selector.upper())]
