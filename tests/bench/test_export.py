"""Exports read back with independent readers: TensorBoard's own event reader, csv, pyarrow."""

import csv
import struct

import pytest

from repdyn.bench.tensorboard import EventWriter, crc32c, masked_crc32c
from repdyn.cli import main


def test_crc32c_known_answers():
    # RFC 3720 appendix B.4 test vectors for CRC-32C.
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_event_records_are_framed_as_tfrecords(tmp_path):
    with EventWriter(tmp_path) as writer:
        writer.scalar("loss", 0.5, step=3)
    data = writer.path.read_bytes()
    offset, records = 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset: offset + 8])
        (header_crc,) = struct.unpack("<I", data[offset + 8: offset + 12])
        assert header_crc == masked_crc32c(data[offset: offset + 8])
        payload = data[offset + 12: offset + 12 + length]
        assert struct.unpack("<I", data[offset + 12 + length: offset + 16 + length])[0] == masked_crc32c(payload)
        records.append(payload)
        offset += 16 + length
    assert len(records) == 2 and b"brain.Event:2" in records[0] and b"loss" in records[1]


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("REPDYN_STORE", str(tmp_path / "runs" / "repdyn.db"))
    assert main(["run", "grokking", "--preset", "smoke", "--set", "train.steps=60", "--set", "log_points=10",
                 "--seeds", "0-1", "--quiet", "--no-report"]) == 0
    return tmp_path


def test_tensorboard_export_opens_in_tensorboards_reader(two_runs, capsys):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = two_runs / "tb"
    assert main(["export", "grokking-1", "grokking-2", "--to", "tensorboard", str(out)]) == 0
    from repdyn.bench.store import RunStore

    store = RunStore(two_runs / "runs" / "repdyn.db")
    acc = event_accumulator.EventAccumulator(str(out / "grokking-2" / "main"))
    acc.Reload()
    stored = store.series("grokking-2/main", "test_acc")
    events = acc.Scalars("test_acc")
    assert [e.step for e in events] == stored.steps.tolist()
    assert [e.value for e in events] == pytest.approx(stored.values.tolist(), rel=1e-6)  # float32 in events
    figures = event_accumulator.EventAccumulator(str(out / "grokking-1"), size_guidance={"images": 0})
    figures.Reload()
    assert set(figures.Tags()["images"]) == {"report/accuracy", "report/ranks", "report/norm_loss"}
    assert figures.Images("report/accuracy")[0].encoded_image_string.startswith(b"\x89PNG")


def test_csv_and_parquet_exports_hold_every_row(two_runs, capsys):
    from repdyn.bench.store import RunStore

    store = RunStore(two_runs / "runs" / "repdyn.db")
    expected = sum(store.count_rows(a.id) for r in ("grokking-1", "grokking-2") for a in store.children(r))
    assert main(["export", "grokking-1", "grokking-2", "--to", "csv", str(two_runs / "s.csv")]) == 0
    with open(two_runs / "s.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected
    assert set(rows[0]) == {"run", "arm", "study", "seed", "step", "name", "value"}
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", "grokking-1", "grokking-2", "--to", "parquet", str(two_runs / "s.parquet")]) == 0
    table = pq.read_table(two_runs / "s.parquet")
    assert table.num_rows == expected
    assert main(["export", "grokking-1", "--to", "xlsx"]) == 2


def test_compare_over_a_sweep_reports_claim_fractions(two_runs, capsys):
    assert main(["compare", "grokking-1"]) == 0  # one run of a sweep compares the whole sweep
    out = capsys.readouterr().out
    assert "Across seeds:" in out and "setting of 2 run(s): grokking-1, grokking-2" in out
    assert "claim G3: held on" in out and "/2 seeds" in out
