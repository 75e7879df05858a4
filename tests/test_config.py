from __future__ import annotations

from datetime import date

import pytest

from cds_service.config import ConfigError, load_settings


def test_environment_and_mapping_merge_mapping_wins():
    env = {"MMCDS_AUTH_MODE": "jwt", "MMCDS_CAR_T_AVAILABLE": "false", "MMCDS_UNAVAILABLE_AGENTS": "selinexor, belantamab-mafodotin"}
    s = load_settings({"AUTH_MODE": "none"}, environ=env)
    assert s.auth_mode == "none"
    assert s.car_t_available is False
    assert s.unavailable_agents == ["selinexor", "belantamab-mafodotin"]


def test_json_values_and_defaults():
    s = load_settings({"TRUSTED_ISSUERS": '{"https://sandbox.cds-hooks.org": "file:///k.json"}',
                       "AUD_ALIASES": '["https://a/x"]', "AS_OF_DATE": "2026-01-02"}, environ={})
    assert s.trusted_issuers == {"https://sandbox.cds-hooks.org": "file:///k.json"}
    assert s.aud_aliases == ["https://a/x"]
    assert s.as_of_date == date(2026, 1, 2)
    assert s.database_url.startswith("sqlite:///")
    assert s.car_t_available is True


@pytest.mark.parametrize("config", [{"AUTH_MODE": "maybe"}, {"TRUSTED_ISSUERS": "[1]"}, {"FHIR_TIMEOUT_S": "soon"},
                                    {"CAR_T_AVAILABLE": "perhaps"}, {"AS_OF_DATE": "yesterday"}])
def test_bad_values_fail_with_the_key_named(config):
    with pytest.raises(ConfigError) as exc:
        load_settings(config, environ={})
    assert next(iter(config)) in str(exc.value)
