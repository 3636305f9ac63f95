"""--check writes nothing, on the controller or on any device, for both playbooks.

On a simulated fleet with a store that holds engines (a real build) and devices that run some
of them (a real deploy), both playbooks run in check mode where a real run would change
something: the build with a model new to the catalog (its spec not checked yet: a real run
records the check in .cache/graph-checks; every device would build it), the deploy with a model
the devices do not run yet (every device would receive it), and the store's index.json gone (a
real run rebuilds and writes it). The store, the repository's working tree and each device's
builder and engine trees (and the deploy user's ~/.ansible) are compared before and after:
paths, types, sizes, modes, modification times, link targets. The output still says what a real
run would do.

The fleet, the build and the deploy runner are test_deploy_engines.py's fixtures, on a smaller
fleet (one device of each path: the Nano's UFF, the Xavier's ONNX on JetPack 5).
"""

import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import REPO, wait_until_the_run_let_go
from tests.integration.test_deploy_engines import (  # noqa: F401  (fixtures)
    MODELS,
    V1,
    V2,
    builder,
    deployer,
    statuses,
)

FLEET = "nano=1,xavier@35.4.1=1"
DEVICE_TREES = ("/opt/trt-builder", "/opt/trt-engines", "/root/.ansible")
NEW_MODEL = "ssd_selected_for_check"


def tree(root):
    """{relative path: (type, size, mode, mtime_ns, link target)} of everything below ``root``
    (and ``root`` itself), links not followed; {} when it does not exist. Python's own
    __pycache__ directories are left out: the interpreter that runs ansible-playbook writes
    them when it imports a module whose cache is stale, whatever the run does."""
    found = {}
    root = Path(root)
    if not os.path.lexists(str(root)):
        return found
    for directory, subdirs, files in os.walk(str(root)):
        subdirs[:] = sorted(d for d in subdirs if d not in ("__pycache__", ".git"))
        for name in [""] + subdirs + files:
            path = Path(directory) / name if name else Path(directory)
            info = os.lstat(str(path))
            found[str(path.relative_to(root))] = (
                stat.S_IFMT(info.st_mode), info.st_size if not stat.S_ISDIR(info.st_mode) else 0,
                stat.S_IMODE(info.st_mode), info.st_mtime_ns,
                os.readlink(str(path)) if stat.S_ISLNK(info.st_mode) else None)
    return found


def snapshot(fleet, store):
    trees = {"store": tree(store), "repository": tree(REPO)}
    for host in fleet.names:
        for path in DEVICE_TREES:
            trees["{}:{}".format(host, path)] = tree(fleet.device_path(host, path))
    return trees


def differences(before, after):
    """'where: path: before -> after' for every entry that changed, appeared or went."""
    lines = []
    for where in before:
        old, new = before[where], after[where]
        for path in sorted(set(old) | set(new)):
            if old.get(path) != new.get(path):
                lines.append("{}: {}: {} -> {}".format(where, path, old.get(path), new.get(path)))
    return lines


@pytest.mark.fleet
def test_check_mode_of_both_playbooks_writes_nothing_anywhere(
        fleet, builder, deployer):  # noqa: F811 (the fixtures imported above)
    deployed = deployer.run(extra_vars={"engine_models": [V1]})
    assert deployed.returncode == 0, deployed.describe()
    assert set(statuses(deployed).values()) == {"deployed"}, deployed.describe()
    # A model new to the catalog: V2's graph under another name with another NMS threshold (a
    # spec not checked before, an engine of its own).
    catalog = yaml.safe_load(builder.catalog.read_text())
    catalog["models"][NEW_MODEL] = dict(catalog["models"][V2], nms_threshold=0.5)
    builder.catalog.write_text(yaml.safe_dump(catalog))
    (builder.store / "index.json").unlink()
    # The deploy's run lock goes with its process, a moment after it returned.
    assert wait_until_the_run_let_go(builder.store)
    before = snapshot(fleet, builder.store)
    assert before["store"] and all(before["{}:/opt/trt-engines".format(h)]
                                   for h in fleet.names), "nothing to compare"

    build = builder.run("--check", extra_vars={"engine_models": MODELS + [NEW_MODEL]})
    assert build.returncode == 0, build.describe()
    for host in fleet.names:
        assert {r["model"]: r["status"] for r in build.summary() if r["host"] == host} == \
            dict(dict.fromkeys(MODELS, "cached"), **{NEW_MODEL: "would build"}), \
            build.describe()
    assert build.builds() == [], build.describe()

    deploy = deployer.run("--check")
    assert deploy.returncode == 0, deploy.describe()
    for host in fleet.names:
        assert statuses(deploy)[(host, V1)] == "up to date", deploy.describe()
        assert statuses(deploy)[(host, V2)] == "would deploy", deploy.describe()
    assert "nothing -> " in deploy.output

    changed = differences(before, snapshot(fleet, builder.store))
    assert changed == [], "--check changed:\n" + "\n".join(changed)
