"""Forward and backward of every network on tiny inputs (case tables, as MONAI's network tests)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from breastflow.models.enums import Norm, Padding
from breastflow.models.pix2pixhd.networks import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    ResnetBlock,
)
from breastflow.models.pix2pixhd.vgg import Vgg19Features

GENERATOR_CASES = [
    # (id, constructor, input shape, output shape)
    ("global 1->1", lambda: GlobalGenerator(1, 1, 8, 4, 2, Norm.INSTANCE, Padding.REFLECT), (2, 1, 32, 32), (2, 1, 32, 32)),
    ("global 1->3 batch zero", lambda: GlobalGenerator(1, 3, 8, 2, 1, Norm.BATCH, Padding.ZERO), (2, 1, 16, 24), (2, 3, 16, 24)),
    ("global 3->3 none replicate", lambda: GlobalGenerator(3, 3, 4, 3, 0, Norm.NONE, Padding.REPLICATE), (1, 3, 16, 16), (1, 3, 16, 16)),
    ("local 1->1", lambda: LocalEnhancer(1, 1, 4, 2, 1, 1, 1, Norm.INSTANCE, Padding.REFLECT), (2, 1, 32, 32), (2, 1, 32, 32)),
    ("local x2 1->3", lambda: LocalEnhancer(1, 3, 4, 2, 1, 2, 1, Norm.INSTANCE, Padding.REFLECT), (1, 1, 64, 64), (1, 3, 64, 64)),
]  # fmt: skip


def _backward_reaches_every_parameter(net: nn.Module, out: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    out.square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"


@pytest.mark.parametrize(("case", "make", "in_shape", "out_shape"), GENERATOR_CASES, ids=[c[0] for c in GENERATOR_CASES])
def test_generator_forward_backward(case: str, make, in_shape: tuple, out_shape: tuple) -> None:
    torch.manual_seed(0)
    net = make()
    out = net(torch.rand(in_shape) * 2 - 1)
    assert out.shape == out_shape
    assert out.abs().max() <= 1.0  # tanh head
    _backward_reaches_every_parameter(net, out)


def test_global_generator_without_head_returns_features() -> None:
    net = GlobalGenerator(1, 1, 8, 2, 1, Norm.INSTANCE, Padding.REFLECT, with_head=False)
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 8, 16, 16)


@pytest.mark.parametrize("padding", list(Padding))
def test_resnet_block_is_residual(padding: Padding) -> None:
    """With zero weights and biases the block is the identity (``x + 0``)."""
    block = ResnetBlock(4, Norm.NONE, padding)
    for p in block.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(block(x), x)


DISCRIMINATOR_CASES = [
    # (id, input channels, ndf, n_layers, num_d, H, logits shapes per scale: 4x4 convs, pad 2, so
    #  a stride-2 conv maps H -> H/2 + 1 and a stride-1 conv H -> H + 1)
    ("1+1 2 scales 3 layers", 2, 8, 3, 2, 32, [(2, 1, 7, 7), (2, 1, 5, 5)]),
    ("1+3 3 scales 2 layers", 4, 4, 2, 3, 32, [(2, 1, 11, 11), (2, 1, 7, 7), (2, 1, 5, 5)]),
    ("3+3 1 scale 1 layer", 6, 4, 1, 1, 16, [(2, 1, 11, 11)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "in_nc", "ndf", "n_layers", "num_d", "size", "logit_shapes"),
    DISCRIMINATOR_CASES,
    ids=[c[0] for c in DISCRIMINATOR_CASES],
)
def test_multiscale_discriminator_forward_backward(
    case: str, in_nc: int, ndf: int, n_layers: int, num_d: int, size: int, logit_shapes: list
) -> None:
    torch.manual_seed(0)
    net = MultiscaleDiscriminator(in_nc, ndf, n_layers, num_d, Norm.INSTANCE)
    out = net(torch.randn(2, in_nc, size, size))
    assert len(out) == num_d
    assert all(len(scale) == n_layers + 2 for scale in out)  # getIntermFeat: every block's output
    assert [tuple(scale[-1].shape) for scale in out] == logit_shapes
    assert [scale[0].shape[1] for scale in out] == [ndf] * num_d
    net.zero_grad()
    sum(scale[-1].mean() for scale in out).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_second_scale_sees_the_average_pooled_input() -> None:
    """Scale 1 of the multiscale D equals a single PatchGAN on the 3x3/2 average-pooled pair."""
    torch.manual_seed(0)
    net = MultiscaleDiscriminator(2, 4, 2, 2, Norm.INSTANCE)
    x = torch.randn(1, 2, 16, 16)
    single: NLayerDiscriminator = net.scales[1]
    pooled = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(x)
    assert torch.allclose(net(x)[1][-1], single(pooled)[-1])


def test_vgg19_features_shapes_and_frozen() -> None:
    net = Vgg19Features()
    assert len(net.features) == 37  # torchvision's vgg19().features
    outs = net(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8), (1, 512, 4, 4), (1, 512, 2, 2)]
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.train().training  # stays in eval mode
