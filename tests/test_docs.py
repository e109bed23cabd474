"""The documentation builds strictly (a broken link or a page missing from the nav fails), the
README stays short, and the code cites only documents that are in the repository."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.pure


def test_the_docs_site_builds_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "formats" / "index.html").exists()


def test_the_readme_is_short_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_code_comments_cite_docs_in_the_repository():
    cited = set()
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts:
            continue
        cited |= set(re.findall(r"docs/([\w-]+\.md)", path.read_text()))
    assert cited, "no citation found: the pattern is wrong"
    missing = {page for page in cited if not (ROOT / "docs" / page).exists()}
    assert not missing
