"""The deploy follows no link (issue 27, item 3), on a real directory tree without a device:
links planted below the install root (the model directory, .incoming, a push's directory, a
version directory, a file of one, current / previous pointing elsewhere, the deploy
environment's directories) are removed or refused by library/engine_deploy.py, each named,
jetson_facts's reading of the tree (module_utils/trt_deploy.py) does not go through them, and
nothing outside the install root is read, written or removed."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from controller import deploy_plan

from .test_deploy import (
    DEPLOY,
    MODEL,
    NANO,
    TRT_DEPLOY,
    TRT_DEPLOY_WRITE,
    FakeRun,
    key_of,
    push,
    sha,
    sign_push,
)

ENGINE = "TRT_{}.bin".format(MODEL)


def snapshot(directory):
    """{relative path: (kind, bytes or link target)} of everything below ``directory``."""
    found = {}
    for base, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, str(directory))
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir", None)
            else:
                with open(path, "rb") as handle:
                    found[rel] = ("file", hashlib.sha256(handle.read()).hexdigest())
    return found


@pytest.fixture
def tree(tmp_path):
    """An install root with one version deployed, and a directory outside it with a decoy
    version (a complete engine and manifest) that a planted link can point at."""
    root = tmp_path / "engines"
    first, params = push(root, b"SIMULATED engine one", key_of("k1"))
    DEPLOY.install(FakeRun(tmp_path), params)
    outside = tmp_path / "outside"
    decoy = outside / "decoy"
    decoy.mkdir(parents=True)
    (decoy / ENGINE).write_bytes(b"SIMULATED engine two")
    (decoy / "manifest.json").write_text(json.dumps({"model": MODEL, "platform_id": NANO}))
    (outside / "sentinel").write_text("must stay")
    return {"root": root, "model_dir": root / MODEL, "first": first, "outside": outside,
            "before": snapshot(outside), "tmp": tmp_path}


def prepare(tree, models):
    runner = FakeRun(tree["tmp"])
    runner.warnings = []
    runner.warn = runner.warnings.append
    result = DEPLOY.prepare(runner, {"install_root": str(tree["root"]), "prepare": models})
    return result, runner.warnings


def pushed(tree, engine, key):
    """A push as the role's copy makes it (after prepare): version and install params."""
    version = TRT_DEPLOY_WRITE.version_name(key, sha(engine))
    incoming = tree["model_dir"] / ".incoming" / version
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / ENGINE).write_bytes(engine)
    manifest = {"model": MODEL, "platform_id": NANO, "build_key": key, "engine_file": ENGINE,
                "engine_sha256": sha(engine)}
    (incoming / "manifest.json").write_text(json.dumps(manifest))
    sign_push(tree["root"], incoming, manifest, engine)
    return version, {"install_root": str(tree["root"]), "model": MODEL, "version": version,
                     "build_key": key, "engine_sha256": sha(engine), "platform_id": NANO,
                     "keep": 1}


def install(tree, params):
    runner = FakeRun(tree["tmp"])
    runner.warnings = []
    runner.warn = runner.warnings.append
    return DEPLOY.install(runner, params), runner


def assert_outside_untouched(tree):
    assert snapshot(tree["outside"]) == tree["before"]


def test_a_planted_incoming_link_is_removed_before_the_push(tree):
    incoming = tree["model_dir"] / ".incoming"
    incoming.symlink_to(tree["outside"])
    version = TRT_DEPLOY_WRITE.version_name(key_of("k2"), sha(b"SIMULATED engine two"))
    result, warnings = prepare(tree, [{"model": MODEL, "version": version}])
    assert result["removed_links"] == ["{} is a symbolic link (to {})".format(
        incoming, tree["outside"])]
    assert warnings and str(incoming) in warnings[0]
    assert incoming.is_dir() and not incoming.is_symlink()
    assert (incoming / version).is_dir() and not (incoming / version).is_symlink()
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    assert install(tree, params)[0]["changed"]
    assert os.readlink(str(tree["model_dir"] / "current")) == version
    assert not incoming.exists()
    assert_outside_untouched(tree)


def test_a_planted_link_for_the_push_and_links_inside_it_are_removed(tree):
    version = TRT_DEPLOY_WRITE.version_name(key_of("k2"), sha(b"SIMULATED engine two"))
    incoming = tree["model_dir"] / ".incoming"
    incoming.mkdir()
    (incoming / version).symlink_to(tree["outside"] / "decoy")
    result, _ = prepare(tree, [{"model": MODEL, "version": version}])
    assert result["removed_links"] == ["{} is a symbolic link (to {})".format(
        incoming / version, tree["outside"] / "decoy")]
    (incoming / version / ENGINE).symlink_to(tree["outside"] / "decoy" / ENGINE)
    result, _ = prepare(tree, [{"model": MODEL, "version": version}])
    assert result["removed_links"] == ["{} is a symbolic link (to {})".format(
        incoming / version / ENGINE, tree["outside"] / "decoy" / ENGINE)]
    assert list((incoming / version).iterdir()) == []
    assert_outside_untouched(tree)


def test_the_pushed_engine_is_never_read_through_a_link(tree):
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    engine = tree["model_dir"] / ".incoming" / version / ENGINE
    engine.unlink()
    engine.symlink_to(tree["outside"] / "decoy" / ENGINE)  # the very bytes, elsewhere
    with pytest.raises(DEPLOY.DeployError, match="is a symbolic link") as error:
        install(tree, params)
    assert error.value.kind == "link"
    assert os.readlink(str(tree["model_dir"] / "current")) == tree["first"]
    assert_outside_untouched(tree)


def test_an_incoming_link_planted_after_the_push_is_refused_not_followed(tree):
    """The case that failed with "Cannot call rmtree on a symbolic link"."""
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    moved = tree["outside"] / "incoming"
    (tree["model_dir"] / ".incoming").rename(moved)
    (tree["model_dir"] / ".incoming").symlink_to(moved)
    tree["before"] = snapshot(tree["outside"])
    with pytest.raises(DEPLOY.DeployError, match=r"\.incoming is a symbolic link") as error:
        install(tree, params)
    assert error.value.kind == "link"
    assert os.readlink(str(tree["model_dir"] / "current")) == tree["first"]
    assert_outside_untouched(tree)


def test_a_model_directory_that_is_a_link_is_refused_and_left_alone(tree):
    other = tree["outside"] / "other_model"
    other.mkdir()
    (tree["root"] / "other_model").symlink_to(other)
    tree["before"] = snapshot(tree["outside"])
    with pytest.raises(DEPLOY.DeployError, match="other_model is a symbolic link") as error:
        prepare(tree, [{"model": "other_model", "version": None}])
    assert "follows no link below" in str(error.value)
    with pytest.raises(DEPLOY.DeployError, match="other_model is a symbolic link"):
        DEPLOY.rollback(FakeRun(tree["tmp"]), {"install_root": str(tree["root"]),
                                               "model": "other_model", "platform_id": NANO})
    state = TRT_DEPLOY.install_state(str(tree["root"]))
    assert state["other_model"]["link"] == "{} is a symbolic link (to {})".format(
        tree["root"] / "other_model", other)
    assert (tree["root"] / "other_model").is_symlink()
    assert_outside_untouched(tree)


def test_a_version_directory_that_is_a_link_is_no_version_and_is_replaced(tree):
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    planted = tree["model_dir"] / version
    planted.symlink_to(tree["outside"] / "decoy")
    state = TRT_DEPLOY.install_state(str(tree["root"]))[MODEL]
    assert state["versions"] == [tree["first"]], "a link is not an installed version"
    assert state["links"] == ["{} is a symbolic link (to {})".format(
        planted, tree["outside"] / "decoy")]
    result, runner = install(tree, params)
    assert "{} is a symbolic link".format(planted) in result["removed_links"][0]
    assert runner.calls[-1][-1] == str(tree["model_dir"] / ".incoming" / version / ENGINE)
    assert planted.is_dir() and not planted.is_symlink()
    assert (planted / ENGINE).read_bytes() == b"SIMULATED engine two"
    assert_outside_untouched(tree)


def test_the_current_version_replaced_by_a_link_is_installed_again(tree):
    """current names a version whose directory became a link (to a copy outside): that is no
    engine running; the pushed copy is installed and current names a real directory again."""
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    install(tree, params)
    real = tree["model_dir"] / version
    real.rename(tree["outside"] / version)
    real.symlink_to(tree["outside"] / version)
    tree["before"] = snapshot(tree["outside"])
    assert TRT_DEPLOY.install_state(str(tree["root"]))[MODEL]["current"] is None
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    result, _ = install(tree, params)
    assert result["changed"] and result["from_version"] is None
    assert real.is_dir() and not real.is_symlink()
    assert os.readlink(str(tree["model_dir"] / "current")) == version
    assert (tree["model_dir"] / "current" / ENGINE).read_bytes() == b"SIMULATED engine two"
    assert_outside_untouched(tree)


def test_current_pointing_outside_counts_as_nothing_installed_and_is_replaced(tree):
    current = tree["model_dir"] / "current"
    current.unlink()
    decoy_version = tree["outside"] / tree["first"]
    (tree["outside"] / "decoy").rename(decoy_version)
    current.symlink_to(decoy_version)  # basename is a version name, but it is elsewhere
    tree["before"] = snapshot(tree["outside"])
    state = TRT_DEPLOY.install_state(str(tree["root"]))[MODEL]
    assert state["current"] is None
    assert state["links"] == ["{} is a symbolic link (to {})".format(current, decoy_version)]
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    result, _ = install(tree, params)
    assert result["from_version"] is None
    assert os.readlink(str(current)) == version
    assert_outside_untouched(tree)


def test_a_version_with_a_linked_engine_is_not_intact_and_never_reactivated(tree):
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    install(tree, params)
    engine = tree["model_dir"] / tree["first"] / ENGINE
    engine.unlink()
    engine.symlink_to(tree["outside"] / "decoy" / ENGINE)
    state = TRT_DEPLOY.install_state(str(tree["root"]))[MODEL]
    assert tree["first"] not in state["versions"] and state["previous"] is None
    with pytest.raises(DEPLOY.DeployError, match="no previous version"):
        DEPLOY.rollback(FakeRun(tree["tmp"]), {"install_root": str(tree["root"]),
                                               "model": MODEL, "platform_id": NANO})
    assert os.readlink(str(tree["model_dir"] / "current")) == version
    assert_outside_untouched(tree)


def test_the_deploy_environment_is_never_reached_through_a_link(tree):
    venv = tree["outside"] / "venv"
    venv.mkdir()
    (venv / "trt-deploy-env.json").write_text(json.dumps({"builder_version": "forged"}))
    (tree["root"] / ".deploy-venv").symlink_to(venv)
    (tree["root"] / ".deploy-wheels").symlink_to(tree["outside"])
    tree["before"] = snapshot(tree["outside"])
    assert TRT_DEPLOY.deploy_env_marker(str(tree["root"]), "trt-deploy-env.json") is None
    assert len(TRT_DEPLOY.root_links(str(tree["root"]))) == 2
    result, _ = prepare(tree, [])
    assert sorted(result["removed_links"]) == sorted([
        "{} is a symbolic link (to {})".format(tree["root"] / ".deploy-venv", venv),
        "{} is a symbolic link (to {})".format(tree["root"] / ".deploy-wheels",
                                               tree["outside"])])
    assert not (tree["root"] / ".deploy-venv").exists()
    assert_outside_untouched(tree)


def test_pruning_and_cleanup_remove_links_never_their_targets(tree):
    planted = tree["model_dir"] / "bbbbbbbbbbbb-000000000000"
    planted.symlink_to(tree["outside"] / "decoy")
    (tree["model_dir"] / ".incoming").mkdir()
    (tree["model_dir"] / ".incoming" / "leftover").symlink_to(tree["outside"])
    version, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    result, _ = install(tree, params)
    assert any(str(planted) in line for line in result["removed_links"])
    assert not os.path.lexists(str(planted))
    assert not (tree["model_dir"] / ".incoming").exists()
    assert_outside_untouched(tree)


def test_a_directory_tree_with_links_is_removed_without_following_them(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("x")
    doomed = tmp_path / "root" / "doomed"
    (doomed / "sub").mkdir(parents=True)
    (doomed / "sub" / "to-dir").symlink_to(outside / "keep")
    (doomed / "to-file").symlink_to(outside / "keep" / "file")
    fd = os.open(str(tmp_path / "root"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        TRT_DEPLOY_WRITE.remove_at(fd, "doomed")
    finally:
        os.close(fd)
    assert not doomed.exists() and (outside / "keep" / "file").read_text() == "x"


def test_a_version_directory_holding_a_link_is_pruned_without_following_it(tree):
    broken = tree["model_dir"] / "cccccccccccc-000000000000"
    broken.mkdir()
    (broken / ENGINE).symlink_to(tree["outside"] / "decoy" / ENGINE)
    (broken / "manifest.json").symlink_to(tree["outside"] / "decoy" / "manifest.json")
    assert "cccccccccccc-000000000000" not in TRT_DEPLOY.install_state(
        str(tree["root"]))[MODEL]["versions"]
    _, params = pushed(tree, b"SIMULATED engine two", key_of("k2"))
    result, _ = install(tree, params)
    assert "cccccccccccc-000000000000" in result["removed"]
    assert not broken.exists()
    assert_outside_untouched(tree)


def guard_files(python="/usr/bin/python3"):
    """What the plan hands engine_deploy state=prepare for the guard (controller side)."""
    files = deploy_plan.guard_files(None)
    return files + deploy_plan.guard_host_files(python, {"guard_digest": "d",
                                                         "keyring_sha256": "k"})


def prepare_guard(tree, files):
    runner = FakeRun(tree["tmp"])
    runner.warnings = []
    runner.warn = runner.warnings.append
    result = DEPLOY.prepare(runner, {"install_root": str(tree["root"]), "prepare": [],
                                     "guard": files})
    return result, runner.warnings


def test_prepare_installs_the_guard_once_without_following_links(tree):
    bin_dir = tree["root"] / "bin"
    (bin_dir / "lib").mkdir(parents=True)
    (bin_dir / "lib" / "builder").symlink_to(tree["outside"])
    files = guard_files()
    result, warnings = prepare_guard(tree, files)
    assert result["changed"]
    assert result["removed_links"] == ["{} is a symbolic link (to {})".format(
        bin_dir / "lib" / "builder", tree["outside"])]
    assert warnings
    for name in deploy_plan.GUARD_FILES:
        source = deploy_plan.REPOSITORY / name
        assert (bin_dir / "lib" / name).read_bytes() == source.read_bytes()
        assert oct((bin_dir / "lib" / name).stat().st_mode & 0o7777) == oct(0o644)
    launcher = bin_dir / "trt-engine-path"
    assert launcher.read_text().startswith("#!/usr/bin/python3 -I\n")
    assert launcher.stat().st_mode & 0o7777 == 0o755
    assert (bin_dir / "lib" / "module_utils" / "__init__.py").read_bytes() == b""
    assert (bin_dir / "lib" / "builder" / "platform").stat().st_mode & 0o7777 == 0o755
    assert json.loads((bin_dir / "guard.json").read_text()) == {"guard_digest": "d",
                                                                "keyring_sha256": "k"}
    assert result["guard_written"][-1] == "bin/guard.json"
    # Unchanged: nothing rewritten, not changed; a mode alone is put right.
    before = (bin_dir / "trt-engine-path").stat().st_ino
    result, _ = prepare_guard(tree, files)
    assert not result["changed"] and result["guard_written"] == []
    assert (bin_dir / "trt-engine-path").stat().st_ino == before
    launcher.chmod(0o700)
    result, _ = prepare_guard(tree, files)
    assert result["guard_written"] == ["bin/trt-engine-path"]
    assert launcher.stat().st_mode & 0o7777 == 0o755
    # A link planted at a file's name is replaced, its target untouched.
    (bin_dir / "guard.json").unlink()
    (bin_dir / "guard.json").symlink_to(tree["outside"] / "sentinel")
    result, _ = prepare_guard(tree, files)
    assert not (bin_dir / "guard.json").is_symlink()
    assert result["guard_written"] == ["bin/guard.json"]
    assert_outside_untouched(tree)


def test_prepare_refuses_a_guard_path_out_of_bin(tree):
    for bad in ("../escape", "lib/../../x", "/etc/passwd", ""):
        with pytest.raises(DEPLOY.DeployError):
            prepare_guard(tree, [{"path": bad, "content": "x", "mode": "0644"}])
    assert not (tree["root"] / "escape").exists()
    assert_outside_untouched(tree)
