"""How packed MLM sequences are stored: compact integer columns in an arrow file, read memory-mapped or preloaded.

Token ids are uint16 when the vocabulary fits (BERT's 30522 does), else uint32; token types, attention masks and
NSP labels are uint8. Each row is a fixed-size list, so a column reads as one [rows, max_seq_length] array without
a per-row conversion. At paper scale this is 4x smaller than int64 ids, and 8x for the masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from heavytail.errors import ConfigError

SMALL_COLUMNS = ("token_type_ids", "attention_mask", "next_sentence_label")
COUNT_CHUNK_ROWS = 8192  # rows per read while counting: bounded memory whatever the corpus size


def id_dtype(vocab_size: int) -> str:
    """The narrowest unsigned type that holds every id below `vocab_size`."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def column_dtypes(vocab_size: int, nsp: bool) -> dict[str, str]:
    """The stored dtype of each column of a packed split."""
    dtypes = {"input_ids": id_dtype(vocab_size)}
    if nsp:
        dtypes.update(dict.fromkeys(SMALL_COLUMNS, "uint8"))
    return dtypes


def packed_features(dtypes: dict[str, str], max_seq_length: int):
    """The `datasets.Features` of a packed split (what `datasets.map` casts the packer's lists to)."""
    import datasets

    return datasets.Features({
        name: datasets.Value(dtype) if name == "next_sentence_label"
        else datasets.Sequence(datasets.Value(dtype), length=max_seq_length) for name, dtype in dtypes.items()})


def _column_numpy(chunks) -> np.ndarray:
    """One arrow column (a list of chunks) as a numpy array: [rows, length] for fixed-size lists, [rows] else."""
    import pyarrow as pa

    parts = []
    for chunk in chunks:
        # every packed row has max_seq_length tokens; plain lists are what earlier versions of the packer wrote
        if pa.types.is_fixed_size_list(chunk.type) or pa.types.is_list(chunk.type):
            parts.append(chunk.flatten().to_numpy(zero_copy_only=False).reshape(len(chunk), -1))
        else:
            parts.append(chunk.to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if len(parts) != 1 else np.array(parts[0])


class MappedSplit:
    """A packed split read through a memory map: `split[indices]` gives those rows as compact numpy arrays."""

    def __init__(self, table):
        self.table = table
        self.column_names = table.column_names

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index):
        if isinstance(index, str):
            return _column_numpy(self.table.column(index).chunks)
        rows = self.table.take(np.asarray(index, dtype=np.int64))
        return {name: _column_numpy(rows.column(name).chunks) for name in self.column_names}


def split_path(data_dir: str | Path, split: str) -> Path:
    path = Path(data_dir) / f"{split}.arrow"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (run `python -m heavytail.data.mlm` or the prepare_mlm_data rule)")
    return path


def load_split(data_dir: str | Path, split: str, preload: bool = True):
    """Columns of a packed split: numpy arrays when preloaded, else a `MappedSplit` over the memory-mapped file."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.memory_map(str(split_path(data_dir, split)))).read_all()
    if not preload:
        return MappedSplit(table)
    return {name: _column_numpy(table.column(name).chunks) for name in table.column_names}


def num_rows(split) -> int:
    return len(split) if isinstance(split, MappedSplit) else len(split["input_ids"])


def take_rows(split, index: np.ndarray) -> dict:
    """Rows `index` of a preloaded or memory-mapped split, as numpy arrays."""
    if isinstance(split, MappedSplit):
        return split[index]
    return {name: column[index] for name, column in split.items()}


def count_tokens(data_dir: str | Path, split: str, vocab_size: int) -> np.ndarray:
    """How often each id occurs in `input_ids`, read in chunks with plain file reads.

    A memory map would leave every page it touched resident (and counted in RSS) until the kernel needs it back;
    plain reads of one record batch at a time keep the memory flat as the corpus grows.
    """
    import pyarrow as pa

    counts = np.zeros(vocab_size, dtype=np.int64)
    with pa.OSFile(str(split_path(data_dir, split))) as fh:
        for batch in pa.ipc.open_stream(fh):
            ids = batch.column("input_ids")
            for start in range(0, len(ids), COUNT_CHUNK_ROWS):
                flat = ids.slice(start, COUNT_CHUNK_ROWS).flatten().to_numpy(zero_copy_only=False)
                counts += np.bincount(flat, minlength=vocab_size)
    return counts
