"""FLOPs per training step with ``torch.utils.flop_counter``, corrected for grouped convolutions.

torch's formula for ``aten.convolution_backward`` ignores ``groups`` and overcounts a depthwise
convolution's backward pass by its channel count (x1280 at EfficientNet's widest layer). Both of
its products, grad-input and grad-weight, cost exactly the forward convolution's FLOPs, which is
what this module counts instead.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

aten = torch.ops.aten


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode whose convolution backward formula respects groups."""
    return FlopCounterMode(display=False, custom_mapping={aten.convolution_backward: _conv_backward_flop})
