"""Parse the lines of a line-oriented serial device (``serial.lines``): pure text in, readings out.

Three formats, one line = one set of readings:

``json``
    A JSON object: ``{"temp": 21.50, "door": true, "state": "idle"}``. Nested objects are
    flattened, keys joined with ``_`` (``{"air": {"temp": 21}}`` gives ``air_temp``), at most
    four levels deep. Arrays, and lines that are not an object, are rejected: there is no
    stable field name for a list entry. ``null`` means "no value" and yields no reading.
    ``NaN``/``Infinity`` are rejected (they are not JSON).
``kv``
    ``key=value`` pairs separated by whitespace, commas or semicolons:
    ``t=21.5 rh=40, door=open;fan=on``. A value may be double-quoted (``msg="a b"``, with
    ``\\"`` and ``\\\\`` escapes); a quoted value stays a string. ``key=`` (no value) yields no
    reading. Anything that is not ``key=value`` makes the whole line invalid; a unit glued to
    the number (``t=21.5C``) is a string unless the field is declared ``numeric`` (which then
    fails): devices that do that need ``regex``.
``regex``
    A regular expression with named groups, matched against the *whole* line (stripped of
    surrounding whitespace); each group that took part in the match and is not empty is a
    field: ``T=(?P<temp>[-\\d.]+)C H=(?P<humidity>\\d+)%``.

Field names are normalised to lower_snake (``"Temp C"`` and ``"tempC"`` give ``temp_c``,
``"°C"`` gives ``c``, a leading digit gets ``f_``); see ``normalize_key``.

Values keep the text's precision: numbers are ``decimal.Decimal`` (``23.40`` stays
``Decimal('23.40')``). Without an override, JSON ``true``/``false`` are booleans, JSON numbers
are numbers and JSON strings stay strings; in ``kv``/``regex`` text that looks like a number is
a number, ``true``/``false``/``on``/``off`` (any case) is a boolean, the rest a string.

``FieldOverride`` (per field, keyed by the device's name or its normalised form) sets the type
(``numeric``, ``int``, ``boolean``, ``string``), which then works on the text as sent (a
``string`` field keeps ``007.50`` as is; a ``boolean`` one also accepts ``yes``/``no``/``1``/``0``),
the unit, a linear conversion
``value * scale + offset`` (numbers only; exact ``Decimal`` arithmetic, so ``23.40 * 0.1`` is
``2.340``) and a new name.

Garbage is data, not a crash: ``LineParser.parse`` raises only ``LineParseError`` (a
``ValueError``) for a line it cannot use, whatever the input; its ``reason`` names the
problem for counting. ``LineBuffer`` splits a byte stream into lines with a length bound.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, DecimalException
from typing import Final, Literal, NoReturn

__all__ = [
    "DEFAULT_MAX_LINE_LENGTH",
    "FieldOverride",
    "FieldType",
    "LineBuffer",
    "LineFailure",
    "LineFormat",
    "LineParseError",
    "LineParser",
    "Reading",
    "normalize_key",
]

DEFAULT_MAX_LINE_LENGTH: Final = 512

LineFormat = Literal["json", "kv", "regex"]
FieldType = Literal["numeric", "boolean", "int", "string"]
LineFailure = Literal[
    "too_long",  # longer than max_line_length
    "undecodable",  # bytes that are not valid in the configured encoding
    "binary",  # control characters: line noise, a wrong baud rate
    "empty",
    "invalid_json",
    "not_object",  # valid JSON, but not an object
    "unsupported",  # an array, or objects nested too deeply
    "bad_kv",  # a token that is not key=value
    "no_match",  # the regex does not match the line
    "bad_key",  # a key with no usable characters, or two keys with the same name
    "bad_value",  # a value that does not fit its declared type, or cannot be scaled
]

_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_KV_PAIR: Final = re.compile(
    r'(?P<key>[^\s=,;"]+)=(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s,;"=]*))'
)
_KV_SEPARATORS: Final = re.compile(r"[\s,;]*")
_ESCAPE: Final = re.compile(r"\\(.)")
_TRUE: Final = frozenset({"true", "on"})
_FALSE: Final = frozenset({"false", "off"})
# Spellings accepted for a field declared boolean, on top of the inferred ones.
_TRUE_DECLARED: Final = _TRUE | {"yes", "1"}
_FALSE_DECLARED: Final = _FALSE | {"no", "0"}
_MAX_JSON_DEPTH: Final = 4
# Numbers far outside what a sensor sends would overflow floats and Decimal contexts later on.
_MAX_ADJUSTED_EXPONENT: Final = 300
# Scaling must not round: 50 digits are more than any line can carry at the default bound.
# The exponent limit makes an absurd result an Overflow (a bad_value) instead of a reading.
_ARITHMETIC: Final = Context(prec=50, Emax=_MAX_ADJUSTED_EXPONENT, Emin=-_MAX_ADJUSTED_EXPONENT)

Value = bool | Decimal | str
# A field as found in the line: key, value, and whether the value is unquoted kv/regex text
# whose type is still to be inferred (a declared type works on the text as sent instead).
_Pair = tuple[str, Value, bool]


class LineParseError(ValueError):
    """A line cannot be used; ``reason`` says why, for counting."""

    def __init__(self, reason: LineFailure, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: LineFailure = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    """One named value from a line, with its unit (from the field's override) if any."""

    name: str
    value: bool | int | Decimal | str
    unit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldOverride:
    """What the configuration says about one field; ``None`` keeps the default."""

    type: FieldType | None = None
    unit: str | None = None
    scale: Decimal | None = None
    offset: Decimal | None = None
    rename: str | None = None

    def __post_init__(self) -> None:
        if self.type not in (None, "numeric", "boolean", "int", "string"):
            raise ValueError(f"type must be numeric, boolean, int or string, not {self.type!r}")
        if self.rename is not None and not _NAME.fullmatch(self.rename):
            raise ValueError(f"rename must be lower_snake ([a-z][a-z0-9_]*), not {self.rename!r}")
        for label, number in (("scale", self.scale), ("offset", self.offset)):
            if number is not None and not (isinstance(number, Decimal) and number.is_finite()):
                raise ValueError(f"{label} must be a finite Decimal, not {number!r}")
        if self.type in ("boolean", "string") and (self.scale is not None or self.offset):
            raise ValueError(f"scale and offset apply to numbers, not to {self.type} fields")


def normalize_key(key: str) -> str:
    """Return ``key`` as a lower_snake field name; ``ValueError`` if nothing usable is left."""
    # Accents are dropped, not the letters ("Température" -> "temperature").
    text = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)  # camelCase -> camel_case
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not text:
        raise ValueError(f"key {key!r} has no letters or digits")
    return f"f_{text}" if text[0].isdigit() else text


class LineParser:
    """Parse single lines of one device; construct once per device, from its configuration.

    ``ValueError`` at construction names what is wrong with the configuration: an unknown
    format, a ``pattern`` that is missing, not a regular expression or without named groups,
    an unknown encoding, or two overrides for the same field. ``encoding`` must be
    ASCII-compatible (UTF-8, Latin-1, ...): line breaks are found as the bytes CR and LF.
    """

    def __init__(
        self,
        format: LineFormat,  # the configuration key is called "format"
        *,
        pattern: str | None = None,
        fields: Mapping[str, FieldOverride] | None = None,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        encoding: str = "utf-8",
    ) -> None:
        if format not in ("json", "kv", "regex"):
            raise ValueError(f"format must be json, kv or regex, not {format!r}")
        if max_line_length < 1:
            raise ValueError("max_line_length must be at least 1")
        try:
            b"x".decode(encoding)  # also rejects codecs that are not text encodings (rot13)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        except UnicodeError:
            pass  # a text encoding in which a lone "x" is incomplete (utf-16)
        self.format: LineFormat = format
        self.max_line_length = max_line_length
        self.encoding = encoding
        self._regex: re.Pattern[str] | None = None
        self._groups: dict[str, str] = {}
        if format == "regex":
            self._regex, self._groups = _compile_pattern(pattern)
        elif pattern is not None:
            raise ValueError("pattern is only used with format: regex")
        self._overrides: dict[str, FieldOverride] = {}
        for key, override in (fields or {}).items():
            name = normalize_key(key)
            if name in self._overrides:
                raise ValueError(f"fields {key!r} and another key both name the field {name!r}")
            self._overrides[name] = override

    def parse(self, line: bytes | str) -> list[Reading]:
        """Return the readings of one line (its line break may be included)."""
        text = self._text(line)
        if self.format == "json":
            pairs = _json_pairs(text)
        elif self.format == "kv":
            pairs = _kv_pairs(text)
        else:
            pairs = self._regex_pairs(text)
        readings: dict[str, Reading] = {}
        for key, raw, untyped in pairs:
            override = self._overrides.get(key, _NO_OVERRIDE)
            name = override.rename or key
            if name in readings:
                _fail("bad_key", f"two values for the field {name!r}")
            if untyped and override.type is None:
                raw = _infer(str(raw))
            readings[name] = Reading(name, _convert(name, raw, override), override.unit)
        return list(readings.values())

    def _text(self, line: bytes | str) -> str:
        if isinstance(line, bytes):
            raw = line.rstrip(b"\r\n")
            if len(raw) > self.max_line_length:
                _fail("too_long", f"{len(raw)} bytes, at most {self.max_line_length}")
            try:
                text = raw.decode(self.encoding)
            except UnicodeError as exc:  # not only UnicodeDecodeError: idna raises its parent
                _fail("undecodable", str(exc))
        else:
            text = line.rstrip("\r\n")
            if len(text) > self.max_line_length:
                _fail("too_long", f"{len(text)} characters, at most {self.max_line_length}")
        text = text.removeprefix("\ufeff").strip()
        if not text:
            _fail("empty", "nothing but whitespace")
        control = _CONTROL.search(text)
        if control is not None:
            _fail("binary", f"control character U+{ord(control.group()):04X}")
        return text

    def _regex_pairs(self, text: str) -> list[_Pair]:
        assert self._regex is not None  # set whenever format is "regex"
        match = self._regex.fullmatch(text)
        if match is None:
            _fail("no_match", "the line does not match the pattern")
        pairs: list[_Pair] = []
        for group, name in self._groups.items():
            value = match.group(group)
            if value:  # a group that did not take part, or matched nothing, has no value
                pairs.append((name, value, True))
        return pairs


_NO_OVERRIDE: Final = FieldOverride()


def _fail(reason: LineFailure, detail: str) -> NoReturn:
    raise LineParseError(reason, detail)


def _compile_pattern(pattern: str | None) -> tuple[re.Pattern[str], dict[str, str]]:
    if not pattern:
        raise ValueError("format regex needs a pattern with named groups, e.g. (?P<temp>\\S+)")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
    if not regex.groupindex:
        raise ValueError("pattern has no named groups: write (?P<name>...) for each field")
    groups: dict[str, str] = {}
    for group in regex.groupindex:
        name = normalize_key(group)
        if name in groups.values():
            raise ValueError(f"pattern groups {group!r} and another both name the field {name!r}")
        groups[group] = name
    return regex, groups


def _key(raw: str) -> str:
    # A device sends the same few keys on every line: normalise each once.
    name = _KEY_CACHE.get(raw)
    if name is not None:
        return name
    try:
        name = normalize_key(raw)
    except ValueError:
        _fail("bad_key", f"key {raw!r} has no letters or digits")
    if len(_KEY_CACHE) < _KEY_CACHE_SIZE:
        _KEY_CACHE[raw] = name
    return name


#: Bounded: a device that invents new keys on every line cannot grow it without limit.
_KEY_CACHE_SIZE: Final = 1024
_KEY_CACHE: Final[dict[str, str]] = {}


def _number(text: str, name: str | None = None) -> Decimal:
    """Return a finite Decimal of sensible size; raise LineParseError otherwise."""
    # Called for every number of every line: the message is only built for a failure.
    if not _NUMBER.fullmatch(text):
        _fail("bad_value", f"{f'{name}: ' if name else ''}{text[:40]!r} is not a number")
    value = Decimal(text)
    if abs(value.adjusted()) > _MAX_ADJUSTED_EXPONENT:
        _fail("bad_value", f"{f'{name}: ' if name else ''}{text[:40]!r} is out of range")
    return value


def _reject_constant(name: str) -> NoReturn:
    _fail("invalid_json", f"{name} is not JSON")


# One decoder for every line: json.loads() with hooks builds a new decoder and
# scanner per call, which is most of a short line's parse time.
# parse_int too: large integers stay exact and skip int()'s digit limit.
_JSON_DECODER: Final = json.JSONDecoder(
    parse_float=_number, parse_int=_number, parse_constant=_reject_constant
)


def _json_pairs(text: str) -> list[_Pair]:
    try:
        document = _JSON_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, LineParseError):
            raise
        _fail("invalid_json", str(exc) if isinstance(exc, ValueError) else "nested too deeply")
    if not isinstance(document, dict):
        _fail("not_object", f"a JSON {type(document).__name__}, not an object")
    pairs: list[_Pair] = []
    _flatten(document, "", 1, pairs)
    return pairs


def _flatten(obj: dict[str, object], prefix: str, depth: int, out: list[_Pair]) -> None:
    for raw_key, value in obj.items():
        path = f"{prefix}_{raw_key}" if prefix else raw_key
        if isinstance(value, dict):
            if depth >= _MAX_JSON_DEPTH:
                _fail("unsupported", f"{path!r} is nested more than {_MAX_JSON_DEPTH} levels")
            _flatten(value, path, depth + 1, out)
        elif isinstance(value, list):
            _fail("unsupported", f"{path!r} is an array")
        elif isinstance(value, bool | Decimal | str):
            out.append((_key(path), value, False))
        # None (JSON null) is "no value": no reading.


def _kv_pairs(text: str) -> list[_Pair]:
    pairs: list[_Pair] = []
    pos = 0
    while True:
        separators = _KV_SEPARATORS.match(text, pos)
        pos = separators.end() if separators else pos
        if pos >= len(text):
            return pairs
        match = _KV_PAIR.match(text, pos)
        if match is None or (match.end() < len(text) and text[match.end()] not in " \t,;"):
            token = text[pos:].split(maxsplit=1)[0]
            _fail("bad_kv", f"{token[:40]!r} is not key=value")
        pos = match.end()
        if match["quoted"] is not None:
            pairs.append((_key(match["key"]), _ESCAPE.sub(r"\1", match["quoted"]), False))
        elif match["bare"]:
            pairs.append((_key(match["key"]), match["bare"], True))


def _infer(text: str) -> Value:
    """Type a kv/regex value: a number, a boolean word, or else the text itself."""
    if _NUMBER.fullmatch(text):
        value = Decimal(text)
        return value if abs(value.adjusted()) <= _MAX_ADJUSTED_EXPONENT else text
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text


def _convert(name: str, raw: Value, override: FieldOverride) -> bool | int | Decimal | str:
    """Apply a field's declared type and scaling to its raw value."""
    kind = override.type
    if kind == "string":
        return ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    if kind == "boolean":
        return _boolean(name, raw)
    value: Value = raw
    if kind in ("numeric", "int"):
        if isinstance(raw, bool):
            _fail("bad_value", f"{name}: expected a number, got {raw}")
        value = raw if isinstance(raw, Decimal) else _number(raw.strip(), name)
    if override.scale is not None or override.offset is not None:
        if not isinstance(value, Decimal):
            _fail("bad_value", f"{name}: {value!r} is not a number, so it cannot be scaled")
        try:
            if override.scale is not None:
                value = _ARITHMETIC.multiply(value, override.scale)
            if override.offset is not None:
                value = _ARITHMETIC.add(value, override.offset)
        except DecimalException as exc:
            _fail("bad_value", f"{name}: cannot scale {raw}: {type(exc).__name__}")
    if kind == "int":
        assert isinstance(value, Decimal)
        if value != value.to_integral_value():
            _fail("bad_value", f"{name}: {value} is not a whole number")
        return int(value)
    return value


def _boolean(name: str, raw: Value) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, Decimal):
        if raw in (0, 1):
            return raw == 1
    else:
        lowered = raw.strip().lower()
        if lowered in _TRUE_DECLARED:
            return True
        if lowered in _FALSE_DECLARED:
            return False
    _fail("bad_value", f"{name}: expected a boolean, got {raw!r}")


class LineBuffer:
    """Split a byte stream into lines of at most ``max_line_length`` bytes.

    Lines end at ``\\n`` or ``\\r`` (so CRLF, LF and bare CR devices all work); empty lines
    are skipped. A line longer than the bound is dropped whole, up to its line break, and
    counted in ``overlong``; all dropped bytes are counted in ``discarded_bytes``. Between
    calls the buffer holds at most ``max_line_length`` bytes.
    """

    def __init__(self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        if max_line_length < 1:
            raise ValueError("max_line_length must be at least 1")
        self.max_line_length = max_line_length
        self.overlong = 0
        self.discarded_bytes = 0
        self._pending = b""
        self._skipping = False  # inside an over-long line, waiting for its end

    def __len__(self) -> int:
        """Return the number of bytes of the incomplete last line."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete lines, without line breaks."""
        *complete, rest = re.split(rb"[\r\n]", self._pending + data)
        lines: list[bytes] = []
        for part in complete:
            if self._skipping:  # the tail of an over-long line
                self._skipping = False
                self.discarded_bytes += len(part)
            elif len(part) > self.max_line_length:
                self.overlong += 1
                self.discarded_bytes += len(part)
            elif part:
                lines.append(part)
        if self._skipping:
            self.discarded_bytes += len(rest)
            rest = b""
        elif len(rest) > self.max_line_length:
            self.overlong += 1
            self.discarded_bytes += len(rest)
            rest = b""
            self._skipping = True
        self._pending = rest
        return lines

    def clear(self) -> None:
        """Forget an incomplete line (after the port was reopened, say)."""
        self.discarded_bytes += len(self._pending)
        self._pending = b""
        self._skipping = False
