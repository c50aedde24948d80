"""ImageNet decoding and augmentation with torchvision.io: libjpeg-turbo on the CPU, nvjpeg where a GPU decodes.

The recipe is torchvision's ResNet50 one (train: RandomResizedCrop + horizontal flip; val: resize to size/0.875,
centre crop; then normalise), applied to uint8 tensors instead of PIL images. The crop box and the flip come from
the same torch RNG calls, in the same order, as `torchvision.transforms` draws them on a PIL image, so under one
seed both paths cut the same box; only resampling differs (antialiased bilinear in both). Workers keep images
uint8 and normalise a whole batch at once, which is what makes the path faster than PIL's (bench.decode).

Decoding on a device: the workers read the file bytes and the JPEG header (for the crop box) only, and the main
process decodes each batch with one `decode_jpeg(list, device=...)` call, then crops, flips and normalises there.
Files that nvjpeg refuses (ImageNet holds a few CMYK JPEGs and one PNG named .JPEG) are decoded on the CPU.
"""

from __future__ import annotations

import torch

DECODERS = ("pil", "torchvision")
SCALE, RATIO = (0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop's defaults
VAL_CROP_FRACTION = 0.875


def read_image(path: str, channels: int = 3) -> torch.Tensor:
    """The image at `path` as a uint8 [channels, H, W] tensor (any format, told by its bytes; greyscale and CMYK
    converted to RGB when channels is 3)."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    return decode_image(read_file(path), mode=ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY)


def read_rgb(path: str) -> torch.Tensor:
    return read_image(path, 3)


def read_encoded(path: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """The file's bytes and its (height, width), read from the header without decoding the pixels."""
    from PIL import Image
    from torchvision.io import read_file

    with Image.open(path) as image:
        width, height = image.size
    return read_file(path), (height, width)


def crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """RandomResizedCrop's (top, left, height, width), drawn from the global torch RNG as torchvision does."""
    from torchvision import transforms as T

    return T.RandomResizedCrop.get_params(torch.empty(1, 1, 1).expand(1, height, width), SCALE, RATIO)


def draw_flip() -> bool:
    return bool(torch.rand(1) < 0.5)  # RandomHorizontalFlip(p=0.5)'s draw


class TrainCrop:
    """uint8 [3, H, W] -> uint8 [3, size, size]: random resized crop, then a horizontal flip half of the time."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        box = crop_box(*image.shape[-2:])
        out = F.resized_crop(image, *box, [self.size, self.size], antialias=True)
        return out.flip(-1) if draw_flip() else out


class ValCrop:
    """uint8 [3, H, W] -> uint8 [3, size, size]: shorter side to size / 0.875, then the centre crop."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        resized = F.resize(image, [int(round(self.size / VAL_CROP_FRACTION))], antialias=True)
        return F.center_crop(resized, [self.size, self.size])


class EncodedCrop:
    """(bytes, (H, W)) -> (bytes, crop box, flip): the train crop's random draws, decoding left for later."""

    def __call__(self, encoded: tuple[torch.Tensor, tuple[int, int]]):
        data, (height, width) = encoded
        box = crop_box(height, width)
        return data, box, draw_flip()


def normalise(batch: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float32 (x / 255 - mean) / std, what ToTensor + Normalize compute (to float rounding)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=batch.device).reshape(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=batch.device).reshape(1, -1, 1, 1)
    return batch.float().mul_(1.0 / (255.0 * std)).sub_(mean / std)  # two passes over the batch, not three


class NormalisedBatch:
    """A DataLoader collate_fn: stack uint8 crops and normalise them in one vectorised pass (in the worker)."""

    def __init__(self, mean, std):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, samples):
        images = torch.stack([image for image, _ in samples])
        return normalise(images, self.mean, self.std), torch.tensor([label for _, label in samples])


def encoded_batch(samples):
    """A DataLoader collate_fn for device decoding: the bytes, boxes and flips as lists, labels as a tensor."""
    (data, boxes, flips), labels = zip(*[s for s, _ in samples], strict=True), [label for _, label in samples]
    return list(data), list(boxes), list(flips), torch.tensor(labels)


def _decode_all(data: list[torch.Tensor], device, channels: int) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    try:
        return list(decode_jpeg(data, mode=mode, device=device))
    except RuntimeError:  # one undecodable file fails the whole call: decode one by one, on the CPU if needed
        images = []
        for blob in data:
            try:
                images.append(decode_jpeg(blob, mode=mode, device=device))
            except RuntimeError:
                images.append(decode_image(blob, mode=mode).to(device))
        return images


def decode_batch(data, boxes, flips, size: int, mean, std, device, channels: int = 3) -> torch.Tensor:
    """Decode a batch of JPEG bytes on `device` (nvjpeg on a GPU), crop, flip and normalise it there."""
    from torchvision.transforms.v2 import functional as F

    images = _decode_all(data, device, channels)
    crops = torch.stack([F.resized_crop(image, *box, [size, size], antialias=True)
                         for image, box in zip(images, boxes, strict=True)])
    flip = torch.tensor(flips, dtype=torch.bool, device=crops.device)
    crops[flip] = crops[flip].flip(-1)
    return normalise(crops, mean, std)
