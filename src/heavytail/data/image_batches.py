"""Training batches of an ImageFolder as a pure function of (seed, step), in memory (tiny) or via DataLoader workers.

Order: epoch e = step // steps_per_epoch is a permutation of the training set drawn from (seed, e); step s takes
the (s mod steps_per_epoch)-th slice of batch_size indices (the last partial batch of an epoch is dropped).
Augmentation draws from (seed, step) too, so a resumed run sees the very batches an uninterrupted run would.
  memory   the whole split as uint8 tensors; light augmentation (random crop with zero padding + flip) on tensors.
  workers  DataLoader worker processes (ImageNet: RandomResizedCrop + flip); each sample's transform runs under
           torch.manual_seed(its own seed), drawn from (seed, step). `decoder` picks how JPEGs are decoded:
           torchvision (default; heavytail.data.jpeg: libjpeg-turbo into uint8 tensors, a batch normalised at
           once) or pil (torchvision's PIL transforms). With `decode_device` set, workers only read the bytes and
           the batch is decoded on that device (nvjpeg on a GPU) in the main process.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from heavytail.data import jpeg
from heavytail.data.images import image_folder, split_root
from heavytail.data.jpeg import DECODERS
from heavytail.errors import ConfigError

ORDER, AUGMENT, SAMPLE_SEEDS = 0, 1, 2  # stream tags: one independent random stream per purpose


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, ORDER, epoch]).permutation(n)


def step_indices(seed: int, step: int, batch_size: int, n: int, cache: dict | None = None) -> np.ndarray:
    """Indices of the global batch of `step` (pure function of its arguments; `cache` only saves time)."""
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training images")
    epoch, position = divmod(step, per_epoch)
    if cache is None or cache.get("epoch") != epoch:
        perm = epoch_permutation(seed, epoch, n)
        if cache is not None:
            cache.update(epoch=epoch, perm=perm)
    else:
        perm = cache["perm"]
    return perm[position * batch_size:(position + 1) * batch_size]


def load_split_tensors(manifest_path: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images N x C x H x W, int64 labels) of one split, decoded once through the ImageFolder."""
    ds = image_folder(manifest_path, split)
    arrays = [np.asarray(ds.loader(path)) for path, _ in ds.samples]
    images = np.stack(arrays)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = torch.tensor([label for _, label in ds.samples], dtype=torch.long)
    return torch.from_numpy(np.ascontiguousarray(images)), labels


class MemoryImages:
    """A split held as uint8 tensors; yields normalised float batches (augmented for training)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, image_size: int | None = None,
                 pad: int = 4, flip: bool = True):
        self.images, self.labels = images, labels
        channels = images.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(1, channels, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).reshape(1, channels, 1, 1)
        self.image_size, self.pad, self.flip = image_size, pad, flip

    def __len__(self) -> int:
        return len(self.labels)

    def _finish(self, raw: torch.Tensor) -> torch.Tensor:
        x = (raw.float() / 255.0 - self.mean) / self.std
        if self.image_size and self.image_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    def augmented(self, index: np.ndarray, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crop (zero padding `pad`) and horizontal flip of the images at `index`, drawn from (seed, step)."""
        raw = self.images[torch.from_numpy(index)]
        rng = np.random.default_rng([seed, AUGMENT, step])
        b, _, h, w = raw.shape
        offsets = rng.integers(0, 2 * self.pad + 1, size=(b, 2))
        flips = rng.random(b) < 0.5 if self.flip else np.zeros(b, dtype=bool)
        if self.pad:
            padded = F.pad(raw, (self.pad,) * 4)
            raw = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
        if flips.any():
            raw[torch.from_numpy(flips)] = raw[torch.from_numpy(flips)].flip(-1)
        return self._finish(raw), self.labels[torch.from_numpy(index)]

    def plain_batches(self, batch_size: int, rows: range | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The split (or its `rows`, one rank's share) in order, without augmentation (validation)."""
        rows = range(len(self)) if rows is None else rows
        for start in range(rows.start, rows.stop, batch_size):
            stop = min(start + batch_size, rows.stop)
            yield self._finish(self.images[start:stop]), self.labels[start:stop]


def memory_train_batches(data: MemoryImages, seed: int, start_step: int, batch_size: int, rank: int,
                         world_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    share = batch_size // world_size
    cache: dict = {}
    for step in itertools.count(start_step):
        index = step_indices(seed, step, batch_size, len(data), cache)[rank * share:(rank + 1) * share]
        yield data.augmented(index, seed, step)


class SeededSamples(torch.utils.data.Dataset):
    """An ImageFolder indexed by (index, sample seed): `read` then `transform` run under that seed, in any worker."""

    def __init__(self, folder, transform, read=None):
        self.folder, self.transform, self.read = folder, transform, read or folder.loader

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key: tuple[int, int]):
        index, sample_seed = key
        path, label = self.folder.samples[index]
        image = self.read(path)
        # the transforms draw from the CPU generator only; torch.manual_seed would also queue a CUDA seeding,
        # with a formatted stack trace, on every sample of a worker (measured: ~3 ms a sample, most of a decode)
        torch.random.default_generator.manual_seed(sample_seed)
        return self.transform(image), label


class StepBatches(torch.utils.data.Sampler):
    """From `start_step` on, this rank's (index, sample seed) pairs of each step's global batch."""

    def __init__(self, n: int, seed: int, start_step: int, batch_size: int, rank: int, world_size: int):
        self.n, self.seed, self.start, self.batch_size = n, seed, start_step, batch_size
        self.rank, self.share = rank, batch_size // world_size

    def __iter__(self):
        cache: dict = {}
        for step in itertools.count(self.start):
            index = step_indices(self.seed, step, self.batch_size, self.n, cache)
            seeds = np.random.default_rng([self.seed, SAMPLE_SEEDS, step]).integers(0, 2**62, self.batch_size)
            part = slice(self.rank * self.share, (self.rank + 1) * self.share)
            yield list(zip(index[part].tolist(), seeds[part].tolist(), strict=True))


def imagenet_transforms(image_size: int, mean, std, train: bool):
    """torchvision's standard ImageNet recipe: RandomResizedCrop + flip (train), resize + centre crop (val)."""
    from torchvision import transforms as T

    tail = [T.ToTensor(), T.Normalize(mean, std)]
    if train:
        return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *tail])
    return T.Compose([T.Resize(int(round(image_size / 0.875))), T.CenterCrop(image_size), *tail])


def _check_decoder(decoder: str) -> None:
    if decoder not in DECODERS:
        raise ConfigError(f"vision.decoder must be one of {', '.join(DECODERS)} (got {decoder!r})")


def worker_train_batches(manifest_path, seed: int, start_step: int, batch_size: int, rank: int, world_size: int,
                         image_size: int, mean, std, num_workers: int, decoder: str = "torchvision",
                         decode_device: str | torch.device | None = None) -> Iterator:
    """This rank's training batches from `start_step` on, as normalised float images and int64 labels."""
    _check_decoder(decoder)
    folder = image_folder(manifest_path, "train")
    channels = int(split_root(manifest_path, "train")[0].get("channels", 3))
    collate, finish = None, None
    if decoder == "pil":
        samples = SeededSamples(folder, imagenet_transforms(image_size, mean, std, train=True))
    elif decode_device is None:
        samples = SeededSamples(folder, jpeg.TrainCrop(image_size), functools.partial(jpeg.read_image,
                                                                                      channels=channels))
        collate = jpeg.NormalisedBatch(mean, std)
    else:
        samples, collate = SeededSamples(folder, jpeg.EncodedCrop(), jpeg.read_encoded), jpeg.encoded_batch

        def finish(batch):
            data, boxes, flips, labels = batch
            return jpeg.decode_batch(data, boxes, flips, image_size, mean, std, decode_device, channels), labels
    sampler = StepBatches(len(folder), seed, start_step, batch_size, rank, world_size)
    loader = torch.utils.data.DataLoader(samples, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                                         pin_memory=torch.cuda.is_available() and finish is None,
                                         persistent_workers=num_workers > 0, prefetch_factor=4 if num_workers else None)
    return iter(loader) if finish is None else map(finish, loader)


def worker_val_loader(manifest_path, batch_size: int, image_size: int, mean, std, num_workers: int,
                      decoder: str = "torchvision", shard=None):
    """The validation split in order (resize + centre crop), normalised, decoded in the workers; `shard(n)`
    picks one rank's share."""
    _check_decoder(decoder)
    if decoder == "pil":
        folder = image_folder(manifest_path, "val", imagenet_transforms(image_size, mean, std, train=False))
        collate = None
    else:
        folder = image_folder(manifest_path, "val", jpeg.ValCrop(image_size))
        channels = int(split_root(manifest_path, "val")[0].get("channels", 3))
        folder.loader = functools.partial(jpeg.read_image, channels=channels)
        collate = jpeg.NormalisedBatch(mean, std)
    if shard is not None:
        folder = torch.utils.data.Subset(folder, list(shard(len(folder))))
    return torch.utils.data.DataLoader(folder, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                       collate_fn=collate, pin_memory=torch.cuda.is_available())


__all__ = ["MemoryImages", "StepBatches", "load_split_tensors", "memory_train_batches", "step_indices",
           "worker_train_batches", "worker_val_loader"]
