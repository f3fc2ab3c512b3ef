"""Re-estimate BatchNorm running statistics after training, from the images inference will see.

A network's BatchNorm layers normalise at inference with running averages gathered during
training, which trail the weights they are meant to go with. After a short training (a few
hundred steps, as each round of the loop is) the best checkpoint's averages can be far from
its weights' real activation statistics: the ranking of items survives (AUC) but the
probabilities shift, and with them every predicted class an annotator is shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def recalibrate_batch_norm(net: nn.Module, batches: Iterable[Tensor]) -> int:
    """Replace the running mean and variance of ``net``'s BatchNorm layers by their average
    over ``batches`` (images ``[B, C, *spatial]``, e.g. the un-augmented training set), every
    other layer in eval mode (dropout off). Weights are not touched; train/eval modes and
    momenta are restored. Returns the number of layers updated (0: no BatchNorm layer, or no
    batch, in which case the statistics are left as they were)."""
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    modes = [(m, m.training) for m in net.modules()]
    momenta = [m.momentum for m in norms]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    device = next(net.parameters()).device
    seen = 0
    try:
        net.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.training = True
        with torch.no_grad():
            for x in batches:
                net(x.to(device))
                seen += 1
    finally:
        if not seen:  # nothing to average (or an error): keep the statistics as they were
            for m, state in zip(norms, saved, strict=True):
                m.load_state_dict(state)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        for module, training in modes:
            module.training = training
    return len(norms) if seen else 0
