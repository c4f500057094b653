"""The toy world: split rule, deterministic renderer, dataset preparation, caption stream."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from zsseg_bench.data import synthetic as S
from zsseg_bench.data.synthetic.render import SEG_IMAGE_SIZE_RANGE, shape_mask


def test_class_list_and_split():
    assert S.CLASS_NAMES[S.BACKGROUND_ID] == "background" and S.BACKGROUND_ID == 0
    assert len(set(S.CLASS_NAMES)) == S.NUM_CLASSES == 21
    assert S.BACKGROUND_ID in S.SEEN_CLASS_IDS
    assert len(S.UNSEEN_CLASS_IDS) == 5
    assert sorted(S.SEEN_CLASS_IDS + S.UNSEEN_CLASS_IDS) == list(range(S.NUM_CLASSES))
    seen_objects = [i for i in S.SEEN_CLASS_IDS if i != S.BACKGROUND_ID]
    for u in S.UNSEEN_CLASS_IDS:
        colour, shape = S.CLASS_ATTRIBUTES[u]
        assert any(S.CLASS_ATTRIBUTES[s][0] == colour for s in seen_objects)
        assert any(S.CLASS_ATTRIBUTES[s][1] == shape for s in seen_objects)
        assert S.CLASS_NAMES[u] == f"{colour} {shape}"


def test_check_split_rejects_bad_splits():
    attrs = [None, ("red", "circle"), ("blue", "square"), ("red", "square"), ("red", "ring")]
    S.check_split(attrs, [0, 1, 2, 4], [3])  # red and square both seen
    with pytest.raises(ValueError, match="colour never seen"):
        S.check_split(attrs, [0, 1, 3, 4], [2])
    with pytest.raises(ValueError, match="shape never seen"):
        S.check_split(attrs, [0, 1, 2, 3], [4])
    with pytest.raises(ValueError, match="background"):
        S.check_split(attrs, [1, 2, 4], [0, 3])
    with pytest.raises(ValueError, match="partition"):
        S.check_split(attrs, [0, 1], [3])


def test_shapes_are_distinct_masks():
    masks = {s: shape_mask(s, 64, 64, 32, 32, 40).astype(bool) for s in S.SHAPES}
    for a in S.SHAPES:
        assert masks[a].sum() > 150, a
        for b in S.SHAPES:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.9, (a, b, iou)  # at least 10% of the union differs
    assert not masks["ring"][32, 32] and masks["circle"][32, 32]  # the ring has a hole


def test_render_deterministic_and_consistent():
    img, lbl = S.render_segmentation_sample(3, 7)
    img2, lbl2 = S.render_segmentation_sample(3, 7)
    np.testing.assert_array_equal(img, img2)
    np.testing.assert_array_equal(lbl, lbl2)
    img3, _ = S.render_segmentation_sample(3, 8)
    assert img3.shape != img.shape or not np.array_equal(img3, img)
    assert img.dtype == np.uint8 and lbl.dtype == np.uint8 and img.shape[:2] == lbl.shape
    lo, hi = SEG_IMAGE_SIZE_RANGE
    assert lo <= lbl.shape[0] <= hi and lo <= lbl.shape[1] <= hi
    assert lbl.max() < S.NUM_CLASSES  # no ignore pixels
    # Object pixels carry their class colour (within jitter + noise).
    for cid in np.unique(lbl):
        if cid == 0:
            continue
        rgb = np.array(S.COLOURS[S.CLASS_ATTRIBUTES[cid][0]])
        mean = img[lbl == cid].reshape(-1, 3).mean(0)
        assert np.abs(mean - rgb).max() < 30


def test_renders_cover_all_classes():
    seen = set()
    for i in range(60):
        seen |= set(np.unique(S.render_segmentation_sample(0, i)[1]).tolist())
    assert seen == set(range(S.NUM_CLASSES))


def test_prepare_idempotent(tmp_path):
    root = str(tmp_path)
    counts = S.prepare_synthetic(root, num_train=6, num_val=3, seed=5)
    assert counts == {"train": 6, "val": 3, "written": 9}
    assert S.dataset_is_complete(root, num_train=6, num_val=3, seed=5)
    assert not S.dataset_is_complete(root, num_train=7)
    info = json.loads((tmp_path / "synthetic" / "info.json").read_text())
    assert info["version"] == S.WORLD_VERSION and info["counts"] == {"train": 6, "val": 3}
    assert info["unseen_classes"] == list(S.UNSEEN_CLASS_IDS)
    lbl = cv2.imread(S.label_path(root, "val", 2), cv2.IMREAD_UNCHANGED)
    img = cv2.imread(S.image_path(root, "val", 2))
    ref_img, ref_lbl = S.render_segmentation_sample(5 + 1_000_003, 2)
    np.testing.assert_array_equal(lbl, ref_lbl)  # PNG labels are lossless
    assert img.shape == ref_img.shape
    assert np.abs(img[:, :, ::-1].astype(int) - ref_img).mean() < 6  # JPEG q95
    mtime = os.path.getmtime(S.image_path(root, "train", 0))
    again = S.prepare_synthetic(root, num_train=6, num_val=3, seed=5)
    assert again["written"] == 0
    assert os.path.getmtime(S.image_path(root, "train", 0)) == mtime
    # A partially deleted dataset is completed; a new seed re-renders everything.
    os.remove(S.label_path(root, "train", 4))
    assert S.prepare_synthetic(root, num_train=6, num_val=3, seed=5)["written"] == 1
    assert S.prepare_synthetic(root, num_train=6, num_val=3, seed=6)["written"] == 9
    assert not [f for f in os.listdir(tmp_path / "synthetic" / "images" / "train") if "tmp" in f]


def test_caption_stream():
    stream = S.CaptionStream(seed=1, batch_size=48, image_size=64)
    b = stream.batch(4)
    b2 = stream.batch(4)
    np.testing.assert_array_equal(b.images, b2.images)
    assert b.captions == b2.captions
    assert b.images.shape == (48, 64, 64, 3)
    partial = 0
    for cap, objs, desc, cs in zip(b.captions, b.objects, b.descriptors, b.class_sets):
        assert cap.startswith("a photo of a ")
        assert S.caption_matches(objs, desc)
        if not objs:
            assert cap == "a photo of a background." and cs == frozenset({S.BACKGROUND_ID})
            continue
        assert cs == frozenset(S.CLASS_ATTRIBUTES.index(o) for o in objs) and len(objs) <= 2
        partial += desc[0][0] is None
        for colour, shape in desc:
            assert (f"{colour} {shape}" if colour else f"a {shape}") in cap
    assert 0 < partial < len(b.captions) // 2  # some captions leave the colours out
    first = next(iter(stream))
    np.testing.assert_array_equal(first.images, stream.batch(0).images)
    # All classes, unseen included, appear in the pretraining stream.
    classes = set()
    for k in range(4):
        for cs in stream.batch(k).class_sets:
            classes |= cs
    assert classes == set(range(S.NUM_CLASSES))


def test_caption_matching():
    red_circle, blue_ring = ("red", "circle"), ("blue", "ring")
    assert S.caption_matches([red_circle, blue_ring], [(None, "ring"), ("red", "circle")])
    assert not S.caption_matches([red_circle], [("blue", "circle")])
    assert not S.caption_matches([red_circle, blue_ring], [(None, "circle")])
    assert S.caption_matches([], [])


def test_probe_set_balanced_and_prefix_stable():
    imgs, lbls = S.make_probe_set(40)
    assert imgs.shape == (40, 64, 64, 3)
    assert sorted(set(lbls.tolist())) == list(S.OBJECT_CLASS_IDS)
    imgs10, lbls10 = S.make_probe_set(10)
    np.testing.assert_array_equal(imgs[:10], imgs10)
    np.testing.assert_array_equal(lbls[:10], lbls10)
