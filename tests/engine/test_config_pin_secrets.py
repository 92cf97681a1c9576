"""A pinned configuration keeps no secret, and gets every literal one back from the file."""

from __future__ import annotations

from hotfix_fsm.config import SECRET_FIELDS, Config, config_from_pin, pin_config


def test_every_literal_secret_is_left_out_of_the_pin_and_read_back() -> None:
    config = Config()
    literal = {}
    for i, (section, key, _env) in enumerate(SECRET_FIELDS):
        value = f"literal-secret-{i}-" + "x" * 24
        setattr(getattr(config, section), key, value)
        literal[(section, key)] = value
    pin = pin_config(config)
    for (section, key), value in literal.items():
        assert pin["values"][section][key] == "", (section, key)
        assert value not in repr(pin)
    assert sorted(pin["literal_secrets"]) == sorted(f"{s}.{k}" for s, k in literal)
    back = config_from_pin(pin, secrets_from=config)
    for (section, key), value in literal.items():
        assert getattr(getattr(back, section), key) == value, (section, key)
    assert sorted(back.secrets()) == sorted(literal.values())
