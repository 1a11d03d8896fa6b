"""Is an input file whole? Size checks of netCDF-3 and netCDF-4 files against their headers.

The netCDF library reads a truncated netCDF-3 file without complaint: values past the
end come back as zeros (a truncated Argo file gave 0 m / 0.0 degC rows, some counted
good). The classic header says where every variable's data begin and how long they are,
so the file's expected size is known before any value is read; HDF5 (netCDF-4) stores
its own end-of-file address in the superblock. Both are checked here, reading only the
header bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

from engine.errors import InputError, file_error

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 10, 11, 12
# bytes per value of each netCDF type (1 byte, 2 char, 3 short, 4 int, 5 float, 6 double, CDF-5 extras)
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = 0xFFFFFFFF
_FIX = "download or write it again"


def read_head(file: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``file``, with one line if it cannot be read."""
    try:
        with open(file, "rb") as handle:
            return handle.read(size)
    except PermissionError:
        raise file_error(
            file, "cannot be read (permission denied)", "make it readable (chmod u+r) or copy it"
        ) from None
    except IsADirectoryError:
        raise file_error(file, "is a folder, not a file", "give the path of a file") from None
    except OSError as err:
        raise file_error(file, f"cannot be read ({err.strerror or type(err).__name__})", "check the path") from None


class _Truncated(Exception):
    """The header itself runs past the bytes read."""


class _Header:
    """A cursor over big-endian netCDF-3 header bytes (CDF-1, CDF-2 or CDF-5)."""

    def __init__(self, data: bytes, version: int) -> None:
        self.data, self.pos = data, 4
        self.count = 8 if version == 5 else 4  # element counts and sizes
        self.offset = 4 if version == 1 else 8  # variable data offsets

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Truncated
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def name(self) -> None:
        length = self.integer(self.count)
        self.take(-(-length // 4) * 4)

    def listing(self, expected: int) -> int:
        tag, n = self.integer(4), self.integer(self.count)
        if tag not in (0, expected):
            raise ValueError(f"bad header tag {tag}")
        return n

    def attributes(self) -> None:
        for _ in range(self.listing(_NC_ATTRIBUTE)):
            self.name()
            kind, n = self.integer(4), self.integer(self.count)
            self.take(-(-n * _TYPE_SIZE.get(kind, 1) // 4) * 4)


def _classic_extent(data: bytes) -> tuple[int, int]:
    """(bytes the header says the data need, header length) of a netCDF-3 file.

    Raises _Truncated if the header runs past ``data``, ValueError if it is garbage.
    """
    header = _Header(data, data[3])
    numrecs = header.integer(header.count)
    dims = []
    for _ in range(header.listing(_NC_DIMENSION)):
        header.name()
        dims.append(header.integer(header.count))
    header.attributes()
    fixed_end, records = 0, []
    for _ in range(header.listing(_NC_VARIABLE)):
        header.name()
        ids = [header.integer(header.count) for _ in range(header.integer(header.count))]
        header.attributes()
        size = _TYPE_SIZE.get(header.integer(4), 1)
        vsize, begin = header.integer(header.count), header.integer(header.offset)
        record = bool(ids) and dims[ids[0]] == 0
        for i in ids[1:] if record else ids:
            size *= dims[i]
        if record:
            records.append((begin, size, vsize))
        else:
            fixed_end = max(fixed_end, begin + size)
    end = fixed_end
    if records and numrecs not in (0, _STREAMING):
        record_size = records[0][1] if len(records) == 1 else sum(v for _, _, v in records)
        end = max(end, *(begin + (numrecs - 1) * record_size + size for begin, size, _ in records))
    return end, header.pos


def _hdf5_extent(data: bytes) -> int | None:
    """The end-of-file address an HDF5 superblock stores (None if it cannot be found)."""
    for base in (0, 512, 1024, 2048, 4096, 8192):
        if data[base : base + 8] != HDF5_SIGNATURE:
            continue
        version, sb = data[base + 8], data[base:]
        if version in (0, 1):
            width, at = sb[13], 24 + (4 if version == 1 else 0)
            at += 2 * width  # base address, free-space address
        elif version in (2, 3):
            width, at = sb[9], 12 + 2 * sb[9]  # base address, superblock extension
        else:
            return None
        if width not in (4, 8) or len(sb) < at + width:
            return None
        return base + struct.unpack("<I" if width == 4 else "<Q", sb[at : at + width])[0]  # little-endian
    return None


def check_complete(path: str | Path) -> Path:
    """Refuse, in one line, a netCDF file shorter than its header says; return its path.

    Files that are neither netCDF-3 nor HDF5 are left to the reader (which names the
    format it expected).
    """
    file = Path(path)
    actual = file.stat().st_size
    head = read_head(file, 1 << 16)
    if head[:3] == b"CDF" and len(head) > 3 and head[3] in (1, 2, 5):
        need = _classic_need(file, head, actual)
    elif HDF5_SIGNATURE in head[:8200]:
        need = _hdf5_extent(head)
    else:
        return file
    if need is not None and actual < need:
        raise file_error(file, f"is truncated: {actual} bytes of the {need} its header declares", _FIX)
    return file


def _classic_need(file: Path, head: bytes, actual: int) -> int:
    data = head
    while True:
        try:
            return _classic_extent(data)[0]
        except _Truncated:
            if len(data) >= actual:
                raise file_error(file, f"is truncated inside its netCDF header ({actual} bytes)", _FIX) from None
            data = read_head(file, len(data) * 4)
        except (ValueError, IndexError):
            raise file_error(file, "has a damaged netCDF-3 header", _FIX) from None


def readable(path: str | Path) -> Path:
    """The path of an existing, readable file; one line (InputError) otherwise."""
    file = Path(path)
    if not file.exists():
        raise file_error(file, "file does not exist", "check the path")
    read_head(file, 1)
    return file


__all__ = ["InputError", "check_complete", "readable", "read_head"]
