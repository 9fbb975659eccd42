"""Reading and writing files (transferkit.io), model folders (transferkit.persistence),
task files (transferkit.taskfile) and the import weight of the package."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

import transferkit.io as tkio
from transferkit.baselines import Pooled
from transferkit.domains import read_domains, stack_domains
from transferkit.io import read_table, write_atomic, write_json, write_table
from transferkit.persistence import load_model, save_model
from transferkit.preprocessing import TabularPreprocessor
from transferkit.taskfile import load_task
from transferkit.validation import TransferKitInputError


def _run_python(code, *args, cwd=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def loans():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "amount": rng.normal(10, 3, n).round(2),
            "grade": rng.choice(["A", "B", "C"], n),
            "state": ["CA"] * 30 + ["TX"] * 20 + ["WY"] * 10,
            "Class": np.where(rng.random(n) < 0.4, "bad", "good"),
        }
    )


# ---------------------------------------------------------------------- read_table
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_write_then_read_table_round_trip(tmp_path, loans, suffix):
    path = write_table(tmp_path / f"loans{suffix}", loans)
    back = read_table(path)
    pd.testing.assert_frame_equal(back, loans, check_dtype=False)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_tsv_is_tab_separated(tmp_path, loans):
    write_table(tmp_path / "t.tsv", loans)
    assert (tmp_path / "t.tsv").read_text().splitlines()[0] == "amount\tgrade\tstate\tClass"


def test_read_table_missing_file(tmp_path):
    with pytest.raises(TransferKitInputError, match=r"File not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv")


def test_read_table_directory(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(TransferKitInputError, match="is a folder"):
        read_table(tmp_path / "d.csv")


def test_read_table_unsupported_extension(tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(TransferKitInputError, match=r"unsupported file type '\.xlsx'"):
        read_table(tmp_path / "data.xlsx")


def test_read_table_empty_file(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(TransferKitInputError, match=r"e\.csv is empty"):
        read_table(tmp_path / "e.csv")


def test_read_table_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(TransferKitInputError, match="header but no rows"):
        read_table(tmp_path / "h.csv")


def test_read_table_blank_csv(tmp_path):
    (tmp_path / "b.csv").write_text("\n\n")
    with pytest.raises(TransferKitInputError, match=r"Cannot read .*b\.csv as CSV"):
        read_table(tmp_path / "b.csv")


def test_read_table_corrupt_parquet(tmp_path, loans):
    good = tmp_path / "good.parquet"
    write_table(good, loans)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TransferKitInputError, match=r"Cannot read .*bad\.parquet as PARQUET"):
        read_table(bad)


def test_write_table_unsupported_type(tmp_path, loans):
    with pytest.raises(TransferKitInputError, match=r"Unsupported output type '\.xls'"):
        write_table(tmp_path / "out.xls", loans)


# -------------------------------------------------------------------- write_atomic
def test_write_atomic_text_bytes_and_folders(tmp_path):
    path = write_atomic(tmp_path / "sub" / "deeper" / "a.txt", "héllo")
    assert path.read_bytes() == "héllo".encode("utf-8")
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_write_atomic_refuses_protected_input(tmp_path):
    source = tmp_path / "input.csv"
    source.write_text("a\n1\n")
    alias = tmp_path / "sub" / ".." / "input.csv"  # another spelling of the same file
    (tmp_path / "sub").mkdir()
    for target in (source, alias):
        with pytest.raises(TransferKitInputError, match="Refusing to write.*input"):
            write_atomic(target, "overwritten", protect=[source])
    assert source.read_text() == "a\n1\n"
    # other paths are fine even with protect given; missing protected paths are ignored
    write_atomic(tmp_path / "out.csv", "x", protect=[source, tmp_path / "ghost.csv"])
    assert (tmp_path / "out.csv").read_text() == "x"


def test_write_atomic_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(tkio.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    monkeypatch.undo()
    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # not bytes or text: fails while writing
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_json_rejects_nan(tmp_path):
    write_json(tmp_path / "ok.json", {"a": [1, 2.5]})
    assert json.loads((tmp_path / "ok.json").read_text()) == {"a": [1, 2.5]}
    with pytest.raises(ValueError):
        write_json(tmp_path / "nan.json", {"a": float("nan")})
    assert not (tmp_path / "nan.json").exists()


# --------------------------------------------------------------------- persistence
@pytest.fixture
def saved(tmp_path, loans):
    features = loans.drop(columns=["Class", "state"])
    src, tgt = loans["state"] != "WY", loans["state"] == "WY"
    X, y = stack_domains(features[src], loans.loc[src, "Class"], features[tgt],
                         loans.loc[tgt, "Class"])
    model = make_pipeline(TabularPreprocessor(), Pooled(target_weight=2.0)).fit(X, y)
    folder = save_model(tmp_path / "model", model, feature_frame=X, task="classification",
                        classes=model.classes_, positive_label="bad", label="Class",
                        strategy="pooled")
    return folder, model, X


def test_save_model_metadata(saved):
    folder, model, X = saved
    meta = json.loads((folder / "model.json").read_text())
    assert meta["columns"] == [{"name": "amount", "dtype": "float64"},
                               {"name": "grade", "dtype": str(X["grade"].dtype)}]
    assert meta["classes"] == ["bad", "good"] and meta["positive_label"] == "bad"
    assert meta["label"] == "Class" and meta["n_features"] == 2
    import hashlib
    assert meta["sha256"] == hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()


def test_load_in_fresh_process_gives_identical_predictions(saved, tmp_path, loans):
    folder, model, X = saved
    new = loans.drop(columns=["state"]).sample(frac=1.0, random_state=1)  # label present
    data = write_table(tmp_path / "new.csv", new)
    expected = model.predict_proba(new.drop(columns=["Class"]))
    out = tmp_path / "proba.npy"
    result = _run_python(
        """
        import sys, numpy as np
        from transferkit.io import read_table
        from transferkit.persistence import load_model
        model = load_model(sys.argv[1])
        data = read_table(sys.argv[2])
        np.save(sys.argv[3], model.predict_proba(data, ignore=["Class"]))
        print(list(model.predict(data, ignore=["Class"])[:5]))
        """,
        folder, data, out,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-12)
    assert result.stdout.strip() == str(list(model.predict(new.drop(columns=["Class"]))[:5]))


def test_tampered_model_is_refused(saved):
    folder, model, X = saved
    path = folder / "model.joblib"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(TransferKitInputError, match="checksum"):
        load_model(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(TransferKitInputError, match="not a transferkit model folder"):
        load_model(tmp_path)


def test_corrupt_metadata(saved):
    folder, *_ = saved
    (folder / "model.json").write_text("{not json")
    with pytest.raises(TransferKitInputError, match="not valid JSON"):
        load_model(folder)


def test_other_sklearn_version_warns(saved):
    folder, model, X = saved
    meta = json.loads((folder / "model.json").read_text())
    meta["sklearn_version"] = "0.0.1"
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="scikit-learn 0.0.1"):
        loaded = load_model(folder)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_column_checks_at_predict(saved):
    folder, model, X = saved
    loaded = load_model(folder)
    with pytest.raises(TransferKitInputError, match=r"missing columns \['grade'\]"):
        loaded.predict(X.drop(columns=["grade"]))
    with pytest.raises(TransferKitInputError, match=r"unexpected columns \['Class'\]"):
        loaded.predict(X.assign(Class="good"))
    with pytest.raises(TransferKitInputError, match=r"unexpected columns \['amount_usd'\]"):
        loaded.predict(X.rename(columns={"amount": "amount_usd"}).assign(amount=X["amount"]))
    with pytest.raises(TransferKitInputError, match="pass a DataFrame"):
        loaded.predict(X.to_numpy())
    # the label column is dropped when named in ignore; column order is restored
    shuffled = X.assign(Class="good")[["Class", "grade", "amount"]]
    np.testing.assert_array_equal(loaded.predict(shuffled, ignore=["Class"]), model.predict(X))


def test_array_model_checks_width(tmp_path):
    rng = np.random.default_rng(0)
    X, y = stack_domains(rng.normal(size=(20, 3)), np.tile([0, 1], 10),
                         rng.normal(size=(8, 3)), np.tile([0, 1], 4))
    model = Pooled().fit(X, y)
    loaded = load_model(save_model(tmp_path / "m", model, n_features=3))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(TransferKitInputError, match="expects 3 features"):
        loaded.predict(X[:, :2])


# ------------------------------------------------------------------------ taskfile
@pytest.fixture
def task_dir(tmp_path, loans):
    folder = tmp_path / "task"
    folder.mkdir()
    write_table(folder / "loans.csv", loans)
    for state in ("CA", "TX"):
        part = loans[loans["state"] == state].drop(columns=["state"])
        write_table(folder / f"{state.lower()}.csv", part)
    target = loans[loans["state"] == "WY"].drop(columns=["state"])
    write_table(folder / "wy.parquet", target)
    write_table(folder / "wy_unlabelled.csv", target.drop(columns=["Class"]))
    return folder


def test_task_yaml_one_table(task_dir, tmp_path, monkeypatch):
    (task_dir / "task.yaml").write_text(textwrap.dedent("""
        data: loans.csv
        label: Class
        domain_column: state
        target_domains: [WY]
        source_domains: CA        # a single value is one domain
        metric: f1_pos
        positive_label: bad
        n_splits: 3
    """))
    monkeypatch.chdir(tmp_path)  # paths are relative to the task file, not the cwd
    spec = load_task(task_dir / "task.yaml")
    assert spec.X.shape == (40, 2) and list(spec.X.columns) == ["amount", "grade"]
    assert spec.y["domain"].value_counts().to_dict() == {"CA": 30, "target": 10}
    assert spec.options == {"metric": "f1_pos", "positive_label": "bad", "n_splits": 3}
    assert spec.label == "Class" and spec.inputs == [(task_dir / "loans.csv").resolve()]


def test_task_toml_separate_files(task_dir, loans):
    (task_dir / "task.toml").write_text(textwrap.dedent("""
        label = "Class"
        target = "wy.parquet"
        random_state = 4
        [sources]
        California = "ca.csv"
        Texas = "tx.csv"
    """))
    spec = load_task(task_dir / "task.toml")
    info = read_domains(spec.y)
    assert info.source_domains == ["California", "Texas"]
    assert int(info.labelled_target.sum()) == 10
    expected = loans.sort_values("state", key=lambda s: s.map({"CA": 0, "TX": 1, "WY": 2}),
                                 kind="stable")
    np.testing.assert_allclose(spec.X["amount"], expected["amount"])
    assert spec.y["label"].tolist() == expected["Class"].tolist()
    assert spec.options == {"random_state": 4}
    assert len(spec.inputs) == 3


def test_task_list_of_sources_and_unlabelled_target(task_dir):
    (task_dir / "t.yml").write_text(
        "label: Class\nsources: [ca.csv, tx.csv]\ntarget: wy_unlabelled.csv\n"
        "drop_columns: [grade]\n")
    spec = load_task(task_dir / "t.yml")
    assert list(spec.X.columns) == ["amount"]
    assert read_domains(spec.y).source_domains == ["ca", "tx"]
    assert spec.y.loc[spec.y["is_target"], "label"].isna().all()


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("a.yaml", "label: Class\ndata: loans.csv\ndomain_column: state\n"
                   "target_domains: [WY]\nmetrc: f1\n", "unknown setting 'metrc'"),
        ("b.yaml", "data: loans.csv\ndomain_column: state\ntarget_domains: [WY]\n",
         "must name the label column"),
        ("c.yaml", "label: Class\ndata: loans.csv\ndomain_column: state\n"
                   "target_domains: [WY]\nsources: [ca.csv]\ntarget: wy.parquet\n",
         "either 'data'.*not both"),
        ("d.yaml", "label: Class\ndata: [unclosed\n", "Cannot parse task file"),
        ("e.toml", "label = \"Class\"\ndata = \n", "Cannot parse task file"),
        ("f.json", "{}", r"must end in \.yaml, \.yml or \.toml"),
        ("g.yaml", "- just\n- a list\n", "mapping of settings"),
        ("h.yaml", "label: Class\ndata: loans.csv\ntarget_domains: [WY]\n",
         "must set 'domain_column'"),
        ("i.yaml", "label: Class\nsources: [ca.csv]\n", "must give the data"),
        ("j.yaml", "label: Klass\ndata: loans.csv\ndomain_column: state\n"
                   "target_domains: [WY]\n", r"Unknown label column 'Klass'"),
        ("k.yaml", "label: Class\ndata: loans.csv\ndomain_column: state\n"
                   "target_domains: [NV]\n", r"Target domain\(s\) \['NV'\] not found"),
        ("l.yaml", "label: Class\ndata: missing.csv\ndomain_column: state\n"
                   "target_domains: [WY]\n", "File not found"),
        ("m.yaml", "label: Class\nsources: [ca.csv]\ntarget: wy.parquet\n"
                   "drop_columns: [nope]\n", r"drop_columns \['nope'\]"),
        ("n.yaml", "label: Class\nsources: {CA: wy_unlabelled.csv}\ntarget: wy.parquet\n",
         r"In source 'CA': Unknown label column 'Class'"),
    ],
)
def test_task_file_errors(task_dir, name, text, pattern):
    (task_dir / name).write_text(text)
    with pytest.raises(TransferKitInputError, match=pattern):
        load_task(task_dir / name)


def test_task_file_missing(tmp_path):
    with pytest.raises(TransferKitInputError, match="Task file not found"):
        load_task(tmp_path / "none.yaml")


# ------------------------------------------------------------------- import weight
_NO_TORCH = """
import importlib, json, sys
attempts = []

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "tensorflow", "transformers"):
            attempts.append(name)
        return None

sys.meta_path.insert(0, Spy())
errors = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except Exception as exc:
        errors[module] = repr(exc)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
print(json.dumps({"attempts": attempts, "heavy": heavy, "errors": errors}))
"""

CORE = ["transferkit", "transferkit.domains", "transferkit.preprocessing",
        "transferkit.baselines", "transferkit.instance_based", "transferkit.io",
        "transferkit.persistence", "transferkit.taskfile", "transferkit.datasets"]


def test_import_does_not_import_torch():
    """Importing the core (and the autopilot) neither imports nor even looks for torch."""
    result = _run_python(_NO_TORCH, *CORE, "transferkit.autopilot")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [] and report["heavy"] == [], report
    core_errors = {m: e for m, e in report["errors"].items() if m in CORE}
    assert core_errors == {}
    if "transferkit.autopilot" in report["errors"]:
        pytest.skip(f"transferkit.autopilot does not import yet: {report['errors']}")


def test_import_spy_detects_torch():
    """The spy above does see an import attempt (guards against a vacuous pass)."""
    probe = "errors = {}\ntry:\n    import torch\nexcept ImportError:\n    pass"
    result = _run_python(_NO_TORCH.replace("errors = {}", probe), "json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"][:1] == ["torch"]
