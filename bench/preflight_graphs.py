"""What the catalog's graphs cost the preflight of every run, printed as figures.

The preflight (controller/preflight.py) checks every catalog graph against its ``sha256`` pin
on every run, the no-op included. It keeps the sums it read in its cache
(``.cache/graph-sums.json``, builder/graphsums.py) and takes them while each graph is
unchanged. This loads a catalog of ``--models`` pinned graphs of ``--graph-mib`` the way the
preflight does (builder/commands/check.py ``catalog_report`` with the known sums), with an
empty cache and then with the cache the first load left.

    python3 bench/preflight_graphs.py [--models 3] [--graph-mib 64] [--runs 5]
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.facts_graphs import graph_arguments, work_dirs  # noqa: E402
from builder import graphsums  # noqa: E402
from builder.commands.check import catalog_report  # noqa: E402
from tests.unit.catalog_files import write_catalog  # noqa: E402

SETTINGS = {"num_classes": 91, "input_dims": "[3, 300, 300]"}


def timed_loads(catalog, runs, cached):
    """Median wall seconds of one catalog load; ``cached``: with the sums of a first load."""
    walls = []
    for _ in range(runs):
        known = {}
        if cached:
            catalog_report(str(catalog), known_sums=known)
        started = time.monotonic()
        report = catalog_report(str(catalog), known_sums=known)
        walls.append(time.monotonic() - started)
        if "errors" in report:
            raise SystemExit("the catalog did not load: {}".format(report["errors"]))
    return statistics.median(walls)


def main(argv=None):
    args = graph_arguments(__doc__, argv)
    with tempfile.TemporaryDirectory(prefix="bench-preflight-") as scratch:
        sums = work_dirs(Path(scratch), args.models, args.graph_mib << 20)
        models = {}
        for number, written in enumerate(sums.values()):
            graph, sha256 = next((path, sha) for path, sha in written.items()
                                 if path.endswith(".pb"))
            models["model_{}".format(number)] = dict(SETTINGS, graph=graph, sha256=sha256)
        catalog = write_catalog(Path(scratch) / "models.yml", models)
        # The cache keeps no sum of a file changed within RACY_SECONDS: as on a controller
        # whose graphs were exported a while ago.
        time.sleep(graphsums.RACY_SECONDS + 0.1)
        every_graph_read = timed_loads(catalog, args.runs, cached=False)
        from_the_cache = timed_loads(catalog, args.runs, cached=True)
    total = args.models * args.graph_mib
    print("preflight's catalog load, {} pinned graphs of {} MiB ({} MiB), median of {} "
          "runs:".format(args.models, args.graph_mib, total, args.runs))
    print("  every graph read (first run, or no cache): {:.3f} s".format(every_graph_read))
    print("  sums from the cache:                       {:.3f} s".format(from_the_cache))
    print("  saved per run:                             {:.3f} s".format(
        every_graph_read - from_the_cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
