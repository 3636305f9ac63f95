"""``lookup('engine_rollout')``: the deploy play's batches from the rollout variables
(engine_deploy_canary, engine_deploy_batch, engine_deploy_max_fail_percentage), their defaults
those of controller/schema.py (ROLLOUT_VARIABLES): ``{serial, max_fail_percentage, problem}``.

playbooks/deploy_engines.yml templates its ``serial`` and ``max_fail_percentage`` with it when
the play starts; its first task fails with ``problem`` when a setting is wrong."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

try:
    from controller import schema
except ImportError as error:
    raise AnsibleError(
        "the controller package is not importable ({}): run `make venv` (or `python3 "
        "tools/controller_path.py`)".format(error)) from error


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        values = {variable.name: self._templar.template(variables[variable.name])
                  for variable in schema.ROLLOUT_VARIABLES if variable.name in variables}
        return [schema.rollout(values)]
