"""`main.py label` as a user runs it: the JSON keys, accept-above with its log, exit codes."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from trained_model import tiny_run

from core.data import fixes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fitstudio(*args):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_label_json_ranks_every_image_and_accept_above_moves_the_sure_ones(tmp_path, tiny_model):
    pool = tmp_path / "pool"
    shutil.copytree(tiny_model.val_dir, pool)
    (pool / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    train = tmp_path / "train"
    shutil.copytree(tiny_model.train_dir, train)
    done = fitstudio("label", "--model", tiny_model.run_dir, "--unlabeled", str(pool), "--strategy",
                     "entropy", "--json", "--accept-above", "0.5", "--into", str(train))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["total"] == 12 and len(report["images"]) == 12
    assert set(report["images"][0]) == {"path", "suggested", "probability", "margin", "entropy", "rank"}
    entropies = [image["entropy"] for image in report["images"]]
    assert entropies == sorted(entropies, reverse=True)
    assert [os.path.basename(s["path"]) for s in report["skipped"]] == ["broken.jpg"]
    assert len(report["accepted"]) == 12 and report["refused"] == []
    assert sorted(os.listdir(pool)) == ["blue", "broken.jpg", "green", "red"]
    assert len(fixes.read_moves(str(train))) == 12
    assert sum(len(os.listdir(train / name)) for name in ("blue", "green", "red")) == 36


def test_label_text_lists_the_most_uncertain_first_within_the_limit(tmp_path, tiny_model):
    done = fitstudio("label", "--model", tiny_model.run_dir, "--unlabeled", tiny_model.val_dir,
                     "--limit", "3")
    assert done.returncode == 0, done.stderr
    assert "12 images ranked by margin" in done.stdout and "... and 9 more" in done.stdout
    assert [line.split()[0] for line in done.stdout.splitlines()[2:5]] == ["1", "2", "3"]


def test_label_exits_2_for_an_unusable_folder_or_model_or_flags(tmp_path, tiny_model):
    missing = fitstudio("label", "--model", tiny_model.run_dir, "--unlabeled", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_model = fitstudio("label", "--model", str(tmp_path / "no-run"), "--unlabeled", tiny_model.val_dir)
    assert bad_model.returncode == 2 and "does not exist" in bad_model.stderr
    half = fitstudio("label", "--model", tiny_model.run_dir, "--unlabeled", tiny_model.val_dir,
                     "--accept-above", "0.9")
    assert half.returncode == 2 and "go together" in half.stderr
