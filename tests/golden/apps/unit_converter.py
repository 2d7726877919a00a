"""Golden app: a unit converter library and command line (length, mass, temperature).

The PRD arrives as a JSON object between two paragraphs of prose, with no fence. The
architect's first design lists a test file among the source files, which the design schema
rejects; the re-ask gets a corrected design (so ("Architect", "WriteDesign") has two answers).
"""

IDEA = (
    "a unit converter: a small library and command line that converts lengths, masses and "
    "temperatures, and reports clear errors for unknown or incompatible units"
)

# JSON between prose paragraphs, no code fence.
PRD = r'''I kept the scope to three kinds of quantity so the whole thing fits in a few files. Here is the PRD:

{
  "project_name": "unit_converter",
  "summary": "A Python library and command-line tool that converts values between units of length, mass and temperature, with clear errors for bad input.",
  "goals": [
    "Convert between common metric and imperial units of length and mass",
    "Convert between Celsius, Fahrenheit and Kelvin",
    "Explain every bad input with a one-line error"
  ],
  "user_stories": [
    "As a cook, I want to convert ounces to grams so that I can follow foreign recipes",
    "As a traveller, I want to convert miles to kilometres so that I understand road signs",
    "As a developer, I want to call convert() from Python so that I can reuse it in my scripts"
  ],
  "requirements": [
    {"id": "R1", "text": "Length units m, km, cm, mm, mi, yd, ft, in and mass units kg, g, mg, lb, oz are supported", "priority": "P0"},
    {"id": "R2", "text": "Temperature units C, F and K are supported, including their offsets", "priority": "P0"},
    {"id": "R3", "text": "Units are matched case-insensitively by symbol or by name (e.g. 'kilometre', 'pounds', 'celsius')", "priority": "P1"},
    {"id": "R4", "text": "Converting between different kinds of quantity, an unknown unit, a non-numeric value or a temperature below absolute zero raises a ValueError subclass with a clear message", "priority": "P0"},
    {"id": "R5", "text": "python -m unit_converter VALUE FROM TO prints the result rounded to --precision decimals (default 4); --list prints the units by kind", "priority": "P0"}
  ],
  "acceptance_criteria": [
    "1 mi converts to 1.609344 km",
    "100 C converts to 212 F and -40 C converts to -40 F",
    "0 K converts to -273.15 C",
    "Converting kg to m raises an incompatible-units error",
    "A temperature below absolute zero is rejected",
    "The command line prints '5 km = 3.1069 mi' and exits 0",
    "An unknown unit on the command line prints an error to stderr and exits with status 1"
  ],
  "anything_unclear": ""
}

Volume and speed could come later as more tables in the same format.'''

# First design: lists a test file among the source files, which the schema rejects.
DESIGN_WITH_TESTS = r'''```json
{
  "implementation_approach": "Every unit is a Unit record with a factor (and an offset for temperatures) that maps a value to its dimension's base unit: metres, kilograms or kelvin. Converting is to_base then from_base, after checking both units share a dimension. A CLI in __main__.py wraps convert().",
  "files": [
    {"path": "unit_converter/__init__.py", "purpose": "package exports"},
    {"path": "unit_converter/units.py", "purpose": "Unit dataclass, unit table, aliases and lookup"},
    {"path": "unit_converter/converter.py", "purpose": "convert() and the error types"},
    {"path": "unit_converter/__main__.py", "purpose": "command line"},
    {"path": "tests/test_converter.py", "purpose": "unit tests for convert()"}
  ],
  "class_diagram": "classDiagram\n    class Unit {\n        +str symbol\n        +str name\n        +str dimension\n        +float factor\n        +float offset\n    }",
  "sequence_diagram": "sequenceDiagram\n    User->>main: 5 km mi\n    main->>converter: convert(5, km, mi)\n    converter-->>main: 3.1069\n    main-->>User: 5 km = 3.1069 mi",
  "anything_unclear": ""
}
```'''

# The re-ask: the same design without the test file, with a fuller class diagram.
DESIGN = r'''You're right, the tests are QA's job. Here is the corrected design with source files only:

```
{
  "implementation_approach": "Every unit is a frozen Unit record whose factor and offset map a value to its dimension's base unit (metres, kilograms or kelvin): base = value * factor + offset. convert() looks both units up, checks they share a dimension, converts to the base unit, rejects temperatures below 0 K, and converts back. Lookup is case-insensitive over symbols and a table of aliases. unit_converter/__main__.py wraps convert() in an argparse command line. Standard library only.",
  "files": [
    {"path": "unit_converter/__init__.py", "purpose": "package exports: convert, get_unit and the error types"},
    {"path": "unit_converter/units.py", "purpose": "Unit dataclass, the unit table and aliases, get_unit() and UnknownUnitError"},
    {"path": "unit_converter/converter.py", "purpose": "convert() plus IncompatibleUnitsError and BelowAbsoluteZeroError"},
    {"path": "unit_converter/__main__.py", "purpose": "argparse command line: VALUE FROM TO, --precision, --list"}
  ],
  "class_diagram": "classDiagram\n    class Unit {\n        +str symbol\n        +str name\n        +str dimension\n        +float factor\n        +float offset\n        +to_base(value) float\n        +from_base(value) float\n    }\n    class UnknownUnitError\n    class IncompatibleUnitsError\n    class BelowAbsoluteZeroError\n    ValueError <|-- UnknownUnitError\n    ValueError <|-- IncompatibleUnitsError\n    ValueError <|-- BelowAbsoluteZeroError\n    class units {\n        +UNITS dict~str, Unit~\n        +get_unit(name) Unit\n        +units_by_dimension() dict~str, list~Unit~~\n    }\n    class converter {\n        +convert(value, from_unit, to_unit) float\n    }\n    converter ..> units",
  "sequence_diagram": "sequenceDiagram\n    participant U as User\n    participant M as main\n    participant C as converter\n    participant T as units\n    U->>M: unit_converter 5 km mi\n    M->>C: convert(5.0, \"km\", \"mi\")\n    C->>T: get_unit(\"km\"), get_unit(\"mi\")\n    T-->>C: Unit, Unit\n    C-->>M: 3.10686\n    M-->>U: 5 km = 3.1069 mi",
  "anything_unclear": ""
}
```'''

TASKS = r'''{"tasks": [
  {"path": "unit_converter/units.py", "description": "frozen Unit dataclass (symbol, name, dimension, factor, offset=0.0) with to_base/from_base; UNITS keyed by lowercase symbol for m, km, cm, mm, mi, yd, ft, in, kg, g, mg, lb, oz, C, F, K; ALIASES of names and plurals; UnknownUnitError(ValueError); get_unit(name) matching case-insensitively; units_by_dimension()", "depends_on": []},
  {"path": "unit_converter/converter.py", "description": "IncompatibleUnitsError and BelowAbsoluteZeroError (both ValueError); convert(value, from_unit, to_unit) that rejects non-finite values, checks dimensions, and rejects temperatures below 0 K", "depends_on": ["unit_converter/units.py"]},
  {"path": "unit_converter/__init__.py", "description": "re-export convert, get_unit, Unit and the three error classes", "depends_on": ["unit_converter/units.py", "unit_converter/converter.py"]},
  {"path": "unit_converter/__main__.py", "description": "main(argv=None) -> int: positional value, from_unit, to_unit (optional when --list), --precision (default 4), --list; print '5 km = 3.1069 mi' with trailing zeros trimmed; on a bad number or any ValueError print 'error: ...' to stderr and return 1", "depends_on": ["unit_converter/units.py", "unit_converter/converter.py"]}
]}'''

UNITS = r'''```python
"""Units of length, mass and temperature, and how to find them by name."""

from __future__ import annotations

from dataclasses import dataclass


class UnknownUnitError(ValueError):
    """No unit has the given symbol or name."""


@dataclass(frozen=True)
class Unit:
    """A unit: ``base = value * factor + offset`` in its dimension's base unit."""

    symbol: str
    name: str
    dimension: str
    factor: float
    offset: float = 0.0

    def to_base(self, value: float) -> float:
        return value * self.factor + self.offset

    def from_base(self, value: float) -> float:
        return (value - self.offset) / self.factor


_ALL = [
    # length, base metre
    Unit("m", "metre", "length", 1.0),
    Unit("km", "kilometre", "length", 1000.0),
    Unit("cm", "centimetre", "length", 0.01),
    Unit("mm", "millimetre", "length", 0.001),
    Unit("mi", "mile", "length", 1609.344),
    Unit("yd", "yard", "length", 0.9144),
    Unit("ft", "foot", "length", 0.3048),
    Unit("in", "inch", "length", 0.0254),
    # mass, base kilogram
    Unit("kg", "kilogram", "mass", 1.0),
    Unit("g", "gram", "mass", 0.001),
    Unit("mg", "milligram", "mass", 1e-6),
    Unit("lb", "pound", "mass", 0.45359237),
    Unit("oz", "ounce", "mass", 0.028349523125),
    # temperature, base kelvin
    Unit("C", "celsius", "temperature", 1.0, 273.15),
    Unit("F", "fahrenheit", "temperature", 5 / 9, 273.15 - 32 * 5 / 9),
    Unit("K", "kelvin", "temperature", 1.0),
]

UNITS: dict[str, Unit] = {unit.symbol.lower(): unit for unit in _ALL}

ALIASES: dict[str, str] = {}
for _unit in _ALL:
    ALIASES[_unit.name] = _unit.symbol.lower()
    ALIASES[_unit.name + "s"] = _unit.symbol.lower()
ALIASES.update({
    "meter": "m", "meters": "m", "kilometer": "km", "kilometers": "km",
    "centimeter": "cm", "centimeters": "cm", "millimeter": "mm", "millimeters": "mm",
    "feet": "ft", "inches": "in", "lbs": "lb", "degc": "c", "degf": "f",
})


def get_unit(name: str) -> Unit:
    """The unit with this symbol or name, ignoring case and surrounding spaces."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return UNITS[key]
    except KeyError:
        raise UnknownUnitError(f"unknown unit: {name!r}") from None


def units_by_dimension() -> dict[str, list[Unit]]:
    """Every unit, grouped by dimension in table order."""
    groups: dict[str, list[Unit]] = {}
    for unit in _ALL:
        groups.setdefault(unit.dimension, []).append(unit)
    return groups
```'''

CONVERTER = r'''```python
"""Convert a value from one unit to another of the same dimension."""

from __future__ import annotations

import math

from unit_converter.units import get_unit


class IncompatibleUnitsError(ValueError):
    """The two units measure different things (e.g. mass and length)."""


class BelowAbsoluteZeroError(ValueError):
    """A temperature colder than 0 K."""


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    source = get_unit(from_unit)
    target = get_unit(to_unit)
    if source.dimension != target.dimension:
        raise IncompatibleUnitsError(
            f"cannot convert {source.dimension} ({source.symbol}) to {target.dimension} ({target.symbol})"
        )
    base = source.to_base(value)
    if source.dimension == "temperature" and base < -1e-9:
        raise BelowAbsoluteZeroError(f"{value} {source.symbol} is below absolute zero")
    return target.from_base(base)
```'''

INIT = r'''```python
"""Convert lengths, masses and temperatures."""

from unit_converter.converter import BelowAbsoluteZeroError, IncompatibleUnitsError, convert
from unit_converter.units import Unit, UnknownUnitError, get_unit

__all__ = [
    "BelowAbsoluteZeroError",
    "IncompatibleUnitsError",
    "Unit",
    "UnknownUnitError",
    "convert",
    "get_unit",
]
```'''

MAIN = r'''The command line keeps all conversion logic in `convert()` and only formats and reports errors:

```python
"""Command line: python -m unit_converter VALUE FROM TO [--precision N] | --list"""

from __future__ import annotations

import argparse
import sys

from unit_converter.converter import convert
from unit_converter.units import units_by_dimension


def format_number(value: float, precision: int) -> str:
    """Round to ``precision`` decimals and drop trailing zeros ("212.0000" -> "212")."""
    text = f"{value:.{precision}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unit_converter", description="Convert between units.")
    parser.add_argument("value", nargs="?", help="the number to convert")
    parser.add_argument("from_unit", nargs="?", help="unit to convert from, e.g. km")
    parser.add_argument("to_unit", nargs="?", help="unit to convert to, e.g. mi")
    parser.add_argument("--precision", type=int, default=4, help="decimals in the result (default 4)")
    parser.add_argument("--list", action="store_true", help="list the supported units")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for dimension, units in units_by_dimension().items():
            print(f"{dimension}: " + ", ".join(f"{u.symbol} ({u.name})" for u in units))
        return 0
    if args.to_unit is None:
        parser.error("VALUE, FROM and TO are required unless --list is given")
    if args.precision < 0:
        print("error: --precision must not be negative", file=sys.stderr)
        return 1
    try:
        value = float(args.value)
    except ValueError:
        print(f"error: not a number: {args.value!r}", file=sys.stderr)
        return 1
    try:
        result = convert(value, args.from_unit, args.to_unit)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{format_number(value, args.precision)} {args.from_unit} = "
          f"{format_number(result, args.precision)} {args.to_unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
```'''

TEST_UNITS = r'''```python
import pytest

from unit_converter.units import UnknownUnitError, get_unit


def test_lookup_by_symbol_or_name_ignores_case():
    assert get_unit("KM") is get_unit("kilometre") is get_unit(" kilometers ")
    assert get_unit("Celsius").symbol == "C"
    assert get_unit("lbs").dimension == "mass"


def test_unknown_unit_raises_value_error():
    with pytest.raises(UnknownUnitError, match="furlong"):
        get_unit("furlong")
    assert issubclass(UnknownUnitError, ValueError)
```'''

TEST_CONVERTER = r'''These tests cover each acceptance criterion for `convert()`:

```python
import math

import pytest

from unit_converter.converter import BelowAbsoluteZeroError, IncompatibleUnitsError, convert
from unit_converter.units import UnknownUnitError


def test_length_and_mass():
    assert convert(1, "mi", "km") == pytest.approx(1.609344)
    assert convert(12, "in", "ft") == pytest.approx(1.0)
    assert convert(1, "lb", "oz") == pytest.approx(16.0)
    assert convert(2500, "g", "kg") == pytest.approx(2.5)
    assert convert(convert(3.5, "ft", "cm"), "cm", "ft") == pytest.approx(3.5)


def test_temperature_offsets():
    assert convert(100, "C", "F") == pytest.approx(212.0)
    assert convert(-40, "C", "F") == pytest.approx(-40.0)
    assert convert(0, "K", "C") == pytest.approx(-273.15)
    assert convert(32, "F", "K") == pytest.approx(273.15)


def test_incompatible_units():
    with pytest.raises(IncompatibleUnitsError):
        convert(1, "kg", "m")


def test_below_absolute_zero():
    with pytest.raises(BelowAbsoluteZeroError):
        convert(-300, "C", "K")


def test_bad_values_and_units():
    with pytest.raises(ValueError):
        convert(math.nan, "m", "km")
    with pytest.raises(UnknownUnitError):
        convert(1, "m", "parsec")
```'''

TEST_CLI = r'''```python
from unit_converter.__main__ import main


def test_converts_and_rounds(capsys):
    assert main(["5", "km", "mi"]) == 0
    assert capsys.readouterr().out.strip() == "5 km = 3.1069 mi"


def test_precision_and_trailing_zeros(capsys):
    assert main(["100", "C", "F", "--precision", "2"]) == 0
    assert capsys.readouterr().out.strip() == "100 C = 212 F"


def test_unknown_unit_fails(capsys):
    assert main(["3", "km", "parsec"]) == 1
    captured = capsys.readouterr()
    assert "unknown unit" in captured.err
    assert captured.out == ""


def test_list_units(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "length:" in out and "mi (mile)" in out
    assert "temperature:" in out
```'''

ANSWERS = {
    ("ProductManager", "WritePRD"): [PRD],
    ("Architect", "WriteDesign"): [DESIGN_WITH_TESTS, DESIGN],
    ("ProjectManager", "WriteTasks"): [TASKS],
    ("Engineer", "WriteCode"): [UNITS, CONVERTER, INIT, MAIN],
    ("QaEngineer", "WriteTests"): [TEST_UNITS, TEST_CONVERTER, TEST_CLI],
}
