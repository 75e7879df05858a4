"""decide_setting: one test per CONTRACT setting, plus the precedence between them."""

from __future__ import annotations

from rules_builders import state

from cds_service.clinical.setting import decide_setting


def test_not_relapsed_on_first_line():
    assert decide_setting(state(lines=1, relapsed=False, on_first_line=True, exposed=("lenalidomide",))) == "not-relapsed"


def test_insufficient_data_flag_wins():
    assert decide_setting(state(lines=1, insufficient_data=True, refractory=("lenalidomide",))) == "insufficient-data"


def test_myeloma_without_any_history_is_insufficient_not_a_guess():
    assert decide_setting(state(lines=0, relapsed=False)) == "insufficient-data"
    assert decide_setting(state(lines=0, relapsed=True)) == "insufficient-data"


def test_first_relapse_len_sensitive():
    s = state(lines=1, exposed=("bortezomib", "lenalidomide"))
    assert decide_setting(s) == "first-relapse-len-sensitive"


def test_first_relapse_len_refractory_imwg():
    assert decide_setting(state(lines=1, refractory=("lenalidomide",))) == "first-relapse-len-refractory"


def test_first_relapse_len_refractory_on_maintenance_or_recent_exposure():
    s = state(lines=1, exposed=("lenalidomide",), progressed_on_len_maintenance=True)
    assert decide_setting(s) == "first-relapse-len-refractory"
    s = state(lines=1, exposed=("lenalidomide",), len_recent_exposure=True)
    assert decide_setting(s) == "first-relapse-len-refractory"


def test_first_relapse_after_anti_cd38_beats_len_refractory():
    s = state(lines=1, refractory=("lenalidomide", "daratumumab"))
    assert decide_setting(s) == "first-relapse-after-anti-cd38"
    s = state(lines=1, refractory=("daratumumab",), exposed=("bortezomib", "melphalan"))
    assert decide_setting(s) == "first-relapse-after-anti-cd38"


def test_anti_cd38_exposed_not_refractory_stays_in_a_or_b():
    s = state(lines=1, exposed=("daratumumab", "bortezomib"))
    assert decide_setting(s) == "first-relapse-len-sensitive"


def test_later_relapse():
    assert decide_setting(state(lines=2, refractory=("lenalidomide",))) == "later-relapse"
    assert decide_setting(state(lines=3, refractory=("lenalidomide", "bortezomib"))) == "later-relapse"


def test_triple_class_refractory_beats_line_count():
    s = state(lines=3, refractory=("lenalidomide", "bortezomib", "daratumumab"))
    assert decide_setting(s) == "triple-class-refractory"
    s = state(lines=1, refractory=("lenalidomide", "bortezomib", "daratumumab"))
    assert decide_setting(s) == "triple-class-refractory"


def test_class_level_flags_alone_are_enough_for_tcr():
    s = state(lines=3)
    s.classes = {"IMiD": "refractory", "PI": "refractory", "anti-CD38": "refractory"}
    assert decide_setting(s) == "triple-class-refractory"
