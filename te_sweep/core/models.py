"""The paper's five CNNs, built for the input size and channel count of the data.

Each is a conv stack, a flatten, and a fully connected head. The TE feedback needs two things
from a model, which TENet exposes explicitly instead of through hooks:
  - `forward_with_hidden(x) -> (z, logits)`: z is the pre-activation of the penultimate FC
    layer (None when the head is a single Linear), computed in the same pass as the logits;
  - `last_fc`: the Linear layer producing the logits, whose weights or gradients are modulated.
The flattened size is computed from the conv spec, so images of any size work as long as the
conv stack does not shrink them to nothing.

Deviations from the authors' published code (github.com/avmoldovan/CNN-TE), on purpose:
  - fashion-mnist and usps: a ReLU after each hidden Linear. The published code stacks the
    Linear layers with no nonlinearity, which collapses them into one linear map.
  - stl10: the published Linear(256 -> 10) does not match the conv stack's output for 96x96
    images (256 x 2 x 2 = 1024); the head's input size is inferred instead.
  - svhn, cifar10, stl10: BN without affine and ReLU after every conv, as published; svhn adds
    Dropout(0.3) after each conv block.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

# A conv stack spec: an int c is Conv3x3(-> c, padding 1), ("valid", c) is Conv3x3(-> c, no
# padding), "M" is MaxPool2d(2).
ConvSpec = list[int | tuple[str, int] | str]


@dataclass(frozen=True)
class Architecture:
    conv: ConvSpec
    hidden: tuple[tuple[int, float], ...]  # FC hidden layers: (width, dropout after it)
    bn_affine: bool = True
    conv_dropout: float = 0.0  # dropout after each conv block

    @property
    def fc_layers(self) -> int:
        return len(self.hidden) + 1


ARCHITECTURES: dict[str, Architecture] = {
    "fashion-mnist": Architecture([32, "M", ("valid", 64), "M"], ((600, 0.25), (120, 0.0))),
    "usps": Architecture([32, "M", ("valid", 64), "M"], ((144, 0.25),)),
    "cifar10": Architecture(
        [128, 128, "M", 256, 256, "M", 512, 512, "M", ("valid", 1024), "M"], (), bn_affine=False
    ),
    "svhn": Architecture(
        [32, 32, "M", 64, 64, "M", 128, 128, "M", ("valid", 256), "M"],
        (),
        bn_affine=False,
        conv_dropout=0.3,
    ),
    "stl10": Architecture(
        [32, "M", 64, "M", 128, "M", 128, "M", 256, ("valid", 256), "M"], (), bn_affine=False
    ),
}


def _conv_stack(in_channels: int, arch: Architecture) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in arch.conv:
        if isinstance(item, str):  # "M"
            layers.append(nn.MaxPool2d(2))
            continue
        padding = 0 if isinstance(item, tuple) else 1
        out = item[1] if isinstance(item, tuple) else item
        layers += [
            nn.Conv2d(channels, out, 3, padding=padding),
            nn.BatchNorm2d(out, affine=arch.bn_affine),
            nn.ReLU(inplace=True),
        ]
        if arch.conv_dropout:
            layers.append(nn.Dropout(arch.conv_dropout))
        channels = out
    return nn.Sequential(*layers)


class TENet(nn.Module):
    """conv features -> flatten -> [hidden FCs ->] penultimate FC -> ReLU -> last FC (logits)."""

    def __init__(
        self, arch: Architecture, in_channels: int, image_hw: tuple[int, int], num_classes: int
    ) -> None:
        super().__init__()
        self.features = _conv_stack(in_channels, arch)
        width = flat_size(arch, in_channels, image_hw)
        self.largest_feature_map = largest_feature_map(arch, in_channels, image_hw)
        body: list[nn.Module] = []
        for out, dropout in arch.hidden[:-1]:
            body += [nn.Linear(width, out), nn.ReLU(inplace=True)]
            body += [nn.Dropout(dropout)] if dropout else []
            width = out
        self.body = nn.Sequential(*body)
        self.penultimate_fc: nn.Linear | None = None
        self.after_penultimate = nn.Sequential()
        if arch.hidden:
            out, dropout = arch.hidden[-1]
            self.penultimate_fc = nn.Linear(width, out)
            self.after_penultimate = nn.Sequential(
                nn.ReLU(), *([nn.Dropout(dropout)] if dropout else [])
            )
            width = out
        self.last_fc = nn.Linear(width, num_classes)

    def forward_with_hidden(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        """(penultimate pre-activation (B, n_hidden) or None, logits (B, num_classes))."""
        h = self.body(self.features(x).flatten(1))  # (B, C, H, W) -> (B, flat)
        if self.penultimate_fc is None:
            return None, self.last_fc(h)
        z = self.penultimate_fc(h)
        return z, self.last_fc(self.after_penultimate(z))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_hidden(x)[1]


def feature_shapes(
    arch: Architecture, in_channels: int, image_hw: tuple[int, int]
) -> list[tuple[int, int, int]]:
    """(channels, height, width) of one image after each conv or pool of the stack, by
    arithmetic on the conv spec: no tensor is built, so it is free to call before any data is
    loaded (a meta-device pass took about 1 s on first use, importing torch's decompositions).

    Raises ValueError when the images are too small for the stack.
    """
    height, width = image_hw
    channels = in_channels
    shapes = []
    for item in arch.conv:
        if isinstance(item, str):  # "M", MaxPool2d(2): floor division
            height, width = height // 2, width // 2
        elif isinstance(item, tuple):  # 3x3 conv without padding
            height, width, channels = height - 2, width - 2, item[1]
        else:  # 3x3 conv with padding 1
            channels = item
        if height < 1 or width < 1:
            raise ValueError(
                f"images of {image_hw[0]}x{image_hw[1]} are too small for this "
                "network's conv stack; use larger images or a preset with fewer "
                "pooling stages"
            )
        shapes.append((channels, height, width))
    return shapes


def flat_size(arch: Architecture, in_channels: int, image_hw: tuple[int, int]) -> int:
    """Flattened size of the conv stack's output (ValueError when the images are too small)."""
    channels, height, width = feature_shapes(arch, in_channels, image_hw)[-1]
    return channels * height * width


def largest_feature_map(arch: Architecture, in_channels: int, image_hw: tuple[int, int]) -> int:
    """Elements per image of the conv stack's largest activation (what sizes a batch's memory)."""
    return max(c * h * w for c, h, w in feature_shapes(arch, in_channels, image_hw))


def build_model(
    architecture: str, in_channels: int, image_hw: tuple[int, int], num_classes: int
) -> TENet:
    return TENet(ARCHITECTURES[architecture], in_channels, image_hw, num_classes)
