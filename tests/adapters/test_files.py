"""Durable file writes: one at a time (`atomic_write_bytes`) and many at once (`write_pending`
then `publish`), on a real file system."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from maild.adapters.files import atomic_write_bytes, make_folder, publish, write_pending


def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a" / "b.eml"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.eml"]


@pytest.mark.parametrize("with_pool", [False, True], ids=["one-by-one", "eight-at-a-time"])
def test_pending_files_appear_under_their_names_only_when_published(tmp_path, with_pool):
    finals = [tmp_path / "mail" / f"MD-{n:04d}" / f"{n}.eml" for n in range(20)]
    pending = [(write_pending(path, f"email {n}".encode()), path) for n, path in enumerate(finals)]
    assert not any(path.exists() for path in finals)  # nothing refers to a half-written name
    assert all(tmp.read_bytes() == f"email {n}".encode() and tmp.parent == final.parent
               for n, (tmp, final) in enumerate(pending))
    folders = {path.parent for path in finals} | {tmp_path / "mail"}
    if with_pool:
        with ThreadPoolExecutor(max_workers=8) as pool:
            publish(pending, folders, pool)
    else:
        publish(pending, folders)
    assert [path.read_bytes() for path in finals] == [f"email {n}".encode() for n in range(20)]
    assert all(sorted(p.name for p in path.parent.iterdir()) == [path.name] for path in finals)


def test_a_pending_write_that_fails_leaves_no_temp_file(tmp_path):

    with pytest.raises(TypeError):
        write_pending(tmp_path / "x.eml", "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_make_folder_names_the_folders_it_made(tmp_path):
    folder = tmp_path / "mail" / "MD-0001"
    assert make_folder(folder) == [tmp_path / "mail", folder] and folder.is_dir()
    assert make_folder(folder) == []  # there: nothing made, nothing to sync
    assert make_folder(tmp_path / "mail" / "MD-0002") == [tmp_path / "mail" / "MD-0002"]
