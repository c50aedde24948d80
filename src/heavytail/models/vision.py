"""Vision models: torchvision ResNet50/ResNet18/AlexNet (paper scale) and narrow variants for 28-64 px images.

`build_vision_model(spec)` takes a model spec from `presets.<scale>.vision.models.<name>` plus `num_classes`
and `in_channels` (from the image manifest):
  resnet50, resnet18   torchvision's models; a greyscale first conv when in_channels != 3.
  resnet_narrow        resnet18's layout (BasicBlock x [2, 2, 2, 2]) with widths (w, 2w, 4w, 8w) and a 3x3 stem
                       of stride `stem_stride` and no max-pool, for 28-32 px images (w = `width`).
  alexnet              torchvision's AlexNet: 5 conv + 3 fully connected layers; needs >= 63 px inputs.
  alexnet_narrow       the same layers, kernels, strides and pools with every conv width times `width_fraction`,
                       fully connected layers of `hidden` units and an adaptive pool to `pool_size` (torchvision:
                       6); the inputs are resized to `image_size` >= 63 px by the task.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import alexnet, resnet18, resnet50
from torchvision.models.resnet import BasicBlock, conv1x1

from heavytail.errors import ConfigError

ARCHS = ("resnet50", "resnet18", "resnet_narrow", "alexnet", "alexnet_narrow")
ALEXNET_WIDTHS = (64, 192, 384, 256, 256)
ALEXNET_MIN_SIZE = 63  # conv 11/4 + three 3/2 max-pools leave no pixel below this


class NarrowResNet(nn.Module):
    """ResNet18 layout at widths (w, 2w, 4w, 8w) with a small-image stem (3x3 conv, no max-pool)."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, stem_stride: int = 1,
                 blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = width
        stages = [self._make_layer(width * 2**i, n, stride=1 if i == 0 else 2) for i, n in enumerate(blocks)]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        init_like_torchvision_resnet(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def init_like_torchvision_resnet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class NarrowAlexNet(nn.Module):
    """torchvision's AlexNet with conv widths x `width_fraction`, `hidden` FC units and a `pool_size` pool."""

    def __init__(self, num_classes: int, in_channels: int = 1, width_fraction: float = 0.25, hidden: int = 512,
                 pool_size: int = 6, dropout: float = 0.5):
        super().__init__()
        c1, c2, c3, c4, c5 = (max(1, round(w * width_fraction)) for w in ALEXNET_WIDTHS)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(c5 * pool_size * pool_size, hidden), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def replace_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """The same conv taking `in_channels` inputs (greyscale images), freshly initialised like the original."""
    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None)


def build_vision_model(spec: dict) -> nn.Module:
    """The model of a spec {arch, num_classes, in_channels, ...arch keys} (see the module docstring)."""
    arch = spec.get("arch")
    num_classes, in_channels = int(spec.get("num_classes", 1000)), int(spec.get("in_channels", 3))
    if arch in ("resnet50", "resnet18"):
        model = (resnet50 if arch == "resnet50" else resnet18)(weights=None, num_classes=num_classes)
        if in_channels != 3:
            model.conv1 = replace_first_conv(model.conv1, in_channels)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        return model
    if arch == "resnet_narrow":
        return NarrowResNet(num_classes, in_channels, int(spec.get("width", 16)), int(spec.get("stem_stride", 1)))
    if arch == "alexnet":
        model = alexnet(weights=None, num_classes=num_classes)
        if in_channels != 3:
            model.features[0] = replace_first_conv(model.features[0], in_channels)
        return model
    if arch == "alexnet_narrow":
        return NarrowAlexNet(num_classes, in_channels, float(spec.get("width_fraction", 0.25)),
                             int(spec.get("hidden", 512)), int(spec.get("pool_size", 6)))
    raise ConfigError(f"vision.models.*.arch must be one of {', '.join(ARCHS)} (got {arch!r})")


def min_input_size(arch: str) -> int:
    """The smallest square input the architecture accepts (the task resizes smaller images up to it)."""
    return ALEXNET_MIN_SIZE if arch.startswith("alexnet") else 1
