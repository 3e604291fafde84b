#!/usr/bin/env python3
"""Read primer's token shards back the way the trainers do, and compare them with a direct
`tokenizers` encoding of the source documents.

    read_shards.py SHARDS_DIR DOCS.jsonl

- Megatron-LM: `_IndexReader` / `IndexedDataset` of megatron/core/datasets/indexed_dataset.py
  (NVIDIA/Megatron-LM, main), followed line for line with numpy only: megatron-core needs
  torch, which this machine does not have. The DType table, header checks, the
  numpy.frombuffer offsets and IndexedDataset's asserts are Megatron's.
- llm.c: the header check of `dataloader_load_shard_` in llmc/dataloader.h (magic, version,
  ntok > 0, file size == 256*4 + ntok*itemsize), with the uint32 variant (20240801 / 7) of
  dev/data/data_common.py's HEADERS_INFO.
- Every document of DOCS.jsonl is encoded with the `tokenizers` package
  (`encode(text, add_special_tokens=False).ids`, plus BOS/EOS from manifest.json); the
  multiset of Megatron sequences must equal the multiset of those encodings (nothing lost,
  nothing duplicated, nothing changed), and each llm.c shard must hold exactly the
  concatenated sequences of the Megatron shard with the same name.

Prints one summary line and exits 0, or raises.
"""
import collections
import json
import os
import struct
import sys
from enum import Enum

import numpy
from tokenizers import Tokenizer

_INDEX_HEADER = b"MMIDIDX\x00\x00"


class DType(Enum):
    """Megatron's DType (indexed_dataset.py)."""

    uint8 = 1
    int8 = 2
    int16 = 3
    int32 = 4
    int64 = 5
    float64 = 6
    float32 = 7
    uint16 = 8

    @classmethod
    def dtype_from_code(cls, value):
        return getattr(numpy, cls(value).name)

    @staticmethod
    def size(key):
        if isinstance(key, int):
            return DType.dtype_from_code(key)().itemsize
        elif numpy.number in key.__mro__:
            return key().itemsize
        else:
            raise ValueError


class _IndexReader(object):
    """Megatron's _IndexReader (multimodal=False, no sequences_per_dataset)."""

    def __init__(self, idx_path):
        with open(idx_path, "rb") as stream:
            header = stream.read(9)
            assert header == _INDEX_HEADER, f"bad header, cannot read: {idx_path}"

            version = struct.unpack("<Q", stream.read(8))[0]
            assert version == 1, f"bad version, cannot read: {idx_path}"

            code = struct.unpack("<B", stream.read(1))[0]
            self.dtype = DType.dtype_from_code(code)
            self.dtype_size = DType.size(self.dtype)

            self.sequence_count = struct.unpack("<Q", stream.read(8))[0]
            self.document_count = struct.unpack("<Q", stream.read(8))[0]

            offset = stream.tell()

        self.bin_buffer_mmap = numpy.memmap(idx_path, mode="r", order="C")
        self.bin_buffer = memoryview(self.bin_buffer_mmap)

        self.sequence_lengths = numpy.frombuffer(
            self.bin_buffer, dtype=numpy.int32, count=self.sequence_count, offset=offset
        )
        self.sequence_pointers = numpy.frombuffer(
            self.bin_buffer,
            dtype=numpy.int64,
            count=self.sequence_count,
            offset=offset + self.sequence_lengths.nbytes,
        )
        self.document_indices = numpy.frombuffer(
            self.bin_buffer,
            dtype=numpy.int64,
            count=self.document_count,
            offset=offset + self.sequence_lengths.nbytes + self.sequence_pointers.nbytes,
        )
        self.sequence_modes = None

    def __len__(self):
        return self.sequence_count

    def __getitem__(self, idx):
        return (
            self.sequence_pointers[idx],
            self.sequence_lengths[idx],
            self.sequence_modes[idx] if self.sequence_modes is not None else None,
        )


class _MMapBinReader(object):
    def __init__(self, bin_path):
        self._bin_file_reader = open(bin_path, mode="rb")
        self._bin_buffer_mmap = numpy.memmap(self._bin_file_reader, mode="r", order="C")
        self._bin_buffer = memoryview(self._bin_buffer_mmap.data)

    def read(self, dtype, count, offset):
        return numpy.frombuffer(self._bin_buffer, dtype=dtype, count=count, offset=offset)


class IndexedDataset(object):
    """Megatron's IndexedDataset with mmap=True, multimodal=False."""

    def __init__(self, path_prefix):
        idx_path = path_prefix + ".idx"
        bin_path = path_prefix + ".bin"
        assert os.path.exists(idx_path) and os.path.exists(bin_path), (
            "One or both of the .idx and .bin files cannot be found at the "
            f"path prefix {path_prefix}"
        )
        self.bin_reader = _MMapBinReader(bin_path)
        self.index = _IndexReader(idx_path)
        assert self.index.sequence_lengths.shape[0] == self.index.document_indices[-1]
        assert self.index.sequence_lengths.shape[0] == len(self.index)
        assert self.index.sequence_lengths.shape[0] == self.index.sequence_count

    def __len__(self):
        return len(self.index)

    def __getitem__(self, idx):
        sequence_pointer, sequence_length, sequence_mode = self.index[idx]
        sequence = self.bin_reader.read(
            dtype=self.index.dtype, count=sequence_length, offset=sequence_pointer
        )
        return (sequence, sequence_mode) if sequence_mode is not None else sequence


HEADERS_INFO = {  # llm.c dev/data/data_common.py
    "gpt-2": {"magic": 20240520, "version": 1, "token_dtype": numpy.uint16},
    "llama-3": {"magic": 20240801, "version": 7, "token_dtype": numpy.uint32},
}


def llmc_load_shard(filename):
    """llm.c's dataloader_load_shard_ header check (both header kinds); returns the tokens."""
    with open(filename, "rb") as f:
        header = numpy.frombuffer(f.read(256 * 4), dtype=numpy.int32)
        info = next((i for i in HEADERS_INFO.values() if i["magic"] == header[0]), None)
        assert info is not None, f"Bad magic in the data file {filename}"
        assert header[1] == info["version"], f"Bad version in data file {filename}"
        ntok = int(header[2])
        assert ntok > 0
        f.seek(0, os.SEEK_END)
        file_size_bytes = f.tell()
        itemsize = numpy.dtype(info["token_dtype"]).itemsize
        expected_file_size = 256 * 4 + ntok * itemsize
        assert file_size_bytes == expected_file_size, "Error: file size is not as expected"
        f.seek(256 * 4)
        return numpy.frombuffer(f.read(), dtype=info["token_dtype"])


def main():
    shards_dir, docs_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(shards_dir, "manifest.json")) as f:
        manifest = json.load(f)
    tok = manifest["tokenizer"]
    tokenizer = Tokenizer.from_file(tok["path"])
    formats = {f["name"]: f for f in manifest["formats"]}

    expected = collections.Counter()
    with open(docs_path) as f:
        for line in f:
            text = json.loads(line)["text"]
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            if not ids:
                continue
            if tok["bos_id"] is not None:
                ids = [tok["bos_id"]] + ids
            if tok["eos_id"] is not None:
                ids = ids + [tok["eos_id"]]
            expected[tuple(ids)] += 1

    found = collections.Counter()
    tokens = 0
    for shard in manifest["shards"]:
        seqs = None
        if "megatron" in formats:
            ds = IndexedDataset(os.path.join(shards_dir, "megatron", shard["name"]))
            want_dtype = {"uint16": numpy.uint16, "int32": numpy.int32}[formats["megatron"]["dtype"]]
            assert ds.index.dtype == want_dtype, (ds.index.dtype, want_dtype)
            assert len(ds) == shard["documents"], (len(ds), shard)
            seqs = [ds[i] for i in range(len(ds))]
            assert sum(len(s) for s in seqs) == shard["tokens"]
            for s in seqs:
                found[tuple(int(t) for t in s)] += 1
            tokens += shard["tokens"]
        if "llmc" in formats:
            toks = llmc_load_shard(os.path.join(shards_dir, "llmc", shard["name"] + ".bin"))
            assert len(toks) == shard["tokens"]
            if seqs is not None:
                assert numpy.array_equal(
                    toks.astype(numpy.int64), numpy.concatenate(seqs).astype(numpy.int64)
                ), f"llm.c shard {shard['name']} differs from the Megatron shard"
    if "megatron" in formats:
        assert found == expected, (
            f"{sum((expected - found).values())} expected sequences missing, "
            f"{sum((found - expected).values())} unexpected"
        )
        assert tokens == manifest["tokens"]
    print(
        f"reference readers ok: {len(manifest['shards'])} shard(s), "
        f"{sum(found.values())} documents, {tokens} tokens, formats {sorted(formats)}"
    )


if __name__ == "__main__":
    main()
