"""Offline stores are checked like checkpoints and written like run folders.

Every damage a store can take (bit flips in chunks, headers and the manifest; swapped,
foreign, deleted, truncated and symlinked chunks; a half-written store with a damaged
chunk) is refused with a `StoreDamagedError` naming the file, at open where it can be
known and at first read otherwise, and nothing damaged is served or certified. Changed
inputs are refused, planted links are never followed, a second writer is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainkit import DataGenerator, Preprocessor, write_store
from trainkit.checkpoints import RunFolderLockedError, RunLock
from trainkit.data.sources.offline_store import PREFIX, StoreDamagedError
from trainkit.data.store_writer import StoreLockedError

X = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
Y = np.arange(40, dtype=np.int64)
CHUNKS = [f"chunk-{k:05d}.bin" for k in range(4)]  # 10 batches of 4, 3 per chunk
ESCAPE = "../../../../etc/hostname"  # a manifest naming a file outside the store


def make(data=X, labels=Y, **kwargs):
    return DataGenerator(data=data, labels=labels, batch_size=4, **kwargs)


def store(folder, data=X, labels=Y, **kwargs) -> Path:
    write_store(make(data, labels, **kwargs), folder, chunk_size=3, progress=False)
    return Path(folder)


def served(folder) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.copy(), y.copy()) for x, y in DataGenerator(folder, prefetch=0)]


def flip(path: Path, position: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


def rewrite_manifest(folder: Path, edit, *, resign: bool = True) -> None:
    """Edit the manifest; with `resign`, record the SHA-256 of the edited one (as an
    editor who knows the format would), so that only the other checks can tell."""
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    if resign:
        body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        manifest["manifest_sha256"] = hashlib.sha256(canonical).hexdigest()
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    (folder / "manifest.json").write_text(text)


def rename_first_batch(manifest) -> None:
    manifest["names"][0][0] = "9"


def header_range(path: Path) -> tuple[int, int]:
    length = int.from_bytes(path.read_bytes()[8:16], "little")
    return PREFIX, PREFIX + length


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return store(tmp_path_factory.mktemp("pristine") / "store")


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "store"))


def refused_at_first_read(folder: Path, damaged: str, expected) -> None:
    """Opening works; serving refuses when chunk `damaged` is first read, after serving
    only intact batches (each equal to the pristine store's)."""
    dg = DataGenerator(folder, prefetch=0)
    got = []
    with pytest.raises(StoreDamagedError, match=rf"{damaged}'? .*Nothing damaged was served"):
        for x, y in dg:
            got.append((x.copy(), y.copy()))
    assert len(got) == 3 * CHUNKS.index(damaged)  # the chunks before it, whole
    for (x, y), (u, v) in zip(got, expected):
        np.testing.assert_array_equal(x, u)
        np.testing.assert_array_equal(y, v)


# ------------------------------------------------------------------ damage at first read
def test_a_flipped_bit_in_a_chunks_data_is_refused_when_it_is_first_read(copy, pristine):
    chunk = copy / CHUNKS[1]
    flip(chunk, chunk.stat().st_size - 70, bit=3)  # inside a leaf's bytes
    refused_at_first_read(copy, CHUNKS[1], served(pristine))


def test_reading_checks_the_digest_a_flipped_label_is_never_served(copy):
    """Kills the mutant "reading ignores the digest": the header is intact and the chunk's
    index and inputs are right, so only the SHA-256 tells that label 6 became 7."""
    chunk = copy / CHUNKS[0]
    data = chunk.read_bytes()
    label = np.int64(6).tobytes()
    position = data.index(label, header_range(chunk)[1])  # the stored label 6
    flip(chunk, position, bit=0)  # 6 -> 7
    with pytest.raises(StoreDamagedError, match=r"chunk-00000.bin' does not match the SHA-256"):
        served(copy)


@pytest.mark.parametrize(
    ("old", "new"), [(b"[4,3]", b"[3,4]"), (b'"<f4"', b'"<i4"')], ids=["shape", "dtype"]
)
def test_an_edited_chunk_header_is_refused(copy, pristine, old, new):
    chunk = copy / CHUNKS[2]
    data = chunk.read_bytes()
    assert old in data[slice(*header_range(chunk))]
    chunk.write_bytes(data.replace(old, new, 1))
    refused_at_first_read(copy, CHUNKS[2], served(pristine))


def test_a_flipped_bit_in_a_chunk_header_is_refused(copy, pristine):
    chunk = copy / CHUNKS[3]
    start, end = header_range(chunk)
    flip(chunk, (start + end) // 2, bit=1)
    refused_at_first_read(copy, CHUNKS[3], served(pristine))


def test_swapped_chunks_are_refused_naming_what_each_holds(copy, pristine):
    first, second = copy / CHUNKS[0], copy / CHUNKS[1]
    a, b = first.read_bytes(), second.read_bytes()
    assert len(a) == len(b)  # the sizes cannot tell
    first.write_bytes(b)
    second.write_bytes(a)
    with pytest.raises(StoreDamagedError, match=r"chunk-00000.bin' holds chunk 1 of its store"):
        served(copy)


def test_a_chunk_of_another_store_is_refused(copy, tmp_path, pristine):
    other = store(tmp_path / "other", data=X + 1)  # the same shapes, other values
    shutil.copy(other / CHUNKS[1], copy / CHUNKS[1])
    with pytest.raises(StoreDamagedError, match=r"chunk-00001.bin' is a chunk of another store"):
        served(copy)


def test_a_chunk_replaced_by_a_link_after_opening_is_refused(copy):
    dg = DataGenerator(copy, prefetch=0)
    dg.get()  # chunk 0 read
    (copy / CHUNKS[1]).unlink()
    os.symlink(CHUNKS[0], copy / CHUNKS[1])  # a link to chunk 0: the same size
    with pytest.raises(StoreDamagedError, match=r"chunk-00001.bin' is a symbolic link"):
        for _ in dg:
            pass


def test_a_chunk_deleted_after_opening_is_refused_not_a_raw_error(copy):
    dg = DataGenerator(copy, prefetch=0)
    dg.get()
    (copy / CHUNKS[1]).unlink()
    with pytest.raises(StoreDamagedError, match=r"chunk-00001.bin' is missing"):
        for _ in dg:
            pass


def test_a_chunk_changed_after_its_first_read_is_checked_again(copy):
    dg = DataGenerator(copy, prefetch=0)
    for _ in dg:  # every chunk read and verified once
        pass
    dg.on_epoch_end()
    chunk = copy / CHUNKS[0]
    flip(chunk, chunk.stat().st_size - 70)  # a new modification time
    with pytest.raises(StoreDamagedError, match=r"chunk-00000.bin' does not match"):
        dg.get()


# ------------------------------------------------------------------ damage at open
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / CHUNKS[2]).unlink(), r"chunk-00002.bin' is missing"),
        (
            lambda f: (f / CHUNKS[2]).write_bytes((f / CHUNKS[2]).read_bytes()[:-64]),
            r"chunk-00002.bin' holds \d+ bytes, the manifest records \d+: it was truncated",
        ),
        (
            lambda f: ((f / CHUNKS[2]).unlink(), os.symlink(CHUNKS[1], f / CHUNKS[2])),
            r"chunk-00002.bin' is a symbolic link",
        ),
        (
            lambda f: (f / "manifest.json").write_text("{garbage"),
            r"manifest.json' is not valid JSON",
        ),
        (
            lambda f: (f / "manifest.json").write_bytes((f / "manifest.json").read_bytes()[:-40]),
            r"manifest.json' is not valid JSON",
        ),
        (
            lambda f: rewrite_manifest(f, lambda m: m.pop("names")),
            r"manifest.json' has no field 'names' \(it is incomplete\)",
        ),
        (
            lambda f: rewrite_manifest(f, lambda m: m.update(batch_size="4")),
            r"manifest.json' holds batch_size=\"4\" \(a JSON string\); expected an integer",
        ),
        (
            lambda f: rewrite_manifest(f, lambda m: m["chunks"][0].update(file=ESCAPE)),
            r"names \"../../../../etc/hostname\" as chunk 0; .* is 'chunk-00000.bin' inside",
        ),
        (
            lambda f: rewrite_manifest(f, lambda m: m.update(batch_size=8), resign=False),
            r"manifest.json' does not match the SHA-256 recorded in it",
        ),
        (
            lambda f: rewrite_manifest(f, rename_first_batch, resign=False),
            r"manifest.json' does not match the SHA-256 recorded in it",
        ),
    ],
    ids=["deleted", "truncated", "symlinked", "garbage manifest", "truncated manifest",
         "incomplete manifest", "batch_size as text", "file outside", "edited batch_size",
         "edited name"],
)  # fmt: skip
def test_damage_that_can_be_seen_at_open_is_refused_at_open(copy, damage, message):
    damage(copy)
    with pytest.raises(StoreDamagedError, match=message):
        DataGenerator(copy)


def test_a_folder_whose_manifest_was_deleted_is_named_so_and_can_be_finished(copy, pristine):
    (copy / "manifest.json").unlink()
    with pytest.raises(ValueError, match=r"neither manifest.json nor progress.json"):
        DataGenerator(copy)
    write_store(make(), copy, chunk_size=3, progress=False)  # the chunks are checked first
    assert (copy / "manifest.json").read_bytes() == (pristine / "manifest.json").read_bytes()


def test_a_store_of_format_version_1_is_refused_by_readers_and_writers(copy):
    rewrite_manifest(copy, lambda m: m.update(version=1))
    with pytest.raises(ValueError, match="format version 1, written by an earlier trainkit"):
        DataGenerator(copy)
    with pytest.raises(ValueError, match="format version 1, written by an earlier trainkit"):
        write_store(make(), copy, chunk_size=3, progress=False)


# ------------------------------------------------------------------ random bit flips
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_bit_in_any_file_is_refused_before_it_is_served(pristine, data):
    names = [*CHUNKS, "manifest.json"]
    name = data.draw(st.sampled_from(names), label="file")
    size = (pristine / name).stat().st_size
    position = data.draw(st.integers(0, size - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(pristine, Path(tmp) / "store"))
        flip(folder / name, position, bit)
        with pytest.raises(ValueError, match=rf"{name}"):  # StoreDamagedError, or format
            served(folder)


# ------------------------------------------------------------------ a half-written store
class Failing(Preprocessor):
    """Raises in batch `fail_at` (not part of the configuration)."""

    fail_at: int | None = None

    def process(self, batch, labels):
        if Failing.fail_at is not None and int(labels[0]) // 4 == Failing.fail_at:
            raise RuntimeError("stopped")
        return batch, labels


def half_written(folder: Path) -> Path:
    Failing.fail_at = 7  # chunks 0 and 1 are written, then the writer stops
    try:
        with pytest.raises(RuntimeError, match="stopped"):
            write_store(make(preprocessor=Failing()), folder, chunk_size=3, progress=False)
    finally:
        Failing.fail_at = None
    assert sorted(p.name for p in folder.iterdir()) == [*CHUNKS[:2], "progress.json"]
    return folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f, o: flip(f / CHUNKS[1], (f / CHUNKS[1]).stat().st_size - 70),
         "does not match the SHA-256 recorded in it"),
        (lambda f, o: flip(f / CHUNKS[0], sum(header_range(f / CHUNKS[0])) // 2),
         "does not match the SHA-256 recorded in it"),
        (lambda f, o: (f / CHUNKS[0]).write_bytes((f / CHUNKS[0]).read_bytes()[:-64]),
         "does not match the SHA-256 recorded in it"),
        (lambda f, o: shutil.copy(o / CHUNKS[1], f / CHUNKS[1]), "is a chunk of another store"),
        (lambda f, o: shutil.copy(f / CHUNKS[0], f / CHUNKS[1]), "holds chunk 0 of its store"),
        (lambda f, o: ((f / CHUNKS[1]).unlink(), os.symlink(o / CHUNKS[1], f / CHUNKS[1])),
         "is a symbolic link"),
    ],
    ids=["flipped data", "flipped header", "truncated", "foreign", "copied", "symlinked"],
)  # fmt: skip
def test_a_half_written_store_never_reuses_or_certifies_a_damaged_chunk(tmp_path, damage, message):
    folder = half_written(tmp_path / "store")
    other = store(tmp_path / "other", data=X + 1, preprocessor=Failing())
    damage(folder, other)
    with pytest.raises(StoreDamagedError, match=rf"{message}.*Delete .*chunk-0000[01].bin"):
        write_store(make(preprocessor=Failing()), folder, chunk_size=3, progress=False)
    assert not (folder / "manifest.json").exists()  # nothing certified
    for _ in range(3):  # delete what is named: the writer computes it again
        try:
            write_store(make(preprocessor=Failing()), folder, chunk_size=3, progress=False)
            break
        except StoreDamagedError as error:
            os.remove(error.path)
    whole = store(tmp_path / "whole", preprocessor=Failing())
    for name in [*CHUNKS, "manifest.json"]:
        assert (folder / name).read_bytes() == (whole / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [*CHUNKS, "manifest.json"]


# ------------------------------------------------------------------ changed inputs
def test_a_changed_in_memory_value_is_refused_naming_data_or_labels(tmp_path):
    finished = store(tmp_path / "finished")
    changed = X.copy()
    changed[5, 1] += 1
    with pytest.raises(ValueError, match=r"content of the in-memory data changed"):
        write_store(make(changed), finished, chunk_size=3, progress=False)
    labels = Y.copy()
    labels[0] = 1
    with pytest.raises(ValueError, match=r"content of the in-memory labels changed"):
        write_store(make(X, labels), finished, chunk_size=3, progress=False)
    unfinished = half_written(tmp_path / "unfinished")
    with pytest.raises(ValueError, match=r"an unfinished store .*in-memory data changed"):
        write_store(make(changed, preprocessor=Failing()), unfinished, chunk_size=3,
                    progress=False)  # fmt: skip
    write_store(make(X.copy()), finished, chunk_size=3, progress=False)  # equal: accepted


def test_a_changed_member_and_a_changed_file_are_named(tmp_path):
    data = {"a": X, "b": X[:, :1] * 2}
    finished = write_store(DataGenerator(data=data, labels=Y, batch_size=4), tmp_path / "s",
                           chunk_size=3, progress=False)  # fmt: skip
    changed = {"a": X, "b": data["b"] + 1}
    with pytest.raises(ValueError, match=r"in-memory data\['b'\] changed"):
        write_store(DataGenerator(data=changed, labels=Y, batch_size=4), finished, chunk_size=3,
                    progress=False)  # fmt: skip
    np.save(tmp_path / "x.npy", X)
    from_file = write_store(DataGenerator(str(tmp_path / "x.npy"), batch_size=4),
                            tmp_path / "f", chunk_size=3, progress=False)  # fmt: skip
    np.save(tmp_path / "x.npy", X + 1)  # same size, new content and modification time
    os.utime(tmp_path / "x.npy", ns=(1, 10**18))
    with pytest.raises(ValueError, match=r"data file 'x.npy' changed: size 608 -> 608 bytes"):
        write_store(DataGenerator(str(tmp_path / "x.npy"), batch_size=4), from_file,
                    chunk_size=3, progress=False)  # fmt: skip


# ------------------------------------------------------------------ writing safely
@pytest.mark.parametrize("planted", [".manifest.json.tmp", ".chunk-00003.bin.tmp",
                                     ".progress.json.tmp"])  # fmt: skip
def test_finishing_a_store_never_writes_through_a_planted_link(tmp_path, planted):
    folder = half_written(tmp_path / "store")
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    os.symlink(target, folder / planted)
    write_store(make(preprocessor=Failing()), folder, chunk_size=3, progress=False)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == [*CHUNKS, "manifest.json"]
    served(folder)


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    first = RunLock(str(folder))  # the lock a running write_store holds
    with first.held("write_store"):
        with pytest.raises(
            StoreLockedError, match=rf"another write_store is writing it \(pid {os.getpid()}"
        ):
            write_store(make(), folder, chunk_size=3, progress=False)
        assert isinstance(StoreLockedError("", "", None), RunFolderLockedError)
    write_store(make(), folder, chunk_size=3, progress=False)  # released: it writes
    assert ".lock" not in os.listdir(folder)  # the lock file goes with the writer


@pytest.mark.parametrize(
    ("setup", "out", "error", "message"),
    [
        (lambda p: None, "", ValueError, r"`out` must name a folder.*Received: out=''"),
        (lambda p: p.joinpath("file").write_text("x"), "file", ValueError, r"is a file"),
        (lambda p: (p / "f").mkdir() or (p / "f/manifest.json").write_text('{"run": 1}'), "f",
         ValueError, r"is not the manifest.json of a trainkit offline store"),
        (lambda p: (p / "f").mkdir() or (p / "f/progress.json").write_text("{garb"), "f",
         ValueError, r"progress.json', the progress file of an unfinished store, is damaged"),
        (lambda p: (p / "f").mkdir() or (p / "f/manifest.json").write_text("[1]"), "f",
         ValueError, r"is not the manifest.json.*holds a JSON list"),
    ],
    ids=["empty out", "out a file", "foreign manifest", "garbage progress", "list manifest"],
)  # fmt: skip
def test_bad_folders_get_clear_errors_and_are_left_as_they_were(
    tmp_path, monkeypatch, setup, out, error, message
):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(error, match=message):
        write_store(make(), out, chunk_size=3, progress=False)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # no lock file left


class Ragged(Preprocessor):
    def process(self, batch, labels):
        return [batch[0][:1], batch[1][:2]], labels


def test_ragged_slices_are_a_type_error_suggesting_pad_preprocessor(tmp_path):
    with pytest.raises(TypeError, match=r"ragged samples cannot be stored.*PadPreprocessor"):
        write_store(make(preprocessor=Ragged()), tmp_path / "s", chunk_size=3, progress=False)
