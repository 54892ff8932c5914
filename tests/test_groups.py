"""Group rules (``pixelwise.data.groups``) and the split they keep whole
(``pixelwise.data.splits.plan_split``): frames of one video stay on one side of a split.

Pure Python, no TensorFlow: rules are parsed from a regular expression or a real CSV file in
``tmp_path``, and the seeded choice of validation groups is checked against an independent
ranking (SHA-256 of ``"<seed>:<group>"``) written here.
"""

from __future__ import annotations

import hashlib

import pytest

from pixelwise.data.groups import GroupOverlapWarning, GroupRule, group_overlap
from pixelwise.data.splits import SplitOptions, plan_split, warn_shared

#: Five videos of 3..7 frames each: 25 examples.
FRAMES = [f"vid{video}_{index:04d}.png"
          for video, count in zip("ABCDE", (3, 4, 5, 6, 7)) for index in range(count)]


def _video(name: str) -> str:
    return name.split("_")[0]


# -- parse and group_of -----------------------------------------------------------------------

def test_a_regex_rule_names_the_first_capture_group_or_the_whole_match():
    rule = GroupRule.parse(r"^(.+?)_")
    assert rule.table is None and rule.pattern.pattern == r"^(.+?)_"
    assert rule.group_of("vidA_0001.png") == "vidA"
    assert rule.group_of("day1/vidB_0002.png") == "day1/vidB"
    assert rule.group_of("nounderscore.png") is None
    whole = GroupRule.parse(r"vid[A-Z]")  # no capture group: the match itself
    assert whole.group_of("day1/vidC_0003.png") == "vidC"
    assert whole.group_of("img_0001.png") is None
    # re.search, not re.match: the rule may name the group anywhere in the name.
    assert GroupRule.parse(r"_(cam\d)_").group_of("site3_cam2_0007.png") == "cam2"


@pytest.mark.parametrize("spec", ["", "   ", None])
def test_an_empty_rule_says_what_a_rule_is(spec):
    with pytest.raises(ValueError, match="Expected a group rule: a regular expression"):
        GroupRule.parse(spec)


def test_a_bad_regex_names_the_rule_and_gives_an_example():
    with pytest.raises(ValueError, match=r"group rule '\^\(\.\+\?_' .* does not compile"
                                         r".*'\^\(\.\+\?\)_'"):
        GroupRule.parse("^(.+?_")


def test_a_csv_rule_matches_full_and_base_names(tmp_path):
    table = tmp_path / "groups.csv"
    table.write_text("Filename, Group\n"  # header case and spaces do not matter
                     "vidA_0001.png,walk\n"
                     "day2/vidB_0001.png,drive\n"
                     "blank.png,\n")
    rule = GroupRule.parse(str(table))
    assert rule.pattern is None and rule.spec == str(table)
    assert rule.group_of("vidA_0001.png") == "walk"
    assert rule.group_of("day1/vidA_0001.png") == "walk"  # a row's name is a stored base name
    assert rule.group_of("day2/vidB_0001.png") == "drive"
    assert rule.group_of("vidB_0001.png") == "drive"  # the row's base name
    assert rule.group_of("blank.png") is None  # a row without a group names none
    assert rule.group_of("other.png") is None


def test_a_csv_without_the_columns_or_rows_or_file_is_one_clear_error(tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("image,video\nvidA_0001.png,A\n")
    with pytest.raises(ValueError, match=r"columns filename and group, received columns "
                                         r"\['image', 'video'\]"):
        GroupRule.parse(str(wrong))
    empty = tmp_path / "empty.csv"
    empty.write_text("filename,group\n")
    with pytest.raises(ValueError, match="lists no filename,group rows"):
        GroupRule.parse(str(empty))
    with pytest.raises(FileNotFoundError, match="missing.csv' does not exist"):
        GroupRule.parse(str(tmp_path / "missing.csv"))


def test_unmatched_names_are_their_own_groups_and_a_rule_matching_none_is_an_error():
    rule = GroupRule.parse(r"^(vid.)_")
    grouped = rule.groups(["vidA_1.png", "odd.png", "vidA_2.png", "vidB_1.png"])
    assert grouped == {"vidA": ["vidA_1.png", "vidA_2.png"], "odd.png": ["odd.png"],
                       "vidB": ["vidB_1.png"]}
    assert rule.groups([]) == {}
    with pytest.raises(ValueError, match=r"group rule '\^\(vid\.\)_' matches none of the 2 file "
                                         r"names, e.g. 'img_1.png'"):
        rule.groups(["img_1.png", "img_2.png"])


# -- plan_split: a seeded share ----------------------------------------------------------------

def _independent_choice(group_of: dict[str, str], fraction: float, seed: int) -> set[str]:
    """Whole groups by SHA-256 rank until they hold round(n * fraction) keys; never all."""
    sizes: dict[str, int] = {}
    for group in group_of.values():
        sizes[group] = sizes.get(group, 0) + 1
    ranked = sorted(sizes, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    target, taken, held = max(1, round(len(group_of) * fraction)), set(), 0
    for group in ranked[:-1]:
        if held >= target:
            break
        taken.add(group)
        held += sizes[group]
    return {key for key, group in group_of.items() if group in taken}


def _share(keys, fraction, seed, rule=None, names=None) -> set[str]:
    return set(plan_split(keys, rule=rule, validation_fraction=fraction, seed=seed,
                          names=names).validation)


VIDEO = GroupRule.parse(r"^(vid.)_")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_a_share_is_whole_groups_near_the_fraction(seed, fraction):
    group_of = {name: _video(name) for name in FRAMES}
    chosen = _share(FRAMES, fraction, seed, VIDEO)
    assert chosen == _independent_choice(group_of, fraction, seed)
    chosen_groups = {group_of[k] for k in chosen}
    for group in set(group_of.values()):  # whole: all of a group's frames, or none
        members = {k for k, g in group_of.items() if g == group}
        assert members <= chosen or not members & chosen, group
    assert 0 < len(chosen_groups) < 5
    target = round(len(FRAMES) * fraction)
    largest_chosen = max(sum(1 for g in group_of.values() if g == c) for c in chosen_groups)
    assert target <= len(chosen) < target + largest_chosen
    assert _share(FRAMES, fraction, seed, VIDEO) == chosen  # deterministic


def test_a_share_depends_on_the_seed_and_never_takes_all():
    choices = {frozenset(_share(FRAMES, 0.2, seed, VIDEO)) for seed in range(10)}
    assert len(choices) > 1
    # A fraction near 1 still leaves one whole group for training.
    assert len({_video(k) for k in _share(FRAMES, 0.99, 0, VIDEO)}) == 4
    assert _share(FRAMES, 0.0, 0, VIDEO) == set()
    assert _share(FRAMES, 0.2, 0, GroupRule.parse("^vid")) == set()  # one group: no share


@pytest.mark.parametrize("seed", range(4))
def test_without_a_rule_each_key_is_a_group_of_its_own(seed):
    """What a folder export's build and a run's own share choose without groups: keys ranked by
    SHA-256 of ``"<seed>:<key>"``, the first round(n * fraction) (at least one, never all)."""
    ranked = sorted(FRAMES, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    assert _share(FRAMES, 0.2, seed) == set(ranked[:5])
    assert _share(FRAMES, 0.99, seed) == set(ranked[:-1])
    assert _share(FRAMES[:1], 0.2, seed) == set()  # one example: nothing to hold out
    # The choice of 0.1.0's folder exports, kept: adding files moves few keys.
    assert sorted(_share([f"img{i}" for i in range(10)], 0.2, 0)) == ["img6", "img9"]


def test_a_share_keeps_key_order_and_ranks_keys_but_groups_by_their_names():
    """A folder export's keys are stems; the rule reads the file names they are stored under."""
    stems = [name.removesuffix(".png") for name in FRAMES]
    names = {stem: f"day1/{stem}.png" for stem in stems}
    split = plan_split(stems, rule=GroupRule.parse(r"/(vid.)_"), validation_fraction=0.3,
                       seed=1, names=names)
    assert set(split.validation) == _independent_choice(
        {stem: _video(stem) for stem in stems}, 0.3, 1)
    assert split.train == [s for s in stems if s not in split.validation]
    assert split.validation == [s for s in stems if s in split.validation]
    # Without a rule the ranking is by key, not by the name it is stored under.
    assert _share(stems, 0.2, 3, names=names) == _share(stems, 0.2, 3)


# -- plan_split: held-out groups and a validation split of its own --------------------------------

def test_held_out_groups_move_whole_in_file_order():
    split = plan_split(FRAMES, rule=VIDEO, held_out_groups=["vidC", "vidA"])
    assert split.validation == [n for n in FRAMES if _video(n) in ("vidA", "vidC")]
    assert split.train == [n for n in FRAMES if _video(n) not in ("vidA", "vidC")]
    assert split.shared == {}


def test_held_out_group_errors_name_the_groups():
    rule = GroupRule.parse(r"^(.+?)_")
    with pytest.raises(ValueError, match=r"vidA, vidB, vidC, vidD, vidE; received vidZ"):
        plan_split(FRAMES, rule=rule, held_out_groups=["vidZ"])
    with pytest.raises(ValueError, match="hold every example of the training split"):
        plan_split(FRAMES, rule=rule, held_out_groups=["vidA", "vidB", "vidC", "vidD", "vidE"])
    with pytest.raises(ValueError, match="matches none"):
        plan_split(FRAMES, rule=GroupRule.parse("^cam"), held_out_groups=["cam"])
    with pytest.raises(ValueError, match="needs a group rule"):
        plan_split(FRAMES, held_out_groups=["vidA"])


def test_group_overlap_counts_both_sides():
    rule = GroupRule.parse(r"^(.+?)_")
    train = [n for n in FRAMES if _video(n) != "vidE"] + ["vidE_9999.png"]
    validation = [n for n in FRAMES if _video(n) in ("vidD", "vidE")]
    assert group_overlap(rule, train, validation) == {"vidD": (6, 6), "vidE": (1, 7)}
    assert group_overlap(rule, [n for n in FRAMES if _video(n) != "vidE"],
                         [n for n in FRAMES if _video(n) == "vidE"]) == {}


def test_a_validation_split_of_its_own_trains_on_every_key_and_reports_shared_groups():
    train = [n for n in FRAMES if _video(n) != "vidE"]
    validation = [n for n in FRAMES if _video(n) in ("vidD", "vidE")]
    split = plan_split(train, rule=VIDEO, validation=validation, validation_fraction=0.5)
    assert split.train == train and split.validation == validation  # no share on top
    assert split.shared == {"vidD": (6, 6)}
    assert plan_split(train, validation=validation).shared == {}  # no rule: nothing to compare
    with pytest.warns(GroupOverlapWarning, match=r"Validation split 'val' shares groups \(rule "
                                                 r"'\^\(vid\.\)_'\) with training split 'train': "
                                                 r"6 of its 13 examples .* vidD \(6 training, 6 "
                                                 r"validation\)"):
        warn_shared(split.shared, len(validation), "train", "val", VIDEO)


def test_split_options_take_a_configs_fields_and_ignore_the_others():
    options = SplitOptions.from_mapping({"dataset": "camvid", "epochs": 3, "data_dir": None,
                                         "validation_groups": ["0006R0"], "groups": "auto"})
    assert options == SplitOptions("camvid", validation_groups=("0006R0",))
    assert options.validates
    assert not SplitOptions("camvid", validation_split="none").validates
    assert SplitOptions.from_mapping({"dataset": "./exports/cells"}).dataset.endswith(
        "/exports/cells") and SplitOptions.from_mapping({"dataset": "./x"}).dataset.startswith("/")
