"""The per-photo cache of benchmarks/bench_animate.py section 4 (long runs stop and resume)."""

from benchmarks.bench_animate import PhotoCache


def test_cache_keeps_finished_photos_and_skips_a_cut_line(tmp_path):
    w = tmp_path / "w" / "model.safetensors"
    w.parent.mkdir()
    w.write_bytes(b"generator-a")
    cache = PhotoCache(tmp_path / "cache", w, "datakey0123456789")
    cache.add("best", {"index": 7, "seconds": 1.5, "feat": [0.1, 0.2]})
    cache.add("best", {"index": 9, "seconds": 2.5, "feat": [0.3, 0.4]})
    with open(cache.dir / "best.jsonl", "a") as f:
        f.write('{"index": 11, "secon')  # killed mid-write
    again = PhotoCache(tmp_path / "cache", w, "datakey0123456789")
    done = again.load("best")
    assert sorted(done) == [7, 9] and done[9]["feat"] == [0.3, 0.4]
    assert again.load("fast") == {}


def test_cache_is_keyed_by_the_weights_and_the_test_set(tmp_path):
    w = tmp_path / "w" / "model.safetensors"
    w.parent.mkdir()
    w.write_bytes(b"generator-a")
    a = PhotoCache(tmp_path / "cache", w, "datakey0123456789")
    assert PhotoCache(tmp_path / "cache", w, "otherdata0123456").dir != a.dir
    (w.parent / "encoder").mkdir()
    (w.parent / "encoder" / "model.safetensors").write_bytes(b"encoder")
    assert PhotoCache(tmp_path / "cache", w, "datakey0123456789").dir != a.dir
    w.write_bytes(b"generator-b")
    assert PhotoCache(tmp_path / "cache", w, "datakey0123456789").dir != a.dir


def test_concurrent_shards_write_their_own_files_and_load_reads_all(tmp_path):
    w = tmp_path / "w" / "model.safetensors"
    w.parent.mkdir()
    w.write_bytes(b"generator-a")
    s0 = PhotoCache(tmp_path / "cache", w, "datakey0123456789", "shard0of2")
    s1 = PhotoCache(tmp_path / "cache", w, "datakey0123456789", "shard1of2")
    s0.add("best", {"index": 3, "feat": [0.0]})
    s1.add("best", {"index": 4, "feat": [1.0]})
    s1.add("balanced", {"index": 5, "feat": [2.0]})
    assert len(list(s0.dir.glob("best.*.jsonl"))) == 2  # one file per writer: no interleaved appends
    merged = PhotoCache(tmp_path / "cache", w, "datakey0123456789")
    assert sorted(merged.load("best")) == [3, 4] and sorted(merged.load("balanced")) == [5]
