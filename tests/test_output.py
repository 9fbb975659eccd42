"""The one output writer (issue 19): staged, manifested, swapped in atomically; never over
the user's files; a killed run leaves the previous complete run or the new complete one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from transferkit import output as output_module
from transferkit.cli import main
from transferkit.output import OutputFolder, check_destination, verify
from transferkit.persistence import load_model
from transferkit.validation import TransferKitInputError

from test_cli import write_tables


def _write(dest, text="{}", overwrite=False):
    with OutputFolder(dest, overwrite=overwrite, settings={"seed": 0}) as stage:
        (stage / "results.json").write_text(text)
        (stage / "model").mkdir()
        (stage / "model" / "weights.bin").write_bytes(b"\x00\x01" * 10)
    return dest


def test_a_new_folder_gets_every_file_and_a_manifest_that_verifies(tmp_path):
    dest = _write(tmp_path / "out")
    manifest = verify(dest)
    assert {f["path"] for f in manifest["files"]} == {"results.json", "model/weights.bin"}
    assert manifest["settings"] == {"seed": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]     # nothing left beside
    (dest / "results.json").write_text('{"changed": 1}')
    with pytest.raises(TransferKitInputError, match="does not match its checksum"):
        verify(dest)
    (dest / "results.json").unlink()
    with pytest.raises(TransferKitInputError, match="listed in .* but missing"):
        verify(dest)


def test_an_empty_folder_is_used_and_a_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    verify(_write(tmp_path / "empty"))
    (tmp_path / "file").write_text("mine")
    with pytest.raises(TransferKitInputError, match="is an existing file"):
        _write(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_folder_with_the_users_files_is_refused_and_left_alone(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    (dest / "results.json").mkdir()
    with pytest.raises(TransferKitInputError, match="transferkit did not write"):
        _write(dest, overwrite=True)
    assert (dest / "notes.txt").read_text() == "mine" and (dest / "results.json").is_dir()


def test_a_previous_run_is_replaced_only_with_overwrite(tmp_path):
    dest = _write(tmp_path / "out", '{"run": 1}')
    with pytest.raises(TransferKitInputError, match="pass --overwrite"):
        _write(dest, '{"run": 2}')
    assert (dest / "results.json").read_text() == '{"run": 1}'
    _write(dest, '{"run": 2}', overwrite=True)
    assert (dest / "results.json").read_text() == '{"run": 2}'
    verify(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_previous_run_with_a_file_it_did_not_write_is_not_replaced(tmp_path):
    dest = _write(tmp_path / "out")
    (dest / "model" / "my_notes.txt").write_text("mine")
    with pytest.raises(TransferKitInputError, match=r"that run did not write \(\[.model/my_notes"):
        _write(dest, overwrite=True)
    assert (dest / "model" / "my_notes.txt").read_text() == "mine"


def test_a_failure_inside_the_run_leaves_the_destination_untouched(tmp_path):
    dest = _write(tmp_path / "out", '{"run": 1}')
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(dest, overwrite=True) as stage:
            (stage / "results.json").write_text('{"run": 2}')
            raise KeyboardInterrupt
    assert (dest / "results.json").read_text() == '{"run": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_a_killed_run_are_ignored_then_cleaned(tmp_path):
    dest = _write(tmp_path / "out", '{"run": 1}')
    stale = tmp_path / ".out.tk-staging-deadbeef0000"
    stale.mkdir()
    (stale / "results.json").write_text("half")
    verify(dest)                                        # a reader ignores it
    _write(dest, '{"run": 2}', overwrite=True)
    assert not stale.exists()


def test_without_an_atomic_exchange_the_swap_is_recovered(tmp_path, monkeypatch):
    monkeypatch.setattr(output_module, "_exchange", lambda a, b: False)
    dest = _write(tmp_path / "out", '{"run": 1}')
    _write(dest, '{"run": 2}', overwrite=True)
    assert (dest / "results.json").read_text() == '{"run": 2}'
    # a kill between the two renames: the destination is missing, the previous run beside
    previous = tmp_path / ".out.tk-previous-0123456789ab"
    os.rename(dest, previous)
    assert check_destination(dest, overwrite=True) == "previous"   # put back first
    assert (dest / "results.json").read_text() == '{"run": 2}' and not previous.exists()


# ----------------------------------------------------------------------- the CLI
def test_run_twice_needs_overwrite_and_never_touches_the_users_files(tmp_path, capsys):
    task_file = write_tables(tmp_path, n_source=120, n_target=40)
    assert main(["run", str(task_file), "--quiet"]) == 0
    first = verify(tmp_path / "out")["created"]
    assert main(["run", str(task_file), "--quiet"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert verify(tmp_path / "out")["created"] == first           # untouched
    assert main(["run", str(task_file), "--quiet", "--overwrite"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["outputs"]["model"] == str(tmp_path / "out" / "model")
    verify(tmp_path / "out")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("a,b\n1,2\n")
    assert main(["run", str(task_file), "--quiet", "--overwrite", "--output", str(mine)]) == 2
    assert "transferkit did not write" in capsys.readouterr().err
    assert (mine / "data.csv").read_text() == "a,b\n1,2\n"
    # the task folder itself (it holds the inputs) is refused before any work
    assert main(["run", str(task_file), "--quiet", "--output", str(tmp_path)]) == 2


def test_predict_never_replaces_a_file_without_overwrite_nor_a_training_file(tmp_path, capsys):
    task_file = write_tables(tmp_path, n_source=120, n_target=40)
    assert main(["run", str(task_file), "--quiet"]) == 0
    model, new = tmp_path / "out" / "model", tmp_path / "new.csv"
    assert main(["predict", str(model), str(new)]) == 0
    default = tmp_path / "new.predictions.csv"
    before = default.read_bytes()
    assert main(["predict", str(model), str(new)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["predict", str(model), str(new), "--overwrite"]) == 0
    assert default.read_bytes() == before
    source = (tmp_path / "source.csv").read_bytes()
    for victim in ("source.csv", "target.csv", "task.yaml"):
        assert main(["predict", str(model), str(new), "--overwrite",
                     "--output", str(tmp_path / victim)]) == 2
        assert "a file the model was trained from" in capsys.readouterr().err
    assert (tmp_path / "source.csv").read_bytes() == source


@pytest.mark.parametrize("damage, message", [
    ("meta_list", "must hold a JSON object of model metadata, not a list"),
    ("columns_not_list", "'columns' must be a list"),
    ("future_format", "has format 'transferkit-model/9'"),
    ("truncated", "cannot be read"),
    ("empty", "cannot be read"),
])
def test_a_damaged_model_folder_gives_a_clear_error(damage, message, tmp_path):
    import hashlib
    import shutil

    task_file = write_tables(tmp_path, n_source=120, n_target=40)
    assert main(["run", str(task_file), "--quiet"]) == 0
    model = tmp_path / "model_copy"             # passed around alone: no run manifest
    shutil.copytree(tmp_path / "out" / "model", model)
    meta = json.loads((model / "model.json").read_text())
    if damage == "meta_list":
        meta = [meta]
    elif damage == "columns_not_list":
        meta["columns"] = "income,grade"
    elif damage == "future_format":
        meta["format"] = "transferkit-model/9"
    else:
        blob = (model / "model.joblib").read_bytes()
        blob = blob[: len(blob) // 2] if damage == "truncated" else b""
        (model / "model.joblib").write_bytes(blob)
        meta["sha256"] = hashlib.sha256(blob).hexdigest()      # checksum recomputed
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(TransferKitInputError, match=message.replace("(", r"\(")):
        load_model(model)


def test_a_model_inside_a_run_folder_is_checked_against_the_manifest(tmp_path):
    task_file = write_tables(tmp_path, n_source=120, n_target=40)
    assert main(["run", str(task_file), "--quiet"]) == 0
    load_model(tmp_path / "out" / "model")
    meta = tmp_path / "out" / "model" / "model.json"
    meta.write_text(meta.read_text().replace('"label": "Class"', '"label": "Other"'))
    with pytest.raises(TransferKitInputError, match="does not match its checksum in"):
        load_model(tmp_path / "out" / "model")


# ------------------------------------------------------------------ the kill test
def _snapshot(folder: Path):
    """Names, sizes and times of everything under ``folder`` but the task's own files
    (``os.walk`` skips what vanishes while it looks: the run is moving things)."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if name.endswith((".csv", ".yaml")):
                continue
            try:
                stat = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            out.append((os.path.join(root, name), stat.st_size, stat.st_mtime_ns))
    return sorted(out)


def _run_and_kill(task_file: Path, kill_after_changes=None, kill_after_seconds=None):
    """Start ``run --overwrite``; SIGKILL it at the n-th change of the output area (or
    after some seconds).  Returns (killed before it finished, changes seen, seconds)."""
    folder = task_file.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-m", "transferkit.cli", "run", str(task_file),
                                "--quiet", "--overwrite", "--n-jobs", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    start, last, changes = time.perf_counter(), _snapshot(folder), 0
    while process.poll() is None:
        now = _snapshot(folder)
        if now != last:
            changes += 1
            last = now
        if (kill_after_changes is not None and changes >= kill_after_changes) or (
                kill_after_seconds is not None
                and time.perf_counter() - start >= kill_after_seconds):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True, changes, time.perf_counter() - start
    return False, changes, time.perf_counter() - start


def _one_complete_run(out: Path) -> dict:
    """What a reader finds: one complete run (the previous or the new), never a mix."""
    manifest = verify(out)
    results = json.loads((out / "results.json").read_text())
    assert results["outputs"]["model"] == str(out / "model")
    load_model(out / "model")
    return manifest


@pytest.mark.slow
def test_a_run_killed_at_any_moment_leaves_one_complete_run(tmp_path):
    """SIGKILL right after each change of the output area (the staging folder, each
    file in it, the manifest, the swap) and at evenly spread moments of a run: at least
    20 kills, each leaving one complete run, and a rerun succeeds."""
    task_file = write_tables(tmp_path, n_source=100, n_target=30)
    task_file.write_text(task_file.read_text() + "strategies: [pooled]\nn_splits: 2\n")
    assert main(["run", str(task_file), "--quiet"]) == 0
    out = tmp_path / "out"
    killed, changes, seconds = _run_and_kill(task_file)         # an unkilled run
    assert not killed and changes >= 3
    _one_complete_run(out)
    kills = 0
    for k in range(1, changes + 1):                             # right after each change
        kills += _run_and_kill(task_file, kill_after_changes=k)[0]
        _one_complete_run(out)
    timed = 0
    for fraction in np.random.default_rng(0).permutation(np.linspace(0.05, 0.95, 40)):
        if kills >= 22 and timed >= 8:         # (spread over the run, in random order)
            break
        kills += _run_and_kill(task_file, kill_after_seconds=seconds * fraction)[0]
        timed += 1
        _one_complete_run(out)
    assert kills >= 20
    assert main(["run", str(task_file), "--quiet", "--overwrite"]) == 0
    assert _one_complete_run(out)["format"] == "transferkit-output/1"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
