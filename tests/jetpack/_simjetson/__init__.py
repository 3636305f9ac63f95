"""SIMULATED JetPack internals shared by the tensorrt, uff and graphsurgeon test doubles.

Lives under tests/ only; layout.site_packages_dir() copies it into each generation's
dist-packages tree as the private package ``_simjetson``.
"""
