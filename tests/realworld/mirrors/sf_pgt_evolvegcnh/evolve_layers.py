"""An EvolveGCN-H-like layer: a GRU evolves the layer's weight matrix from call to call.

Like torch_geometric_temporal's `EvolveGCNH`, the evolved weight is kept on the module
(`self.weight`) and fed back into the GRU at the next call; only `reinitialize_weight()`
resets it.
"""

import torch
import torch.nn as nn


class EvolveLayer(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.initial_weight = nn.Parameter(torch.randn(1, channels, channels) * 0.1)
        self.recurrent_layer = nn.GRU(channels, channels)
        self.weight = None

    def reinitialize_weight(self):
        self.weight = None

    def forward(self, x, adjacency):
        summary = x[: self.channels].unsqueeze(0)
        if self.weight is None:
            _, self.weight = self.recurrent_layer(summary, self.initial_weight)
        else:
            _, self.weight = self.recurrent_layer(summary, self.weight)
        return adjacency @ x @ self.weight.squeeze(0)
