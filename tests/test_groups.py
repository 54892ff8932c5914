"""Group rules (``pixelwise.data.groups``): frames of one video stay on one side of a split.

Pure Python, no TensorFlow: rules are parsed from a regular expression or a real CSV file in
``tmp_path``, and the seeded choice of validation groups is checked against an independent
ranking (SHA-256 of ``"<seed>:<group>"``) written here.
"""

from __future__ import annotations

import hashlib

import pytest

from pixelwise.data.groups import (
    GroupRule, group_overlap, hold_out, validation_groups, validation_share,
)

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


# -- validation_groups ------------------------------------------------------------------------

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


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_validation_groups_are_whole_groups_near_the_fraction(seed, fraction):
    group_of = {name: _video(name) for name in FRAMES}
    chosen = validation_groups(group_of, fraction, seed)
    assert chosen == _independent_choice(group_of, fraction, seed)
    chosen_groups = {group_of[k] for k in chosen}
    for group in set(group_of.values()):  # whole: all of a group's frames, or none
        members = {k for k, g in group_of.items() if g == group}
        assert members <= chosen or not members & chosen, group
    assert 0 < len(chosen_groups) < 5
    target = round(len(FRAMES) * fraction)
    largest_chosen = max(sum(1 for g in group_of.values() if g == c) for c in chosen_groups)
    assert target <= len(chosen) < target + largest_chosen
    assert validation_groups(group_of, fraction, seed) == chosen  # deterministic


def test_validation_groups_depend_on_the_seed_and_never_take_all():
    group_of = {name: _video(name) for name in FRAMES}
    choices = {frozenset(validation_groups(group_of, 0.2, seed)) for seed in range(10)}
    assert len(choices) > 1
    # A fraction near 1 still leaves one whole group for training.
    nearly_all = validation_groups(group_of, 0.99, seed=0)
    assert len({_video(k) for k in nearly_all}) == 4
    assert validation_groups(group_of, 0.0, seed=0) == set()
    assert validation_groups({k: "one" for k in FRAMES}, 0.2, seed=0) == set()


@pytest.mark.parametrize("seed", range(4))
def test_a_runs_validation_share_is_the_folder_exports_choice(seed):
    """A run without a validation split chooses as a folder export's build does: by key
    without a rule, whole groups with one."""
    from pixelwise.datasets.folder.layouts import validation_keys

    assert validation_share(FRAMES, 0.2, seed) == validation_keys(FRAMES, 0.2, seed)
    rule = GroupRule.parse(r"^(vid.)_")
    group_of = {name: _video(name) for name in FRAMES}
    assert validation_share(FRAMES, 0.2, seed, rule) == _independent_choice(group_of, 0.2, seed)
    assert validation_share(FRAMES[:1], 0.2, seed) == set()  # one example: nothing to hold out


# -- hold_out and group_overlap ---------------------------------------------------------------

def test_hold_out_moves_whole_groups_in_file_order():
    rule = GroupRule.parse(r"^(.+?)_")
    train, validation = hold_out(rule, FRAMES, ["vidC", "vidA"])
    assert validation == [n for n in FRAMES if _video(n) in ("vidA", "vidC")]
    assert train == [n for n in FRAMES if _video(n) not in ("vidA", "vidC")]


def test_hold_out_errors_name_the_groups():
    rule = GroupRule.parse(r"^(.+?)_")
    with pytest.raises(ValueError, match=r"vidA, vidB, vidC, vidD, vidE; received vidZ"):
        hold_out(rule, FRAMES, ["vidZ"])
    with pytest.raises(ValueError, match="hold every example of the training split"):
        hold_out(rule, FRAMES, ["vidA", "vidB", "vidC", "vidD", "vidE"])
    with pytest.raises(ValueError, match="matches none"):
        hold_out(GroupRule.parse("^cam"), FRAMES, ["cam"])


def test_group_overlap_counts_both_sides():
    rule = GroupRule.parse(r"^(.+?)_")
    train = [n for n in FRAMES if _video(n) != "vidE"] + ["vidE_9999.png"]
    validation = [n for n in FRAMES if _video(n) in ("vidD", "vidE")]
    assert group_overlap(rule, train, validation) == {"vidD": (6, 6), "vidE": (1, 7)}
    assert group_overlap(rule, [n for n in FRAMES if _video(n) != "vidE"],
                         [n for n in FRAMES if _video(n) == "vidE"]) == {}
