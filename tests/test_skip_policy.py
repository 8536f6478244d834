"""The suite's skip policy (tests/conftest.py): a skip fails unless its reason is allow-listed, whether it comes
from a test, a skipif mark or a module-level importorskip; allowed skips and xfails still pass."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

CASES = '''
import pytest

def test_plain_skip():
    pytest.skip("the ray extra is not installed")

@pytest.mark.skipif(True, reason="headless Chromium not installed")
def test_skipif():
    pass

def test_allowed():
    pytest.skip("needs a CUDA GPU (none here)")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

def test_passes():
    pass
'''


def _run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, cwd=folder, timeout=120)


def _suite(tmp_path: Path, **files: str) -> Path:
    here = Path(__file__).parent
    shutil.copy(here / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "helpers.py").write_text("def mlflow_template(factory):\n    return None\n")
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
    return tmp_path


def test_an_unexpected_skip_fails_and_an_allowed_one_passes(tmp_path):
    out = _run(_suite(tmp_path, test_cases=CASES))
    assert out.returncode == 1, out.stdout
    summary = out.stdout.strip().splitlines()[-1]
    # the plain skip fails in its call, the skipif mark in its setup (pytest counts that one an error)
    assert re.search(r"\b1 failed\b", summary) and re.search(r"\b1 error\b", summary), summary
    assert re.search(r"\b1 passed\b", summary), summary
    assert re.search(r"\b1 skipped\b", summary) and re.search(r"\b1 xfailed\b", summary), summary
    assert "unexpected skip: the ray extra is not installed" in out.stdout
    assert "unexpected skip: headless Chromium not installed" in out.stdout
    assert "SKIPPED" in out.stdout and "needs a CUDA GPU" in out.stdout  # -rs reports the allowed one


def test_a_module_level_importorskip_fails(tmp_path):
    out = _run(_suite(tmp_path, test_extra="import pytest\npytest.importorskip('no_such_module_xyz')\n"
                                            "def test_x():\n    pass\n"))
    assert out.returncode != 0 and "unexpected skip: could not import 'no_such_module_xyz'" in out.stdout, out.stdout
