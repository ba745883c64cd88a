"""``RunConfig``: every setting of a run, one object for the pages and the commands.

Each stage reads its own slice (``input``, ``encoder``, ``preferences``, ``beam``,
``demand``, ``pricing``, ``season``), so a cache keyed on the slices a stage
depends on re-runs only what a changed setting reaches. Built from a dict, a
TOML or JSON file; every problem in it is collected before one ``ConfigError``
names them all (the section, the field, the value given and what is allowed).

TOML has no null: ``"none"`` (any case) stands for "off" in a field that can be
off (``[pricing] price_ending = "none"``), and ``to_toml`` writes it so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

from engine.bundles import BeamConfig
from engine.bundles.objective import ObjectiveWeights
from engine.encoder import EncoderConfig
from engine.errors import ConfigError
from engine.pricing import DemandConfig, PricingConfig
from engine.recommend.hybrid import PreferenceConfig

OFF = "none"


@dataclass(frozen=True)
class InputConfig:
    """How the files are read: the analyst's column mapping and what to keep.

    ``orders``: what an order is in a file without order ids ("day": a customer's
    lines on one day; "timestamp": at one time). ``keep_outliers``: keep the lines
    set aside as ``outlier_quantity``. ``mapping`` holds ``(file, their column,
    canonical)`` rules; ``file`` is a
    file name or ``"*"`` for every file (as ``--map [FILE:]THEIRS=CANONICAL``).
    In a config file: ``[input.mapping."orders.csv"] Bestellnr = "order_id"``; a
    column mapped to ``""`` is left out.
    """

    mapping: tuple[tuple[str, str, str], ...] = ()
    keep_non_merchandise: tuple[str, ...] = ()
    orders: str = "day"
    keep_outliers: bool = False

    def __post_init__(self) -> None:
        if self.orders not in ("day", "timestamp"):
            raise ConfigError([f"orders = {self.orders!r}: \"day\" (a customer's lines on one "
                               "day are one order) or \"timestamp\" (at one time), for files "
                               "without an order id"])
        rules = tuple(tuple(str(x) for x in rule) for rule in self.mapping)
        bad = [r for r in rules if len(r) != 3 or not all(r[:2])]
        if bad:
            raise ConfigError([f"mapping = {bad[:3]}: each rule is (file or '*', their "
                               "column, canonical column or \"\" to leave it out)"])
        object.__setattr__(self, "mapping", tuple(sorted(set(rules))))
        object.__setattr__(self, "keep_non_merchandise",
                           tuple(sorted({str(k) for k in self.keep_non_merchandise})))

    def per_file(self) -> dict[str, dict[str, str]]:
        """``{file or "*": {theirs: canonical}}``, as in the config file."""
        out: dict[str, dict[str, str]] = {}
        for file, theirs, canonical in self.mapping:
            out.setdefault(file, {})[theirs] = canonical
        return out

    def for_files(self, files: list[str]) -> dict[str, dict[str, str]]:
        """The mapping ``load_files`` takes, keyed by file name: the "*" rules, then
        those for the name, then those for the path as given."""
        rules = self.per_file()
        common = rules.get("*", {})
        return {Path(f).name: {**common, **rules.get(Path(f).name, {}), **rules.get(str(f), {})}
                for f in files}

    @classmethod
    def from_per_file(cls, per_file: Mapping[str, Mapping[str, str]],
                      keep_non_merchandise=(), **options) -> InputConfig:
        rules = tuple((f, t, c) for f, cols in per_file.items() for t, c in cols.items())
        return cls(mapping=rules, keep_non_merchandise=tuple(keep_non_merchandise), **options)


@dataclass(frozen=True)
class SeasonConfig:
    """The period demand is simulated for: ``month`` 1..12, or 0 for the whole year
    (each product's category's monthly index from the order history)."""

    month: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.month, int) or not 0 <= self.month <= 12:
            raise ConfigError([f"month = {self.month!r}: must be 0 (whole year) or 1..12"])


@dataclass(frozen=True)
class RunConfig:
    """Every setting of a run, one slice per stage.

    ``profit_draws``: simulated visitors per candidate when the bundle search
    ranks its finished bundles by the profit they add. ``recommendations_k``:
    products per customer in ``recommendations.csv``; ``purchased``: whether they
    "include" products the customer bought before (the next purchase) or "exclude"
    them (new products only).
    """

    input: InputConfig = field(default_factory=InputConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    preferences: PreferenceConfig = field(default_factory=PreferenceConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    demand: DemandConfig = field(default_factory=DemandConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    season: SeasonConfig = field(default_factory=SeasonConfig)
    recommendations_k: int = 10
    purchased: str = "include"
    profit_draws: int = 2_000
    pseudonymise: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not _is_int(self.recommendations_k) or not 1 <= self.recommendations_k <= 1000:
            problems.append(f"recommendations_k = {self.recommendations_k!r}: an integer "
                            "from 1 to 1000")
        if self.purchased not in ("include", "exclude"):
            problems.append(f"purchased = {self.purchased!r}: \"include\" (the next purchase, "
                            "bought products too) or \"exclude\" (new products only)")
        if not _is_int(self.profit_draws) or not 100 <= self.profit_draws <= 1_000_000:
            problems.append(f"profit_draws = {self.profit_draws!r}: an integer from 100 to "
                            "1,000,000")
        if not _is_int(self.seed) or self.seed < 0:
            problems.append(f"seed = {self.seed!r}: an integer ≥ 0")
        if problems:
            raise ConfigError(problems)

    # ------------------------------------------------------------ reading

    @classmethod
    def from_dict(cls, data: Mapping) -> RunConfig:
        """Build from ``{"seed": 0, "beam": {"kmax": 4}, ...}``; ``ConfigError`` lists
        every unknown field, wrong type and out-of-range value at once."""
        if not isinstance(data, Mapping):
            raise ConfigError([f"the settings must be a table of fields, got {type(data).__name__}"])
        problems: list[str] = []
        kwargs = _build_fields(cls, dict(data), "", problems)
        if problems:
            raise ConfigError(problems)
        try:
            return cls(**kwargs)
        except ConfigError as err:
            raise ConfigError(err.problems) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> RunConfig:
        """Read a ``.toml`` or ``.json`` settings file (``ConfigError`` naming the file)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise ConfigError([f"{path}: cannot be read as "
                               f"{'JSON' if path.suffix.lower() == '.json' else 'TOML'} ({err})"]
                              ) from None
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError([f"{path}: {p}" for p in err.problems]) from None

    # ------------------------------------------------------------ writing

    def to_dict(self) -> dict:
        """Plain values (None for "off"), the mapping as ``{file: {theirs: canonical}}``."""
        out = dataclasses.asdict(self)
        out["input"]["mapping"] = self.input.per_file()
        return out

    def to_toml(self) -> str:
        """The settings as a TOML file that ``from_file`` reads back to an equal config."""
        return _toml(self.to_dict())


# ---------------------------------------------------------------- building and checking


def _build_fields(kind: type, data: dict, where: str, problems: list[str]) -> dict:
    hints = typing.get_type_hints(kind)
    known = {f.name: f for f in fields(kind)}
    for name in sorted(set(data) - set(known)):
        problems.append(f"{where}{name}: unknown setting (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in data.items():
        if name not in known:
            continue
        hint, label = hints[name], f"{where}{name}"
        sub = _dataclass_in(hint)
        if sub is InputConfig and isinstance(value, Mapping):
            try:
                value = _input_config(value, f"[{label}] ", problems)
            except ConfigError as err:
                problems.extend(f"[{label}] {p}" for p in err.problems)
                continue
            if value is not None:
                kwargs[name] = value
            continue
        if sub is not None:
            if not isinstance(value, Mapping):
                problems.append(f"{label} = {value!r}: a table of settings ([{label}])")
                continue
            inner = _build_fields(sub, dict(value), f"[{label}] ", problems)
            try:
                kwargs[name] = sub(**inner)
            except (ConfigError, ValueError, TypeError) as err:
                problems.extend(f"[{label}] {p}" for p in _problems(err))
            continue
        value = _coerce(value, hint)
        if not _fits(value, hint):
            problems.append(f"{label} = {value!r}: expected {_describe(hint)}")
            continue
        kwargs[name] = value
    return kwargs


def _input_config(value: Mapping, where: str, problems: list[str]) -> InputConfig | None:
    known = {"mapping", "keep_non_merchandise", "orders", "keep_outliers"}
    unknown = sorted(set(value) - known)
    problems.extend(f"{where}{u}: unknown setting (known: {', '.join(sorted(known))})"
                    for u in unknown)
    mapping = value.get("mapping", {})
    ok = isinstance(mapping, Mapping) and all(
        isinstance(cols, Mapping) and all(isinstance(c, str) for c in cols.values())
        for cols in mapping.values()
    )
    if not ok:
        problems.append(f"{where}mapping = {mapping!r}: expected {{file or \"*\": "
                        "{their column: canonical}}")
        return None
    keep = value.get("keep_non_merchandise", ())
    if isinstance(keep, str) or not all(isinstance(k, str | int) for k in keep):
        problems.append(f"{where}keep_non_merchandise = {keep!r}: a list of product codes")
        return None
    options = {k: value[k] for k in ("orders", "keep_outliers") if k in value}
    if "keep_outliers" in options and not isinstance(options["keep_outliers"], bool):
        problems.append(f"{where}keep_outliers = {options['keep_outliers']!r}: true or false")
        return None
    return InputConfig.from_per_file(mapping, keep, **options)


def _problems(err: Exception) -> list[str]:
    if isinstance(err, ConfigError):
        return list(err.problems)
    return [p.strip() for p in str(err).split("; ") if p.strip()]


def _dataclass_in(hint) -> type | None:
    return hint if isinstance(hint, type) and is_dataclass(hint) else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(hint) -> bool:
    return type(None) in typing.get_args(hint)


def _coerce(value, hint):
    """TOML's stand-ins: "none" for None, lists for tuples, ints where floats go."""
    if isinstance(value, str) and value.strip().lower() == OFF and _optional(hint):
        return None
    if isinstance(value, list | tuple):
        args = [h for h in typing.get_args(hint) if typing.get_origin(h) is tuple] or [hint]
        inner = typing.get_args(args[0]) if typing.get_origin(args[0]) is tuple else ()
        if len(inner) == 2 and inner[1] is Ellipsis:
            return tuple(_coerce(v, inner[0]) for v in value)
        if len(inner) == len(value):
            return tuple(_coerce(v, h) for v, h in zip(value, inner, strict=True))
        return tuple(value)
    args = set(typing.get_args(hint)) or {hint}
    if float in args and _is_int(value):
        return float(value)
    return value


def _fits(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(args) == len(value) and all(_fits(v, h) for v, h in zip(value, args,
                                                                           strict=True))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return isinstance(value, float)
    if _dataclass_in(hint) is not None:
        return isinstance(value, hint)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(h) for h in typing.get_args(hint) if h is not type(None)]
        return " or ".join(parts) + (f' or "{OFF}" (off)' if _optional(hint) else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}s"
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(
        hint, getattr(hint, "__name__", str(hint)))


# ---------------------------------------------------------------- TOML out


def _toml(data: dict) -> str:
    lines: list[str] = []
    _toml_table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _toml_table(data: dict, path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for key, value in scalars.items():
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in tables.items():
        _toml_table(value, [*path, key], lines)


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key, ensure_ascii=False)


def _toml_value(value) -> str:
    if value is None:
        return f'"{OFF}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


__all__ = ["InputConfig", "ObjectiveWeights", "RunConfig", "SeasonConfig"]
