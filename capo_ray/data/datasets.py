"""Math problem sets as ``Problem`` records, from local jsonl/parquet files or the HF hub.

A ``DatasetSpec`` says where a set lives and how to read a row: which field holds the question,
which holds the answer and how to get the answer out of it (``FieldMap``). ``BUILTIN_DATASETS``
names the sets in the shared data directory (see its README); ``load_problems`` is the entry
point the driver uses.

Every problem gets ``source = "<file>:<line>"`` (1-based) for logs, and a ``uid`` that depends
only on the dataset name and the problem's text, so it survives reordering of the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from capo_ray.records import Problem
from capo_ray.rewards.extract import last_boxed

# field: the answer field as is (a string, a number, or a list of strings joined by ", ");
# gsm8k_hash: the text after "####" in a GSM8K solution, thousands commas removed;
# last_boxed: the last \boxed{} of a worked solution (MATH, Minerva).
AnswerKind = Literal["field", "gsm8k_hash", "last_boxed"]
ANSWER_KINDS: tuple[str, ...] = ("field", "gsm8k_hash", "last_boxed")


class DatasetError(ValueError):
    """A dataset file that cannot be read as problems; the message names file and line."""


@dataclass(frozen=True)
class FieldMap:
    question: str
    answer: str
    answer_kind: AnswerKind = "field"

    def __post_init__(self) -> None:
        if self.answer_kind not in ANSWER_KINDS:
            raise ValueError(f"FieldMap.answer_kind {self.answer_kind!r}; valid kinds: {list(ANSWER_KINDS)}")


@dataclass(frozen=True)
class HubSource:
    """The same rows on the Hugging Face hub, for machines with internet."""

    path: str  # e.g. "openai/gsm8k"
    split: str
    config: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    file: str  # .jsonl or .parquet, relative to the data directory
    fields: FieldMap
    hub: HubSource | None = None
    # Name of another built-in set whose problems are removed from this one, matched by
    # normalized question text (math_train = MATH test minus MATH-500, the PRM800K split).
    exclude: str | None = None


_GSM8K = FieldMap("question", "answer", "gsm8k_hash")
_MATH = FieldMap("problem", "solution", "last_boxed")
BUILTIN_DATASETS: dict[str, DatasetSpec] = {
    "gsm8k_train": DatasetSpec("gsm8k_train.jsonl", _GSM8K, HubSource("openai/gsm8k", "train", "main")),
    "gsm8k_test": DatasetSpec("gsm8k_test.jsonl", _GSM8K, HubSource("openai/gsm8k", "test", "main")),
    "math_train": DatasetSpec("math_test.jsonl", _MATH, exclude="math500"),
    "math500": DatasetSpec(
        "math500.jsonl", FieldMap("problem", "answer"), HubSource("HuggingFaceH4/MATH-500", "test")
    ),
    "aime24": DatasetSpec("aime24.jsonl", FieldMap("problem", "answer")),
    "amc23": DatasetSpec("amc23.jsonl", FieldMap("problem", "answer")),  # answers are floats (27.0)
    "minerva_math": DatasetSpec("minerva_math.jsonl", _MATH),
    "olympiadbench": DatasetSpec("olympiadbench.jsonl", FieldMap("question", "final_answer")),  # list
}


def resolve_data_dir(configured: str | None) -> Path:
    """The data directory: ``configured``, else $CAPO_DATA_DIR, else the first existing of
    ../shared/data relative to the current directory and to the repository root."""
    if configured:
        return _existing_dir(Path(configured), "data.data_dir")
    from_env = os.environ.get("CAPO_DATA_DIR")
    if from_env:
        return _existing_dir(Path(from_env), "CAPO_DATA_DIR")
    repo_root = Path(__file__).resolve().parents[2]  # capo_ray/data/datasets.py -> repo
    candidates = [Path.cwd() / "../shared/data", repo_root / "../shared/data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    looked = ", ".join(str(c.resolve()) for c in candidates)
    raise FileNotFoundError(
        f"no data directory found (looked in {looked}); set data.data_dir in the config "
        "or the CAPO_DATA_DIR environment variable to the folder holding the dataset files"
    )


def _existing_dir(path: Path, setting: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{setting} = {str(path)!r} is not a directory")
    return path.resolve()


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line or row number, row) for each row of a .jsonl or .parquet file.
    Blank jsonl lines are skipped (a trailing newline is not a row)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # lazy: only parquet users need pyarrow

        for index, row in enumerate(pq.read_table(path).to_pylist()):
            yield index + 1, row
        return
    if path.suffix != ".jsonl":
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .parquet")
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path} line {line_no}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path} line {line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row


def _field(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise DatasetError(f"{where}: missing field {name!r} (fields: {sorted(row)})")
    return row[name]


def _answer_text(value: Any, kind: AnswerKind, field: str, where: str) -> str:
    """The reference answer of one row, as text; raises DatasetError when it has none."""
    if kind == "field":
        text = _plain_answer(value, field, where)
    elif not isinstance(value, str):
        raise DatasetError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    elif kind == "gsm8k_hash":
        if "####" not in value:
            raise DatasetError(f"{where}: field {field!r} has no '####' answer marker")
        text = value.rsplit("####", 1)[1].strip().replace(",", "")
    else:
        text = last_boxed(value) or ""
    if not text.strip():
        raise DatasetError(f"{where}: empty answer in field {field!r}")
    return text.strip()


def _plain_answer(value: Any, field: str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise DatasetError(f"{where}: field {field!r} is not a finite number ({value})")
        # AMC23 stores 27 as 27.0; the verifier would accept either, people reading logs prefer 27.
        return str(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return ", ".join(item.strip() for item in value)  # OlympiadBench: ["$\\frac{41}{12}$"]
    raise DatasetError(
        f"{where}: field {field!r} must be a string, a number or a list of strings, got {type(value).__name__}"
    )


def normalize_question(text: str) -> str:
    """Whitespace-insensitive form of a question, for matching the same problem across files."""
    return re.sub(r"\s+", " ", text).strip()


def _uid(name: str, question: str, answer: str, seen: dict[str, int]) -> str:
    digest = hashlib.sha256(f"{normalize_question(question)}\0{answer}".encode()).hexdigest()[:12]
    uid = f"{name}-{digest}"
    seen[uid] = seen.get(uid, 0) + 1
    return uid if seen[uid] == 1 else f"{uid}-{seen[uid]}"  # a repeated problem stays distinct


def problems_from_rows(
    rows: Iterator[tuple[int, dict[str, Any]]], fields: FieldMap, name: str, origin: str, label: str
) -> list[Problem]:
    """Problems from (line, row) pairs. Errors name ``origin`` (a full path) and the line;
    ``Problem.source`` is ``"<label>:<line>"``."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for line_no, row in rows:
        where = f"{origin} line {line_no}"
        question = _field(row, fields.question, where)
        if not isinstance(question, str) or not question.strip():
            raise DatasetError(f"{where}: field {fields.question!r} must be a non-empty string")
        answer = _answer_text(_field(row, fields.answer, where), fields.answer_kind, fields.answer, where)
        problems.append(
            Problem(
                uid=_uid(name, question, answer, seen),
                question=question.strip(),
                answer=answer,
                source=f"{label}:{line_no}",
            )
        )
    return problems


def load_file(path: str | Path, fields: FieldMap, name: str | None = None) -> list[Problem]:
    """All problems of one local .jsonl/.parquet file; ``name`` (default: the file stem)
    prefixes the uids."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {str(path)!r} does not exist")
    return problems_from_rows(read_rows(path), fields, name or path.stem, str(path), path.name)


def load_hub(hub: HubSource, fields: FieldMap, name: str) -> list[Problem]:
    """All problems of a Hugging Face hub dataset split (needs internet and ``datasets``)."""
    import datasets  # lazy: heavy, and only machines with internet use it

    rows = datasets.load_dataset(hub.path, hub.config, split=hub.split)
    numbered = ((index + 1, dict(row)) for index, row in enumerate(rows))
    label = f"hf:{hub.path}/{hub.split}"
    return problems_from_rows(numbered, fields, name, label, label)


def load_problems(
    name: str, path: str | None = None, data_dir: str | None = None, *, from_hub: bool = False
) -> list[Problem]:
    """The problems of built-in dataset ``name``: from ``path`` when given (same fields), from
    the hub when ``from_hub``, else from its file in the data directory."""
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; built-in datasets: {sorted(BUILTIN_DATASETS)}")
    spec = BUILTIN_DATASETS[name]
    if path is not None:
        problems = load_file(path, spec.fields, name)
    elif from_hub:
        if spec.hub is None:
            hub_names = sorted(n for n, s in BUILTIN_DATASETS.items() if s.hub)
            raise ValueError(f"dataset {name!r} has no hub source; datasets on the hub: {hub_names}")
        problems = load_hub(spec.hub, spec.fields, name)
    else:
        problems = load_file(resolve_data_dir(data_dir) / spec.file, spec.fields, name)
    if spec.exclude is None:
        return problems
    excluded = load_problems(spec.exclude, data_dir=data_dir, from_hub=from_hub)
    held_out = {normalize_question(p.question) for p in excluded}
    return [p for p in problems if normalize_question(p.question) not in held_out]


def find_data_dir(configured: str | None = None) -> Path | None:
    """``resolve_data_dir`` for callers that can do without data (tests that skip): None
    instead of an error when no data directory is found."""
    try:
        return resolve_data_dir(configured)
    except (FileNotFoundError, ValueError):
        return None
