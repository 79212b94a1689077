import pytest

from videoclf.data.splits import (
    DatasetError,
    Video,
    find_root,
    parse_members,
    read_groups_csv,
    select_classes,
    split_videos,
    unsafe_member,
)


def _videos(names, layout="auto"):
    listing = parse_members(names, layout)
    return listing.videos, listing.refused


def _archive(classes=("B", "A", "C"), groups=8, clips=4):
    return [f"UCF101/v_{c}_g{g:02d}_c{k:02d}.avi" for c in classes
            for g in range(1, groups + 1) for k in range(1, clips + 1)]


def test_every_video_is_kept_whatever_the_case_and_container():
    # The tutorial's remove-while-iterating filter dropped every other member.
    names = _archive(groups=2, clips=2) + ["UCF101/v_A_g09_c01.AVI", "UCF101/readme.txt",
                                           "UCF101/", "UCF101/v_A_g09_c02.mp4",
                                           "UCF101/v_A_g09_c03.WebM"]
    listing = parse_members(names)
    assert listing.layout == "ucf101" and listing.refused == []
    assert len(listing.videos) == 3 * 2 * 2 + 3
    v = next(v for v in listing.videos if v.member.endswith(".AVI"))
    assert (v.cls, v.group, v.clip, v.group_id) == ("A", "g09", 1, "A_g09")


@pytest.mark.parametrize("name", ["../v_A_g01_c01.avi", "/etc/v_A_g01_c01.avi",
                                  "UCF101/../../v_A_g01_c01.avi", "C:/x/v_A_g01_c01.avi",
                                  "UCF101\\..\\v_A_g01_c01.avi"])
def test_unsafe_members_are_refused(name):
    assert unsafe_member(name)
    videos, refused = _videos([name])
    assert videos == [] and refused[0]["member"] == name and "unsafe" in refused[0]["reason"]


def test_odd_names_are_reported():
    videos, refused = _videos(_archive(groups=1, clips=2) + ["UCF101/holiday.avi"])
    assert len(videos) == 6 and "v_<Class>" in refused[0]["reason"]
    videos, refused = _videos(["UCF101/holiday.avi"], "ucf101")
    assert videos == [] and "v_<Class>" in refused[0]["reason"]


def test_classes_are_the_first_n_sorted():
    videos, _ = _videos(_archive())
    assert select_classes(videos, 2) == ["A", "B"]
    with pytest.raises(DatasetError, match="data.num_classes"):
        select_classes(videos, 4)


@pytest.mark.parametrize("split_by", ["group", "file"])
def test_counts_and_determinism(split_by):
    videos, _ = _videos(_archive())
    per = {"train": 12, "val": 4, "test": 4}
    a = split_videos(videos, ["A", "B"], per, split_by, seed=1)
    b = split_videos(list(reversed(videos)), ["A", "B"], per, split_by, seed=1)
    assert a == b  # independent of listing order
    for s, n in per.items():
        assert len(a[s]) == 2 * n
    c = split_videos(videos, ["A", "B"], per, split_by, seed=2)
    assert a != c


def test_group_split_never_leaks_a_group():
    videos, _ = _videos(_archive(groups=12, clips=5))
    out = split_videos(videos, ["A", "B", "C"], {"train": 20, "val": 7, "test": 7}, "group", 0)
    where = {}
    for s, vids in out.items():
        for v in vids:
            where.setdefault(v.group_id, set()).add(s)
    assert all(len(s) == 1 for s in where.values())


def test_file_split_does_leak_groups():
    # The reason the default is "group": with 4 clips a group, a per-file split mixes them.
    videos, _ = _videos(_archive(groups=12, clips=4))
    out = split_videos(videos, ["A"], {"train": 30, "val": 8, "test": 8}, "file", 0)
    train = {v.group for v in out["train"]}
    assert train & {v.group for v in out["test"]}


def test_short_class_is_split_in_proportion(caplog):
    # The case: targets 40/10/10, a class of 51 clips in 26 groups.
    names = [f"Jump/g{g:02d}/clip{k}.mp4" for g in range(26) for k in range(2)][:51]
    names += [f"Run/x{k}.mp4" for k in range(80)]
    groups = {n: n.split("/")[1] for n in names if n.startswith("Jump")}
    videos = parse_members(names, "folders", groups).videos
    out = split_videos(videos, ["Jump", "Run"], {"train": 40, "val": 10, "test": 10}, "group", 0)
    jump = {s: [v for v in out[s] if v.cls == "Jump"] for s in out}
    assert sum(len(v) for v in jump.values()) == 51  # whole groups, nothing dropped
    for s, want in (("train", 34), ("val", 8.5), ("test", 8.5)):
        assert abs(len(jump[s]) - want) <= 2, (s, len(jump[s]))
    where = {}
    for s, vids in jump.items():
        for v in vids:
            where.setdefault(v.group, set()).add(s)
    assert all(len(x) == 1 for x in where.values())
    assert [len(out[s]) - len(jump[s]) for s in ("train", "val", "test")] == [40, 10, 10]
    assert caplog.text.count("class Jump has 51 clips in 26 groups") == 1
    assert "Run" not in caplog.text


def test_three_groups_give_three_splits_and_two_do_not():
    for split_by in ("group", "file"):
        videos, _ = _videos(_archive(groups=3, clips=4))
        out = split_videos(videos, ["A"], {"train": 30, "val": 10, "test": 10}, split_by, 0)
        assert all(len(out[s]) > 0 for s in out)
    two, _ = _videos(_archive(groups=2, clips=4))
    with pytest.raises(DatasetError, match="class A has 8 clips in 2 groups.*split\\(s\\) test"):
        split_videos(two, ["A"], {"train": 8, "val": 4, "test": 4}, "group", 0)


def test_video_names():
    v = Video("UCF101/v_Archery_g08_c01.avi", "Archery", "g08", 1)
    assert v.filename == "v_Archery_g08_c01.avi" and v.group_id == "Archery_g08"


def test_class_folders_layout_root_and_groups():
    names = ["data/Jump/a/one.MP4", "data/Jump/b/one.MP4", "data/Jump/x_g03_c02.mkv",
             "data/Run/two.webm", "data/Run/sub/three.MOV", "data/groups.csv", "data/stray.mp4",
             "__MACOSX/data/Run/._two.webm", "data/Run/.hidden.mp4", "data/Run/notes.txt"]
    assert find_root([n for n in names if n.endswith(("4", "v", "m", "V"))]) in ("data", "")
    listing = parse_members(names, groups={"Jump/a/one.MP4": "actor1", "Jump/b/one.MP4": "actor1"})
    assert listing.layout == "folders" and listing.root == "data"
    by = {v.member: v for v in listing.videos}
    assert set(by) == {"data/Jump/a/one.MP4", "data/Jump/b/one.MP4", "data/Jump/x_g03_c02.mkv",
                       "data/Run/two.webm", "data/Run/sub/three.MOV"}
    assert by["data/Jump/a/one.MP4"].group_id == by["data/Jump/b/one.MP4"].group_id == "Jump_actor1"
    assert by["data/Jump/a/one.MP4"].filename == "a/one.MP4"  # same file names never collide
    assert (by["data/Jump/x_g03_c02.mkv"].group, by["data/Jump/x_g03_c02.mkv"].clip) == ("g03", 2)
    assert by["data/Run/two.webm"].group_from == "none"
    assert listing.grouped_by == {"name": 1, "groups.csv": 2, "none": 2}
    assert listing.refused == [{"member": "data/stray.mp4", "reason": "not inside a class folder"}]
    # Class folders straight at the top, and a single top folder above them.
    assert parse_members(["A/x.mp4", "B/y.mp4"]).root == ""
    assert {v.cls for v in parse_members(["top/A/x.mp4", "top/B/y.mp4"]).videos} == {"A", "B"}


def test_groups_csv_is_checked():
    assert read_groups_csv("video,group\nJump/a.mp4,7\n\n") == {"Jump/a.mp4": "7"}
    with pytest.raises(DatasetError, match="header"):
        read_groups_csv("file,actor\nJump/a.mp4,7\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_groups_csv("video,group\nJump/a.mp4\n")


def test_enough_clips_in_few_large_groups_give_every_split_a_group():
    """60 clips in 3 groups of 20 against 30/10/10: each split gets one whole group (train
    once took two, and test none)."""
    videos, _ = _videos(_archive(classes=("A",), groups=3, clips=20))
    for seed in range(5):
        out = split_videos(videos, ["A"], {"train": 30, "val": 10, "test": 10}, "group", seed)
        groups = {s: {v.group for v in out[s]} for s in out}
        assert all(len(g) == 1 for g in groups.values()), groups
        assert len(set.union(*groups.values())) == 3
        assert [len(out[s]) for s in ("train", "val", "test")] == [20, 10, 10]
    # Many groups: the fill is as it always was (train takes what it needs first).
    many, _ = _videos(_archive(groups=25, clips=5))
    out = split_videos(many, ["A"], {"train": 30, "val": 10, "test": 10}, "group", 0)
    assert [len(out[s]) for s in ("train", "val", "test")] == [30, 10, 10]


def test_a_member_named_with_backslashes_is_stored_by_its_file_name():
    v = Video("UCF101\\Archery\\v_Archery_g08_c01.avi", "Archery", "g08", 1)
    assert v.filename == "v_Archery_g08_c01.avi"
    videos, _ = _videos(["UCF101\\v_Archery_g08_c01.avi", "UCF101\\v_Archery_g09_c01.avi"])
    assert {v.filename for v in videos} == {"v_Archery_g08_c01.avi", "v_Archery_g09_c01.avi"}


def test_a_groups_csv_csv_cannot_parse_is_one_line():
    big = "video,group\nJump/a.mp4," + "x" * (200 * 1024) + "\n"  # over csv's field limit
    with pytest.raises(DatasetError, match=r"groups.csv: line \d+: not CSV"):
        read_groups_csv(big)


def _uneven():
    """A: 400 videos in 40 groups, B: 60 in 6, C: 12 in 3 (UCF101 names)."""
    names = []
    for cls, groups, clips in (("A", 40, 10), ("B", 6, 10), ("C", 3, 4)):
        names += [f"UCF101/v_{cls}_g{g:02d}_c{c:02d}.avi" for g in range(1, groups + 1)
                  for c in range(1, clips + 1)]
    return _videos(names)[0]


@pytest.mark.parametrize("per_class", [{"train": 0.7, "val": 0.15, "test": 0.15},
                                       {"train": "all", "val": 0.15, "test": 0.15}])
def test_fractions_use_every_video_in_whole_groups(per_class):
    videos = _uneven()
    out = split_videos(videos, ["A", "B", "C"], per_class, "group", 3)
    assert out == split_videos(list(reversed(videos)), ["A", "B", "C"], per_class, "group", 3)
    assert sorted(v.member for s in out.values() for v in s) == sorted(v.member for v in videos)
    for cls, n in (("A", 400), ("B", 60), ("C", 12)):
        got = {s: [v for v in out[s] if v.cls == cls] for s in out}
        groups = [{v.group for v in got[s]} for s in ("train", "val", "test")]
        assert all(groups) and not (groups[0] & groups[1] or groups[0] & groups[2]
                                    or groups[1] & groups[2])
        if cls != "C":  # whole groups of 10: the shares are met within one group
            assert abs(len(got["val"]) - 0.15 * n) <= 10 and abs(len(got["test"]) - 0.15 * n) <= 10


def test_fractions_that_add_up_to_less_leave_the_rest_out_and_a_cap_keeps_whole_groups():
    videos = _uneven()
    out = split_videos(videos, ["A", "B"], {"train": 0.5, "val": 0.1, "test": 0.1}, "group", 0)
    a = [v for s in out.values() for v in s if v.cls == "A"]
    assert 260 <= len(a) <= 300  # 70% of 400, whole groups of 10
    capped = split_videos(videos, ["A", "B"], {"train": "all", "val": 0.2, "test": 0.2},
                          "group", 0, max_per_class=100)
    per = {c: [v for s in capped.values() for v in s if v.cls == c] for c in ("A", "B")}
    assert len(per["A"]) == 100 and len({v.group for v in per["A"]}) == 10
    assert len(per["B"]) == 60  # under the cap: all of it


def test_classes_by_name_with_the_nearest_names_for_a_typo():
    videos = _videos(_archive(classes=("Basketball", "Diving", "PlayingGuitar", "Rowing")))[0]
    assert select_classes(videos, 0, ["PlayingGuitar", "Basketball"]) == [
        "Basketball", "PlayingGuitar"]
    assert select_classes(videos, 0) == ["Basketball", "Diving", "PlayingGuitar", "Rowing"]
    with pytest.raises(DatasetError, match="no class 'Divng' in the source .*nearest: Diving"):
        select_classes(videos, 0, ["Divng"])


def test_more_than_101_classes():
    names = [f"UCF101/v_C{i:03d}_g{g:02d}_c01.avi" for i in range(150) for g in range(1, 4)]
    videos = _videos(names)[0]
    classes = select_classes(videos, 0)
    assert len(classes) == 150
    out = split_videos(videos, classes, {"train": 1, "val": 1, "test": 1}, "group", 0)
    assert all(len(out[s]) == 150 for s in out)


def test_fractions_round_by_largest_remainder_not_against_train():
    """0.6/0.2/0.2 of one-video groups: 12 -> 7/3/2 (was 6/3/3), 32 -> 19/7/6 (was 18/7/7);
    three groups of 10 still give one group to each split."""
    share = {"train": 0.6, "val": 0.2, "test": 0.2}
    for groups, want in ((12, [7, 3, 2]), (32, [19, 7, 6]), (5, [3, 1, 1])):
        videos = _videos([f"UCF101/v_A_g{g:02d}_c01.avi" for g in range(1, groups + 1)])[0]
        out = split_videos(videos, ["A"], share, "group", 0)
        assert [len(out[s]) for s in ("train", "val", "test")] == want, groups
    videos = _videos(_archive(classes=("A",), groups=3, clips=10))[0]
    out = split_videos(videos, ["A"], share, "group", 0)
    assert [len({v.group for v in out[s]}) for s in ("train", "val", "test")] == [1, 1, 1]

