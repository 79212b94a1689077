import pytest

from videoclf.dataset import (DatasetError, Video, parse_members, select_classes, split_videos,
                              unsafe_member)


def _archive(classes=("B", "A", "C"), groups=8, clips=4):
    return [f"UCF101/v_{c}_g{g:02d}_c{k:02d}.avi" for c in classes
            for g in range(1, groups + 1) for k in range(1, clips + 1)]


def test_every_avi_is_kept_whatever_the_case():
    # The tutorial's remove-while-iterating filter dropped every other member.
    names = _archive(groups=2, clips=2) + ["UCF101/v_A_g09_c01.AVI", "UCF101/readme.txt",
                                           "UCF101/", "UCF101/v_A_g09_c02.mp4"]
    videos, refused = parse_members(names)
    assert len(videos) == 3 * 2 * 2 + 1
    assert refused == []
    v = next(v for v in videos if v.member.endswith(".AVI"))
    assert (v.cls, v.group, v.clip) == ("A", 9, 1)


@pytest.mark.parametrize("name", ["../v_A_g01_c01.avi", "/etc/v_A_g01_c01.avi",
                                  "UCF101/../../v_A_g01_c01.avi", "C:/x/v_A_g01_c01.avi",
                                  "UCF101\\..\\v_A_g01_c01.avi"])
def test_unsafe_members_are_refused(name):
    assert unsafe_member(name)
    videos, refused = parse_members([name])
    assert videos == [] and refused[0]["member"] == name and "unsafe" in refused[0]["reason"]


def test_odd_names_are_reported():
    videos, refused = parse_members(["UCF101/holiday.avi"])
    assert videos == [] and "v_<Class>" in refused[0]["reason"]


def test_classes_are_the_first_n_sorted():
    videos, _ = parse_members(_archive())
    assert select_classes(videos, 2) == ["A", "B"]
    with pytest.raises(DatasetError, match="data.num_classes"):
        select_classes(videos, 4)


@pytest.mark.parametrize("split_by", ["group", "file"])
def test_counts_and_determinism(split_by):
    videos, _ = parse_members(_archive())
    per = {"train": 12, "val": 4, "test": 4}
    a = split_videos(videos, ["A", "B"], per, split_by, seed=1)
    b = split_videos(list(reversed(videos)), ["A", "B"], per, split_by, seed=1)
    assert a == b  # independent of listing order
    for s, n in per.items():
        assert len(a[s]) == 2 * n
    c = split_videos(videos, ["A", "B"], per, split_by, seed=2)
    assert a != c


def test_group_split_never_leaks_a_group():
    videos, _ = parse_members(_archive(groups=12, clips=5))
    out = split_videos(videos, ["A", "B", "C"], {"train": 20, "val": 7, "test": 7}, "group", 0)
    where = {}
    for s, vids in out.items():
        for v in vids:
            where.setdefault(v.group_id, set()).add(s)
    assert all(len(s) == 1 for s in where.values())


def test_file_split_does_leak_groups():
    # The reason the default is "group": with 4 clips a group, a per-file split mixes them.
    videos, _ = parse_members(_archive(groups=12, clips=4))
    out = split_videos(videos, ["A"], {"train": 30, "val": 8, "test": 8}, "file", 0)
    train = {v.group for v in out["train"]}
    assert train & {v.group for v in out["test"]}


def test_short_class_warns_then_errors(caplog):
    videos, _ = parse_members(_archive(groups=4, clips=4))  # 16 clips in 4 groups a class
    out = split_videos(videos, ["A"], {"train": 8, "val": 4, "test": 6}, "group", 0)
    assert [len(out[s]) for s in ("train", "val", "test")] == [8, 4, 4]
    assert "fewer clips than asked: test 4/6" in caplog.text
    three_groups, _ = parse_members(_archive(groups=3, clips=4))
    with pytest.raises(DatasetError, match="class A .* split\\(s\\) test"):
        split_videos(three_groups, ["A"], {"train": 8, "val": 4, "test": 4}, "group", 0)


def test_video_names():
    v = Video("UCF101/v_Archery_g08_c01.avi", "Archery", 8, 1)
    assert v.filename == "v_Archery_g08_c01.avi" and v.group_id == "Archery_g08"
