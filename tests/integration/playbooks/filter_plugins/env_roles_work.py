"""The jetson_env role's input for the test playbooks that run it without a build's plan
(env_roles.yml): what the plan would give a device's round, by the plan's own functions
(controller/pin_sets.py chosen_pin_set and swap_mib_for, controller/device_work.py
environment()).

    {{ jetson_device | env_roles_work(['onnx'], env_roles_settings) }}

``env_roles_settings``: the inventory's pin sets by engine path (uff, onnx) and its swap_mib
and swap_below_mib (jetson_env_*); settings left empty take their defaults in
controller/schema.py.
"""

from controller import pin_sets, schema
from controller.device_work import environment


def env_roles_work(device, engine_paths, settings):
    facts = device["jetson"]
    l4t = facts.get("l4t")
    chosen = {path: pin_sets.chosen_pin_set(pin_sets.the_table(), path, l4t,
                                            settings.get(path) or "")
              for path in ("uff", "onnx")}

    def setting(name):
        value = settings.get(name)
        return int(schema.BY_NAME["jetson_env_" + name].default if value in (None, "")
                   else value)

    swap = pin_sets.swap_mib_for(facts.get("memory_mib"), setting("swap_mib"),
                                 setting("swap_below_mib"))
    return environment(device["jetson_state"]["root_dir"], chosen, list(engine_paths),
                       device={"tensorrt_full": facts.get("tensorrt_full"),
                               "python": facts.get("python")}, swap_mib=swap)


class FilterModule:
    def filters(self):
        return {"env_roles_work": env_roles_work}
