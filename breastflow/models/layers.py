"""Small building blocks shared by the families: norm and padding layers from enums, weight init."""

from __future__ import annotations

from torch import nn

from breastflow.models.enums import Norm, Padding


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """The normalisation layer for ``channels`` feature maps.

    Instance norm has no affine parameters and no running statistics, as
    pix2pixHD's ``get_norm_layer('instance')``; batch norm is affine.

    Args:
        norm: which normalisation.
        channels: number of feature maps ``C`` of the ``(B, C, H, W)`` input.
    """
    if norm is Norm.INSTANCE:
        return nn.InstanceNorm2d(channels, affine=False)
    if norm is Norm.BATCH:
        return nn.BatchNorm2d(channels, affine=True)
    if norm is Norm.NONE:
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; valid: {[n.value for n in Norm]}")


def padded_conv(padding: Padding, in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    """A stride-1 'same' convolution preceded by the padding layer ``padding`` asks for.

    Args:
        padding: reflection, replication or zero padding.
        in_channels: input feature maps.
        out_channels: output feature maps.
        kernel_size: odd kernel size ``k``; the pad is ``k // 2``.

    Returns:
        ``[pad, conv]`` or ``[conv]`` (zero padding lives in the convolution).
    """
    pad = kernel_size // 2
    if padding is Padding.ZERO:
        return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)]
    if padding is Padding.REFLECT:
        return [nn.ReflectionPad2d(pad), nn.Conv2d(in_channels, out_channels, kernel_size)]
    if padding is Padding.REPLICATE:
        return [nn.ReplicationPad2d(pad), nn.Conv2d(in_channels, out_channels, kernel_size)]
    raise ValueError(f"unknown padding {padding!r}; valid: {[p.value for p in Padding]}")


def init_weights(module: nn.Module) -> None:
    """pix2pixHD's ``weights_init``: conv weights ~ N(0, 0.02); batch-norm weight ~ N(1, 0.02), bias 0.

    Use as ``network.apply(init_weights)``; convolution biases keep torch's default init.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def set_requires_grad(network: nn.Module, requires_grad: bool) -> None:
    """Freeze or unfreeze every parameter of ``network`` (e.g. D while the generator's loss flows through it)."""
    for param in network.parameters():
        param.requires_grad_(requires_grad)
