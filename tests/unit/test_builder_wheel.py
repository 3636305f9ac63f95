"""The builder wheel (controller/builder_wheel.py) is built from a copy of the builder's
sources: what an earlier build left in the repository (setuptools' build/ directory, with a
module removed since) never reaches the devices, and the checkout gets nothing written."""

from __future__ import annotations

import shutil
import zipfile

from controller.builder_wheel import (
    REPO_ROOT,
    builder_source_digest,
    builder_sources,
    ensure_wheel,
)


def test_a_stale_build_directory_does_not_reach_the_wheel(tmp_path):
    repo = tmp_path / "repo"
    for relative in builder_sources():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(str(REPO_ROOT / relative), str(repo / relative))
    stale = repo / "build" / "lib" / "builder" / "removed_since.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("REMOVED = True\n")
    digest = builder_source_digest(repo)
    assert digest == builder_source_digest()  # the same sources, the same digest

    wheel = ensure_wheel(digest, cache=tmp_path / "cache", root=repo)

    names = zipfile.ZipFile(str(wheel)).namelist()
    modules = sorted(n for n in names if n.endswith(".py"))
    assert modules == sorted(str(p) for p in builder_sources() if p.suffix == ".py")
    assert sorted(p.name for p in repo.iterdir()) == ["build", "builder", "pyproject.toml"]
    assert [p.name for p in (repo / "build").iterdir()] == ["lib"]
    # Cached: the second call builds nothing.
    assert ensure_wheel(digest, cache=tmp_path / "cache", root=repo) == wheel
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [digest[:16]]
