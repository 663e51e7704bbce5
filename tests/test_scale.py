"Scale stage: exact near-duplicate search against brute force, planted-pair recall, lean data lists, subsets."
import numpy as np, pandas as pd, pyarrow as pa, pytest
from biovfm.core import SCHEMAS
from biovfm.core import MODALITIES
from biovfm.dedup import phash_int, near_pairs
from biovfm.scale import (near_duplicates, cross_duplicates, planted_hashes, search_plan, hex_to_uint64,
                          string_hash64, read_data_list, write_synthetic_data_list, random_subset, take_rows)

def _brute(a, b=None, max_dist=4):
    "All pairs within `max_dist` by computing every distance (i < j when `b` is None)."
    distances = np.bitwise_count(a[:, None] ^ (a if b is None else b)[None, :])
    within = distances <= max_dist
    return np.argwhere(np.triu(within, 1) if b is None else within)

def _awkward_hashes(n=1500, seed=0):
    "Random hashes with exact duplicates, a 50-member near-identical cluster and chains of 1-bit steps."
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64, n, dtype=np.uint64)
    h[10:20] = h[9]                                                            # 11 exact copies
    h[100:150] = h[99] ^ (np.uint64(1) << rng.permutation(64)[:50].astype(np.uint64))  # all within 2 bits
    h[300:306] = h[299]; h[301] ^= np.uint64(1 << 63); h[302] ^= np.uint64(0b111)      # copies in a cluster
    for k in range(400, 420): h[k] = h[k - 1] ^ (np.uint64(1) << np.uint64(rng.integers(64)))   # a random walk
    return h[rng.permutation(n)]

@pytest.mark.parametrize('max_dist', [0, 1, 2, 3, 4, 5, 6, 8])
def test_near_duplicates_equal_brute_force(max_dist):
    h = _awkward_hashes()
    expected = _brute(h, max_dist=max_dist)
    assert len(expected) > 0
    for n_blocks in (None, 3, 4, 5, 9):
        got = near_duplicates(h, max_dist, n_blocks=n_blocks, batch=97)
        assert got.dtype == np.int64 and got.shape[1] == 2
        np.testing.assert_array_equal(got, expected, err_msg=f'max_dist={max_dist} n_blocks={n_blocks}')

@pytest.mark.parametrize('max_dist', [0, 4, 6])
def test_cross_duplicates_equal_brute_force(max_dist):
    h = _awkward_hashes(seed=1)
    query, reference = h[:400], h[250:]        # overlapping, so exact matches exist
    for q, r in ((query, reference), (reference, query)):
        for n_blocks in (None, 3, 7):
            got = cross_duplicates(q, r, max_dist, n_blocks=n_blocks, batch=50)
            np.testing.assert_array_equal(got, _brute(q, r, max_dist))

def test_agrees_with_curation_near_pairs():
    h = _awkward_hashes(800, seed=2)
    for t in (4, 6):
        old = near_pairs(h, threshold=t)
        np.testing.assert_array_equal(near_duplicates(h, t), old[['i', 'j']].to_numpy())
        old = near_pairs(h[:300], h[200:], t)
        np.testing.assert_array_equal(cross_duplicates(h[:300], h[200:], t), old[['i', 'j']].to_numpy())

def test_edge_cases():
    assert near_duplicates(np.zeros(0, np.uint64)).shape == (0, 2)
    assert near_duplicates(np.ones(1, np.uint64)).shape == (0, 2)
    all_pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    np.testing.assert_array_equal(near_duplicates(np.zeros(4, np.uint64), 0), all_pairs)
    h = np.array([0, (1 << 64) - 1], np.uint64)
    assert len(near_duplicates(h, 63)) == 0 and len(near_duplicates(h.view(np.int64), 4)) == 0
    with pytest.raises(ValueError, match='0..63'): near_duplicates(h, -1)
    with pytest.raises(ValueError, match='>= 3'): near_duplicates(h, 4, n_blocks=2)

def test_planted_pairs_found_at_200k():
    hashes, planted = planted_hashes(200_000, 1000, max_dist=4, seed=3)
    assert search_plan(2_000_000, 2_000_000, 4) == (3, 1)
    for n_blocks in (None, 3):                        # the plan for 200k (5 exact bands), the one for millions
        found = near_duplicates(hashes, 4, n_blocks=n_blocks)
        found_set = set(map(tuple, found.tolist()))
        assert all(tuple(p) in found_set for p in planted.tolist())  # recall 1
        assert (np.bitwise_count(hashes[found[:, 0]] ^ hashes[found[:, 1]]) <= 4).all()
        assert len(found) <= len(planted) + 2                    # random pairs within 4 bits are ~1e-13 likely
    distances = np.bitwise_count(hashes[planted[:, 0]] ^ hashes[planted[:, 1]])
    assert set(distances.tolist()) == {0, 1, 2, 3, 4}

def test_hex_and_string_hashes():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**64, 5000, dtype=np.uint64)
    hexes = [f'{v:016x}' for v in values]
    np.testing.assert_array_equal(hex_to_uint64(hexes), values)
    np.testing.assert_array_equal(hex_to_uint64(pa.chunked_array([hexes[:7], hexes[7:]])), phash_int(hexes))
    np.testing.assert_array_equal(near_duplicates(hexes[:500]), near_duplicates(values[:500]))
    with pytest.raises(ValueError, match='16-digit'): hex_to_uint64(['abc'])
    with pytest.raises(ValueError, match='missing'): hex_to_uint64(pa.array([hexes[0], None]))
    paths = [f'shard-{i // 100:06d}/{i:08x}.png' for i in range(20_000)]
    paths = pd.Series(paths, dtype=pd.ArrowDtype(pa.string()))
    key = string_hash64(paths, seed=5)
    assert len(np.unique(key)) == len(paths)
    np.testing.assert_array_equal(string_hash64(paths.iloc[::-1], seed=5), key[::-1])
    np.testing.assert_array_equal(string_hash64(paths.astype(object), seed=5), key)
    assert (string_hash64(paths, seed=6) != key).all()
    assert abs((key >> np.uint64(63)).mean() - 0.5) < 0.02   # top bit balanced

@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    path = write_synthetic_data_list(tmp_path_factory.mktemp('scale')/'data_list.parquet', 1_000_000, seed=0,
                                     rows_per_group=300_000)
    return path, read_data_list(path)

def test_lean_data_list(synthetic):
    path, dl = synthetic
    assert len(dl) == 1_000_000 and list(dl.columns) == SCHEMAS['data_list']
    bytes_per_row = dl.memory_usage(deep=True).sum() / len(dl)
    assert bytes_per_row < 100, bytes_per_row
    for name in ('source', 'modality', 'anatomy', 'view', 'split', 'orig_shape', 'spacing'):
        assert isinstance(dl[name].dtype, pd.CategoricalDtype), name
        assert list(dl[name].cat.categories) == sorted(dl[name].cat.categories)
    assert dl.modality.cat.codes.dtype == np.int8 and set(dl.modality) == set(MODALITIES)
    assert dl.source.nunique() == 60
    assert dl.path.dtype == pd.ArrowDtype(pa.string()) and dl.content_hash.dtype == pd.ArrowDtype(pa.string())
    assert dl.slice_index.dtype == np.int16 and dl.phash.dtype == np.uint64
    sample = pd.read_parquet(path).iloc[::997]
    rows = sample.index.to_numpy()
    picked = take_rows(dl, rows)
    assert picked.path.tolist() == sample.path.tolist()
    assert picked.modality.astype(str).tolist() == sample.modality.tolist()
    assert picked.slice_index.tolist() == sample.slice_index.tolist()
    np.testing.assert_array_equal(picked.phash.to_numpy(), phash_int(sample.phash))

def test_read_columns_and_errors(synthetic, tmp_path):
    path, dl = synthetic
    lean = read_data_list(path, ['modality', 'path'])
    assert list(lean.columns) == ['modality', 'path'] and lean.path.equals(dl.path)
    with pytest.raises(ValueError, match="no column"): read_data_list(path, ['path', 'colour'])
    pd.DataFrame({'path': ['a.png']}).to_parquet(tmp_path/'not_a_list.parquet')
    with pytest.raises(ValueError, match='not a data list'): read_data_list(tmp_path/'not_a_list.parquet')
    small = pd.read_parquet(path).iloc[:3].assign(volume=pd.array([1, None, 300], dtype='Int64'),
                                                  fg_frac=[0.5, 0.25, float('nan')], src=['a', None, 'c'])
    small.to_parquet(tmp_path/'extras.parquet')
    extras = read_data_list(tmp_path/'extras.parquet')
    assert list(extras.columns) == SCHEMAS['data_list'] + ['volume', 'fg_frac', 'src']
    assert extras.volume.dtype == pd.ArrowDtype(pa.int16()) and extras.volume.isna().tolist() == [False, True, False]
    assert extras.fg_frac.dtype == pd.ArrowDtype(pa.float32()) or extras.fg_frac.dtype == np.float32
    assert extras.src.dtype == pd.ArrowDtype(pa.string()) and extras.src.isna().sum() == 1
    empty = tmp_path/'empty.parquet'
    write_synthetic_data_list(empty, 0)
    assert len(read_data_list(empty)) == 0 and list(read_data_list(empty).columns) == SCHEMAS['data_list']

def test_subset_stratified_deterministic_nested(synthetic):
    _, dl = synthetic
    sub = random_subset(dl, 2000, seed=0)
    assert len(sub) == 2000 and set(sub.modality) == set(dl.modality)   # OCTA: 12 rows of 1M
    assert (dl.modality == 'OCTA').sum() < 20
    assert sub.path.is_monotonic_increasing and sub.path.is_unique and sub.index.equals(pd.RangeIndex(2000))
    pd.testing.assert_frame_equal(random_subset(dl, 2000, seed=0), sub)
    kept = np.random.default_rng(0).permutation(len(dl))[:600_000]
    from_shuffled = random_subset(take_rows(dl, kept), 2000, seed=0)
    reference = random_subset(take_rows(dl, np.sort(kept)), 2000, seed=0)
    pd.testing.assert_frame_equal(from_shuffled, reference)                # row order does not matter
    assert set(sub.path) <= set(random_subset(dl, 20_000, seed=0).path)      # nested
    other = random_subset(dl, 2000, seed=1)
    assert len(set(other.path) & set(sub.path)) < 50
    by_source = random_subset(dl, 100, seed=0, keep='source')
    assert by_source.source.nunique() == 60
    few = random_subset(dl, 4, seed=0)
    assert len(few) == 4 and few.modality.nunique() == 4
    assert len(random_subset(dl, 0)) == 0
    uniform = random_subset(dl, 50_000, seed=0, keep=None)
    share = uniform.modality.value_counts(normalize=True).reindex(dl.modality.cat.categories, fill_value=0)
    expected = dl.modality.value_counts(normalize=True).reindex(dl.modality.cat.categories, fill_value=0)
    assert (share - expected).abs().max() < 0.01

def test_subset_on_plain_frames_with_missing_values():
    dl = pd.DataFrame({'path': [f'{i:05d}.png' for i in range(1000)],
                       'modality': ['CT'] * 900 + ['US'] * 95 + ['OCTA'] * 2 + [None] * 3})
    sub = random_subset(dl, 10, seed=0)
    assert len(sub) == 10 and {'CT', 'US', 'OCTA'} <= set(sub.modality.dropna())
    pd.testing.assert_frame_equal(random_subset(dl.sample(frac=1, random_state=0), 10, seed=0), sub)
    everything = random_subset(dl, 5000)
    assert len(everything) == 1000 and everything.path.is_monotonic_increasing

def test_public_entry_points_are_importable_from_curation():
    "The issue's entry points, as users' scripts import them next to `curate`."
    import biovfm.scale as scale
    from biovfm.curate import near_duplicates as nd, random_subset as rs, read_data_list as rdl
    assert (nd, rs, rdl) == (scale.near_duplicates, scale.random_subset, scale.read_data_list)
    hashes = np.array([0, 0b1011, 2**63, 0b1], dtype=np.uint64)  # Hamming 3, 1, 1 from 0; 4 between 0b1011 and 2**63
    assert sorted(map(tuple, np.asarray(nd(hashes, max_dist=3)).reshape(-1, 2).tolist())) == [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
