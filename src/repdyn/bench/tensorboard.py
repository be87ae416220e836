"""A dependency-free TensorBoard event-file writer (scalars and PNG images).

TensorBoard reads TFRecord files of `Event` protocol buffers. Both formats are small and stable,
so they are encoded here directly: each record is `len (u64 LE) | masked crc32c(len) | data |
masked crc32c(data)`, and the few protobuf fields needed are written by hand:

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    Summary { repeated Value value = 1; }
    Value   { string tag = 1; float simple_value = 2; Image image = 4; }
    Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

_CRC32C_POLY = 0x82F63B78
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _CRC32C_POLY if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _event(step: int, *, summary: bytes | None = None, file_version: str | None = None,
           wall_time: float | None = None) -> bytes:
    out = b"\x09" + struct.pack("<d", time.time() if wall_time is None else wall_time)
    out += _field_varint(2, step)
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if summary is not None:
        out += _field_bytes(5, summary)
    return out


def scalar_summary(tag: str, value: float) -> bytes:
    """A Summary holding one scalar."""
    value_msg = _field_bytes(1, tag.encode()) + b"\x15" + struct.pack("<f", float(value))
    return _field_bytes(1, value_msg)


def image_summary(tag: str, png: bytes, height: int, width: int) -> bytes:
    """A Summary holding one PNG image."""
    image = _field_varint(1, height) + _field_varint(2, width) + _field_varint(3, 4) + _field_bytes(4, png)
    value_msg = _field_bytes(1, tag.encode()) + _field_bytes(4, image)
    return _field_bytes(1, value_msg)


class EventWriter:
    """Appends events to one `events.out.tfevents.*` file in a folder."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.repdyn"
        self._file = open(self.path, "wb")
        self._write(_event(0, file_version="brain.Event:2"))

    def _write(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", masked_crc32c(header)) + data
                         + struct.pack("<I", masked_crc32c(data)))

    def scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        """Write one scalar point."""
        self._write(_event(step, summary=scalar_summary(tag, value), wall_time=wall_time))

    def image(self, tag: str, png: bytes, step: int = 0) -> None:
        """Write one PNG image (its size is read from the PNG header)."""
        width, height = struct.unpack(">II", png[16:24])
        self._write(_event(step, summary=image_summary(tag, png, height, width)))

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
