"""Errors the engine raises. Each docstring says how to recover."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Issue:
    """One broken rule in one input file.

    ``rows`` are 1-based row numbers of the source file as a spreadsheet shows
    them (the header is row 1), at most a handful as a sample.
    """

    file: str
    column: str | None
    rule: str
    message: str
    rows: tuple[int, ...] = ()
    hint: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = list(self.rows)
        return d

    def __str__(self) -> str:
        where = self.file + (f", column '{self.column}'" if self.column else "")
        rows = f" (rows {', '.join(map(str, self.rows))})" if self.rows else ""
        hint = f" Fix: {self.hint}" if self.hint else ""
        return f"{where}: {self.message}{rows}.{hint}"


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass
class DataValidationError(EngineError):
    """Input files could not be turned into a dataset.

    Recover by fixing the files (or the column mapping) as each issue's hint
    says and loading again; the previously loaded dataset is left untouched.
    """

    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues) or "invalid input"


class NotFittedError(EngineError):
    """A model was used before ``fit``. Recover by calling ``fit`` first."""


class ModelFitError(EngineError):
    """Numerical failure while fitting (NaN, singular system).

    Recover by checking the input for degenerate data or raising regularisation.
    """


class ModelLoadError(EngineError):
    """The text encoder's model could not be loaded from the ``[encoder] model`` setting.

    The setting must be a local model directory (with ``config.json``, the
    weights and the tokenizer files, as ``save_pretrained`` writes them);
    nothing is downloaded at run time. Recover by pointing it at such a
    directory, or by leaving it unset for the bundled all-MiniLM-L6-v2.
    """


class ConfigError(EngineError, ValueError):
    """Settings outside what is allowed; ``problems`` names each field, the value
    given and what is allowed, all at once.

    Recover by changing every named setting (in the config file, the command's
    options or the page) to a value in its allowed range and running again.
    """

    def __init__(self, problems) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("; ".join(self.problems) or "invalid settings")
