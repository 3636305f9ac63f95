"""The controller side of the engine builder: every decision the playbooks take, in one package.

Ansible plugins (plugins/action, plugins/callback) are thin adapters that call into these
modules. The package is importable because ``make venv`` puts the repository root on the
controller venv's path (a ``.pth`` file, see docs/internals.md); the devices never run it.
"""
