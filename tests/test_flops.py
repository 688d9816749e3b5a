"""FLOPs per step: the counter must respect grouped (depthwise) convolutions."""
import torch

from rtd.flops import flop_counter


def test_depthwise_conv_backward_costs_two_forwards():
    conv = torch.nn.Conv2d(8, 8, 3, groups=8, bias=False)
    x = torch.rand(2, 8, 6, 6, requires_grad=True)
    # forward: 2 (mul+add) * batch 2 * C_out 8 * C_in/groups 1 * 3*3 * output 4*4
    forward = 2 * 2 * 8 * 1 * 9 * 16
    with flop_counter() as counter:
        conv(x)
    assert counter.get_total_flops() == forward
    with flop_counter() as counter:
        conv(x).sum().backward()
    assert counter.get_total_flops() == 3 * forward  # forward + grad-input + grad-weight
