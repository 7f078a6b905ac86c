"""Random and hostile YAML at the configuration loader: a ConfigError or a Config, nothing else.

Two kinds of input: arbitrary text (broken syntax, tabs, anchors, tags, huge
numbers) and well-formed YAML of random structure around a valid file, so
that the validator's deeper paths (devices, access, limits) meet wrong types
too.  Alias bombs ("billion laughs") must be refused, not expanded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubd.core.config import Config, load_config
from hubd.errors import ConfigError

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SNIPPETS = [
    "xmpp:", "  jid: hub@example.org", "  password_file: pw", "  password: x", "access:",
    "  owners: [alice@example.org]", "  readers: ['*@x']", "devices:", "  - id: a",
    "    driver: gpio.output", "    pin: 17", "    access: {readers: [b@c]}", "limits:",
    "  burst: -1", "  requests_per_minute: 1e999", "&a [1,2]", "*a", "!!python/object:os.system",
    "!!binary AAAA", "? [a, b]", "- - - -", "\t", "{", "]", "'", '"', "%YAML 1.2", "---", "...",
    "key: &x {a: *x}", "0x1F: 0o17", "<<: *a", "~: ~",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["hub@example.org", "gpio.output", "mock", "*@x", "a@b/c"]),
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["xmpp", "access", "devices", "limits", "gpio", "ble", "events", "metrics", "state_dir"]


def _load(text: str) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pw").write_text("secret\n")
        path = Path(folder) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_config(path, environ={})
        except ConfigError as err:
            error = err
    assert error.problems
    assert all(str(p) for p in error.problems)
    return error


@FUZZ
@given(st.lists(st.sampled_from(SNIPPETS) | st.text(max_size=20), max_size=20).map("\n".join))
def test_arbitrary_text_is_a_config_or_located_problems(text: str) -> None:
    result = _load(text)
    if isinstance(result, Config):
        assert "secret" not in repr(result)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_wrong_types_anywhere_are_problems_not_crashes(overrides: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "xmpp": {"jid": "hub@example.org", "password_file": "pw"},
        "gpio": {"pin_factory": "mock"},
        "devices": [{"id": "a", "driver": "gpio.output", "pin": 17}],
    }
    base.update(overrides)
    _load(yaml.safe_dump(base, allow_unicode=True))


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 12):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    result = _load("\n".join(lines) + "\n")
    assert isinstance(result, ConfigError)


def test_deep_nesting_and_recursive_aliases_are_refused() -> None:
    for text in (
        "a: " + "[" * 5000 + "]" * 5000,
        "a: &x [1, *x]\n",
        "a: " + "{b: " * 200 + "1" + "}" * 200,
    ):
        result = _load(text)
        assert isinstance(result, ConfigError), text[:40]
        assert "nested" in str(result.problems[0]) or "syntax" in str(result.problems[0])
