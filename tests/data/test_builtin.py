import hashlib
from pathlib import Path

import cv2
import numpy as np

from videoclf.data.builtin import generator, styles


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_listing_is_ucf101_shaped():
    names = generator.member_names(42)
    assert len(styles.CLASSES) == 10 and list(styles.CLASSES) == sorted(styles.CLASSES)
    groups = {n.split("_")[2] for n in names}
    assert groups == {f"g{g:02d}" for g in range(1, 26)}
    per_group = {}
    for n in names:
        key = tuple(n.split("_")[1:3])
        per_group[key] = per_group.get(key, 0) + 1
    assert min(per_group.values()) >= 4 and max(per_group.values()) <= 7
    assert generator.member_names(42) == names and generator.member_names(7) != names


def test_clip_is_real_xvid_and_deterministic(tmp_path):
    name = "UCF101/v_PanUp_g03_c02.avi"
    a, b = tmp_path / "a.avi", tmp_path / "b.avi"
    generator.write_clip(name, 42, a)
    generator.write_clip(name, 42, b)
    assert _md5(a) == _md5(b)
    cap = cv2.VideoCapture(str(a))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    assert size == (320, 240)
    assert cap.get(cv2.CAP_PROP_FPS) == 25
    assert 6 * 25 <= n <= 10 * 25
    assert fourcc in ("XVID", "FMP4", "xvid")  # FFmpeg's MPEG-4 Part 2 writer tags XVID as FMP4
    ok, frame = cap.read()
    assert ok and frame.shape == (240, 320, 3)


def test_group_shares_a_scene_and_groups_differ():
    still = lambda g, c: generator.render_clip(f"UCF101/v_Still_g{g:02d}_c{c:02d}.avi", 42)[0]
    same_scene = [generator._scene(42, "Still", 1), generator._scene(42, "Still", 1)]
    assert np.array_equal(*same_scene)
    assert not np.array_equal(generator._scene(42, "Still", 1), generator._scene(42, "Still", 2))
    # Clips of one group show one scene through different cameras: not identical frames.
    assert not np.array_equal(still(1, 1), still(1, 2))


def test_classes_differ_by_motion_not_by_frame_statistics():
    """Frame-level brightness overlaps across classes; frame-to-frame change separates them."""
    mean, change = {}, {}
    for cls in styles.CLASSES:
        clips = [generator.render_clip(f"UCF101/v_{cls}_g{g:02d}_c01.avi", 42)[:40:5]
                 for g in (1, 2, 3)]
        frames = np.concatenate(clips).astype(np.float32)
        mean[cls] = frames.mean()
        change[cls] = np.mean([np.abs(np.diff(c.astype(np.float32), axis=0)).mean()
                               for c in clips])
    overall = np.mean(list(mean.values()))
    assert all(0.7 * overall < m < 1.3 * overall for m in mean.values()), mean
    assert change["Still"] < 1.0
    for cls in styles.CLASSES:
        if cls != "Still":
            assert change[cls] > 3 * change["Still"] + 1, (cls, change)


def _dx(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift of the content from frame a to frame b (phase correlation)."""
    g = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float64) for f in (a, b)]
    (dx, _), _ = cv2.phaseCorrelate(g[0], g[1])
    return dx


def test_every_style_lists_ten_classes_and_names_its_mirror_pairs():
    for style, classes in styles.STYLES.items():
        assert len(classes) == 10 and list(classes) == sorted(classes), style
        names = generator.member_names(42, style)
        assert {n.split("_")[1] for n in names} == set(classes)
        for a, b in styles.MIRROR_PAIRS[style]:
            assert a in classes and b in classes
    assert styles.MIRROR_PAIRS["scene"] == []  # today's set is flip-invariant
    assert generator.member_names(42, "scene") == generator.member_names(42)


def test_new_styles_are_deterministic_bytes(tmp_path):
    for style, name in (("camera", "UCF101/v_PanLeft_g02_c01.avi"),
                        ("object", "UCF101/v_SpinCW_g05_c02.avi")):
        a, b = tmp_path / f"{style}-a.avi", tmp_path / f"{style}-b.avi"
        generator.write_clip(name, 42, a, style)
        generator.write_clip(name, 42, b, style)
        assert _md5(a) == _md5(b), style


def test_camera_style_is_slow_and_pan_left_mirrors_into_pan_right():
    """About 1 px per frame, and the flip turns one class's motion into its pair's."""
    left = generator.render_clip("UCF101/v_PanLeft_g01_c01.avi", 42, "camera")
    right = generator.render_clip("UCF101/v_PanRight_g01_c01.avi", 42, "camera")
    d_left, d_right = _dx(left[0], left[20]), _dx(right[0], right[20])
    assert -30 < d_left < -10 and 10 < d_right < 30, (d_left, d_right)
    mirrored = left[:, :, ::-1]
    assert _dx(mirrored[0], mirrored[20]) > 10  # a mirrored PanLeft moves as PanRight does


def test_object_style_moves_a_small_thing_in_a_still_scene():
    clip = generator.render_clip("UCF101/v_MoveRight_g04_c01.avi", 42, "object")
    change = np.abs(clip[30].astype(int) - clip[0].astype(int)).max(axis=2) > 30
    assert 0 < change.mean() < 0.05  # the actor and the distractor, not the scene
    hover = generator.render_clip("UCF101/v_Hover_g04_c01.avi", 42, "object")
    same_group = generator.render_clip("UCF101/v_Hover_g04_c02.avi", 42, "object")
    assert not np.array_equal(hover[0], same_group[0])  # another camera on the group's scene


def _context(cls: str, group: int, clip: int = 1) -> np.ndarray:
    return generator.render_clip(f"UCF101/v_{cls}_g{group:02d}_c{clip:02d}.avi", 42, "context")


def test_context_style_is_scene_and_motion_pairs_and_deterministic_bytes(tmp_path):
    from videoclf.data.builtin import context

    # Every scene kind with every motion: a class shares its scene with one class and its
    # motion with four.
    assert {context.split_class(c) for c in styles.CONTEXT_CLASSES} == {
        (s, m) for s in context.SCENES for m in context.MOTIONS}
    a, b = tmp_path / "a.avi", tmp_path / "b.avi"
    for dest in (a, b):
        generator.write_clip("UCF101/v_PoolJump_g03_c02.avi", 42, dest, "context")
    assert _md5(a) == _md5(b)
    # Clips of a group are filmed in one place (the scene is the group's), groups in others.
    assert np.array_equal(context.scene(42, "PoolJump", 3, 320, 240),
                          context.scene(42, "PoolJump", 3, 320, 240))
    assert not np.array_equal(context.scene(42, "PoolJump", 3, 320, 240),
                              context.scene(42, "PoolJump", 4, 320, 240))
    c1, c2 = _context("PoolJump", 3, 1)[0], _context("PoolJump", 3, 2)[0]
    other = _context("PoolJump", 5, 1)[0]
    diff = lambda x, y: np.abs(x.astype(int) - y.astype(int)).mean()
    assert diff(c1, c2) < diff(c1, other)


def test_context_style_cameras_tripod_still_and_hand_held_moving():
    """Odd groups on a tripod: the scene does not move, only the actor; even groups
    hand-held: the whole view shifts."""
    for group, handheld in ((1, False), (2, True)):
        clip = _context("WallRun", group)
        changed = (np.abs(clip[40].astype(int) - clip[0].astype(int)).max(axis=2) > 40).mean()
        if handheld:
            assert changed > 0.10, changed     # the bricks' edges move everywhere
        else:
            assert 0 < changed < 0.05, changed  # the actor alone


def test_context_style_no_class_told_by_colour_alone():
    """A nearest-centroid classifier on a clip's mean colour, fitted on some groups and
    tried on others, stays near chance (0.1): the colours are drawn alike for every class."""
    def mean_colour(cls, g):
        return _context(cls, g)[::25].reshape(-1, 3).mean(axis=0)

    classes = styles.CONTEXT_CLASSES
    fit = {c: np.mean([mean_colour(c, g) for g in (1, 2, 3, 4)], axis=0) for c in classes}
    right = 0
    for c in classes:
        for g in (5, 6, 7):
            x = mean_colour(c, g)
            right += min(classes, key=lambda k: np.linalg.norm(fit[k] - x)) == c
    assert right / (3 * len(classes)) <= 0.3, right
