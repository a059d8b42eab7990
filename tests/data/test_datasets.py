"""Dataset loading: the real files in the shared data directory, and malformed files."""

import json
import sys
import types
from pathlib import Path

import pytest

from capo_ray.data.datasets import (
    BUILTIN_DATASETS,
    DatasetError,
    FieldMap,
    HubSource,
    load_file,
    load_hub,
    load_problems,
    normalize_question,
    resolve_data_dir,
)

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA_DIR.is_dir(), reason="shared data directory not present")


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ---- built-in datasets on the real files -------------------------------------------------

EXPECTED_SIZES = {
    "gsm8k_train": 7473,
    "gsm8k_test": 1319,
    "math_train": 4500,
    "math500": 500,
    "aime24": 30,
    "amc23": 40,
    "minerva_math": 272,
    "olympiadbench": 675,
}


@needs_data
@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_builtin_sizes_and_records(name):
    problems = load_problems(name, data_dir=str(DATA_DIR))
    assert len(problems) == EXPECTED_SIZES[name]
    assert len({p.uid for p in problems}) == len(problems)
    for problem in problems:
        assert problem.question and problem.answer and problem.answer == problem.answer.strip()
        assert problem.uid.startswith(f"{name}-")
        assert problem.source.startswith(BUILTIN_DATASETS[name].file + ":")


@needs_data
def test_math_train_excludes_math500():
    train = load_problems("math_train", data_dir=str(DATA_DIR))
    test = load_problems("math500", data_dir=str(DATA_DIR))
    assert (len(train), len(test)) == (4500, 500)
    train_questions = {normalize_question(p.question) for p in train}
    assert train_questions.isdisjoint(normalize_question(p.question) for p in test)


@needs_data
def test_answer_extraction_per_kind():
    gsm8k = load_problems("gsm8k_train", data_dir=str(DATA_DIR))
    assert gsm8k[0].answer == "72" and gsm8k[0].source == "gsm8k_train.jsonl:1"
    assert all("," not in p.answer and "####" not in p.answer for p in gsm8k)
    math_train = load_problems("math_train", data_dir=str(DATA_DIR))
    assert math_train[0].answer == "2"  # last \boxed{} of "...the graph has $\boxed{2}$ vertical asymptotes."
    amc = load_problems("amc23", data_dir=str(DATA_DIR))
    assert amc[0].answer == "27"  # stored as the float 27.0
    olympiad = load_problems("olympiadbench", data_dir=str(DATA_DIR))
    assert olympiad[0].answer == "2"  # stored as the list ["2"]


@needs_data
def test_math500_field_answer_matches_its_boxed_solution():
    # The two ways of reading MATH-500 must agree, or math_train/math500 answers differ in kind.
    by_field = load_problems("math500", data_dir=str(DATA_DIR))
    by_box = load_file(DATA_DIR / "math500.jsonl", FieldMap("problem", "solution", "last_boxed"))
    same = sum(a.answer.replace(" ", "") == b.answer.replace(" ", "") for a, b in zip(by_field, by_box))
    assert same / len(by_field) > 0.9


@needs_data
def test_uids_are_stable_across_loads_and_reordering(tmp_path):
    rows = [json.loads(line) for line in (DATA_DIR / "gsm8k_test.jsonl").read_text().splitlines()[:20]]
    forward = load_file(_write_jsonl(tmp_path / "a.jsonl", rows), BUILTIN_DATASETS["gsm8k_test"].fields, "g")
    backward = load_file(_write_jsonl(tmp_path / "b.jsonl", rows[::-1]), BUILTIN_DATASETS["gsm8k_test"].fields, "g")
    assert {p.uid for p in forward} == {p.uid for p in backward}
    assert forward[0].uid == backward[-1].uid


def test_repeated_problem_gets_distinct_uids(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"q": "1+1?", "a": "2"}] * 2)
    problems = load_file(path, FieldMap("q", "a"))
    assert problems[0].uid != problems[1].uid


def test_parquet_file(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"question": ["What is 2+2?", "3*3?"], "answer": ["4", "9"]}), path)
    problems = load_file(path, FieldMap("question", "answer"))
    assert [(p.answer, p.source) for p in problems] == [("4", "p.parquet:1"), ("9", "p.parquet:2")]


# ---- malformed rows: DatasetError naming the file and the 1-based line ---------------------

GOOD = {"question": "What is 2+2?", "answer": "\\boxed{4}\n#### 4"}  # good for every answer kind
HASH = FieldMap("question", "answer", "gsm8k_hash")


@pytest.mark.parametrize(
    ("bad_row", "fields", "message"),
    [
        ('{"question": "x", "answer": ', HASH, "invalid JSON"),
        ("[1, 2]", HASH, "expected a JSON object"),
        ({"question": "What?"}, HASH, "missing field 'answer'"),
        ({"question": 7, "answer": "#### 4"}, HASH, "'question' must be a non-empty string"),
        ({"question": "What?", "answer": ["#### 4"]}, HASH, "'answer' must be a string"),
        ({"question": "What?", "answer": "no marker"}, HASH, "no '####'"),
        ({"question": "What?", "answer": "####   "}, HASH, "empty answer"),
        ({"question": "What?", "answer": "no box"}, FieldMap("question", "answer", "last_boxed"), "empty answer"),
        ({"question": "What?", "answer": ""}, FieldMap("question", "answer"), "empty answer"),
        ({"question": "What?", "answer": True}, FieldMap("question", "answer"), "string, a number or a list"),
        ({"question": "What?", "answer": {"v": 1}}, FieldMap("question", "answer"), "string, a number or a list"),
        ({"question": "What?", "answer": []}, FieldMap("question", "answer"), "string, a number or a list"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, bad_row, fields, message):
    # Line 1 good, line 2 blank (skipped, but still counted), line 3 bad.
    path = tmp_path / "bad.jsonl"
    bad_line = bad_row if isinstance(bad_row, str) else json.dumps(bad_row)
    path.write_text(json.dumps(GOOD) + "\n\n" + bad_line + "\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_file(path, fields)
    assert f"{path} line 3" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_finite_number_answer(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"q": "x?", "a": NaN}\n')
    with pytest.raises(DatasetError, match="line 1: field 'a' is not a finite number"):
        load_file(path, FieldMap("q", "a"))


def test_unknown_extension_and_missing_file(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("q,a\n")
    with pytest.raises(DatasetError, match="unsupported file type '.csv'"):
        load_file(csv, HASH)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_file(tmp_path / "nope.jsonl", HASH)


def test_unknown_answer_kind_and_dataset():
    with pytest.raises(ValueError, match="valid kinds"):
        FieldMap("q", "a", "regex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="built-in datasets: .*gsm8k_train"):
        load_problems("gsm9k")


# ---- path override and the hub ------------------------------------------------------------


def test_path_overrides_the_data_dir(tmp_path):
    path = _write_jsonl(tmp_path / "mine.jsonl", [GOOD])
    problems = load_problems("gsm8k_train", path=str(path), data_dir=str(tmp_path / "missing"))
    assert [(p.answer, p.source) for p in problems] == [("4", "mine.jsonl:1")]


def test_hub_loading_uses_datasets_lazily(monkeypatch):
    calls = []

    def fake_load_dataset(path, config, split):
        calls.append((path, config, split))
        return [{"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    problems = load_problems("gsm8k_test", from_hub=True)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [(p.answer, p.source) for p in problems] == [("4", "hf:openai/gsm8k/test:1")]
    hub = HubSource("someone/set", "train")
    with pytest.raises(DatasetError, match="hf:someone/set/train line 1: missing field 'question'"):
        monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: [{}]))
        load_hub(hub, HASH, "x")


def test_builtin_without_hub_source():
    with pytest.raises(ValueError, match="no hub source; datasets on the hub"):
        load_problems("aime24", from_hub=True)


# ---- data directory resolution -----------------------------------------------------------


def test_resolve_explicit_then_env(tmp_path, monkeypatch):
    (tmp_path / "explicit").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("CAPO_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "explicit")) == (tmp_path / "explicit").resolve()
    assert resolve_data_dir(None) == (tmp_path / "env").resolve()
    monkeypatch.setenv("CAPO_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="CAPO_DATA_DIR"):
        resolve_data_dir(None)
    with pytest.raises(FileNotFoundError, match="data.data_dir"):
        resolve_data_dir(str(tmp_path / "gone"))


def test_resolve_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPO_DATA_DIR", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_data_dir(None) == (tmp_path / "shared" / "data").resolve()


@needs_data
def test_resolve_relative_to_repo_root(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPO_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    assert resolve_data_dir(None) == DATA_DIR.resolve()


def test_resolve_error_says_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPO_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("capo_ray.data.datasets.Path.is_dir", lambda self: False)
    with pytest.raises(FileNotFoundError, match="set data.data_dir in the config or the CAPO_DATA_DIR"):
        resolve_data_dir(None)
