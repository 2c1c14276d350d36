"""Pix2PixHD generators and multiscale PatchGAN discriminator.

Written after NVIDIA pix2pixHD ``models/networks.py`` (``GlobalGenerator``,
``LocalEnhancer``, ``ResnetBlock``, ``MultiscaleDiscriminator``,
``NLayerDiscriminator`` with ``getIntermFeat``): same layers and parameter
counts for the same options (``docs/models.md``). Differences: the padding
enum also applies to the 7x7 convolutions (pix2pixHD always reflects there),
and the discriminator lists its scales finest first.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from breastflow.models.enums import Norm, Padding
from breastflow.models.layers import norm_layer, padded_conv


class ResnetBlock(nn.Module):
    """``x + [pad, conv3x3, norm, ReLU, pad, conv3x3, norm](x)`` (He et al. 2016, as pix2pixHD).

    Args:
        channels: feature maps ``C`` of the ``(B, C, H, W)`` input.
        norm: normalisation.
        padding: padding before each 3x3 convolution.
    """

    def __init__(self, channels: int, norm: Norm, padding: Padding) -> None:
        super().__init__()
        self.block = nn.Sequential(
            *padded_conv(padding, channels, channels, 3), norm_layer(norm, channels), nn.ReLU(True),
            *padded_conv(padding, channels, channels, 3), norm_layer(norm, channels),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def _upsample(in_channels: int, out_channels: int, norm: Norm) -> list[nn.Module]:
    """Transposed 3x3 stride-2 convolution doubling ``H, W``, then norm and ReLU."""
    return [
        nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
        norm_layer(norm, out_channels),
        nn.ReLU(True),
    ]


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator G1: 7x7 conv, ``n_downsample`` stride-2 convs, residual blocks, mirror upsampling.

    Args:
        input_nc: input channels ``C``.
        output_nc: output channels ``C'``.
        ngf: feature maps after the first convolution; doubled per downsampling.
        n_downsample: stride-2 downsamplings.
        n_blocks: residual blocks at ``ngf * 2**n_downsample`` feature maps.
        norm: normalisation.
        padding: padding of the stride-1 convolutions.
        with_head: False drops the final 7x7 convolution and tanh (the local enhancer adds its own).

    Shapes: ``(B, C, H, W) -> (B, C', H, W)`` in ``[-1, 1]`` (``(B, ngf, H, W)`` features
    without head); ``H, W`` multiples of ``2**n_downsample``.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int,
        n_downsample: int,
        n_blocks: int,
        norm: Norm,
        padding: Padding,
        with_head: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [*padded_conv(padding, input_nc, ngf, 7), norm_layer(norm, ngf), nn.ReLU(True)]
        for i in range(n_downsample):
            ch = ngf * 2**i
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), norm_layer(norm, ch * 2), nn.ReLU(True)]
        bottleneck = ngf * 2**n_downsample
        layers += [ResnetBlock(bottleneck, norm, padding) for _ in range(n_blocks)]
        for i in range(n_downsample):
            ch = ngf * 2 ** (n_downsample - i)
            layers += _upsample(ch, ch // 2, norm)
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(*padded_conv(padding, ngf, output_nc, 7), nn.Tanh()) if with_head else None

    def forward(self, x: Tensor) -> Tensor:
        features = self.body(x)
        return features if self.head is None else self.head(features)


def _half(x: Tensor) -> Tensor:
    """pix2pixHD's input pyramid step: 3x3 average pool, stride 2, padding excluded from the mean."""
    return nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class LocalEnhancer(nn.Module):
    """pix2pixHD's coarse-to-fine generator (sec. 3.2): a global generator at ``1/2**n`` resolution plus ``n`` enhancers.

    Enhancer ``k`` (coarsest first) runs at ``ngf * 2**(n - k)`` feature maps: a
    7x7 conv and a stride-2 conv on the input at its scale, the sum with the
    coarser output, residual blocks, a transposed conv; the finest ends with a
    7x7 conv to ``output_nc`` and tanh.

    Args:
        input_nc: input channels ``C``.
        output_nc: output channels ``C'``.
        ngf: feature maps of the finest enhancer; the global generator uses ``ngf * 2**n_local_enhancers``.
        n_downsample_global: downsamplings of the global generator.
        n_blocks_global: residual blocks of the global generator.
        n_local_enhancers: number of enhancers ``n``.
        n_blocks_local: residual blocks per enhancer.
        norm: normalisation.
        padding: padding of the stride-1 convolutions.

    Shapes: ``(B, C, H, W) -> (B, C', H, W)``; ``H, W`` multiples of
    ``2**(n_downsample_global + n_local_enhancers)``.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int,
        n_downsample_global: int,
        n_blocks_global: int,
        n_local_enhancers: int,
        n_blocks_local: int,
        norm: Norm,
        padding: Padding,
    ) -> None:
        super().__init__()
        self.global_generator = GlobalGenerator(
            input_nc, output_nc, ngf * 2**n_local_enhancers, n_downsample_global, n_blocks_global, norm, padding,
            with_head=False,
        )  # fmt: skip
        self.downsample = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for k in range(1, n_local_enhancers + 1):
            ch = ngf * 2 ** (n_local_enhancers - k)
            down: list[nn.Module] = [*padded_conv(padding, input_nc, ch, 7), norm_layer(norm, ch), nn.ReLU(True)]
            down += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), norm_layer(norm, ch * 2), nn.ReLU(True)]
            self.downsample.append(nn.Sequential(*down))
            up: list[nn.Module] = [ResnetBlock(ch * 2, norm, padding) for _ in range(n_blocks_local)]
            up += _upsample(ch * 2, ch, norm)
            if k == n_local_enhancers:
                up += [*padded_conv(padding, ngf, output_nc, 7), nn.Tanh()]
            self.upsample.append(nn.Sequential(*up))

    def forward(self, x: Tensor) -> Tensor:
        pyramid = [x]
        for _ in range(len(self.downsample)):
            pyramid.append(_half(pyramid[-1]))
        out = self.global_generator(pyramid[-1])
        for k, (down, up) in enumerate(zip(self.downsample, self.upsample, strict=True), start=1):
            out = up(down(pyramid[len(self.downsample) - k]) + out)
        return out


class NLayerDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017) returning every block's output for feature matching (pix2pixHD ``getIntermFeat``).

    Blocks: 4x4 stride-2 conv + LeakyReLU; ``n_layers - 1`` stride-2 conv + norm + LeakyReLU
    (channels doubling up to 512); one stride-1 conv + norm + LeakyReLU; a stride-1 conv to 1 channel.

    Args:
        input_nc: channels of the ``(source, image)`` pair.
        ndf: feature maps of the first block.
        n_layers: stride-2 blocks.
        norm: normalisation.

    Shapes: ``(B, C, H, W)`` -> ``n_layers + 2`` tensors, the last the patch logits ``(B, 1, h, w)``.
    """

    def __init__(self, input_nc: int, ndf: int, n_layers: int, norm: Norm) -> None:
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        blocks = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for stride in [2] * (n_layers - 1) + [1]:
            prev, nf = nf, min(nf * 2, 512)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(prev, nf, 4, stride=stride, padding=pad), norm_layer(norm, nf), nn.LeakyReLU(0.2, True)
                )
            )
        blocks.append(nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=pad)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` identical PatchGANs, scale ``k`` on the input average-pooled ``k`` times (pix2pixHD sec. 3.2).

    Args:
        input_nc: channels of the ``(source, image)`` pair, ``C + C'``.
        ndf: feature maps of each PatchGAN's first block.
        n_layers: stride-2 blocks per PatchGAN.
        num_d: scales.
        norm: normalisation.

    Shapes: ``(B, C + C', H, W)`` -> per scale (finest first) a list of ``n_layers + 2`` feature maps.
    """

    def __init__(self, input_nc: int, ndf: int, n_layers: int, num_d: int, norm: Norm) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_d))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for k, discriminator in enumerate(self.scales):
            if k:
                x = _half(x)
            out.append(discriminator(x))
        return out
