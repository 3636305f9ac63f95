"""The jetson_env role's input for the test playbooks that run it without a build's plan
(env_roles.yml): what the plan would give a device's round, by the plan's own functions
(controller/pin_sets.py chosen_pin_set, controller/device_work.py environment()).

    {{ jetson_device | env_roles_work(['onnx'], jetson_env_pin_set, jetson_env_onnx_pin_set) }}
"""

from controller import pin_sets
from controller.device_work import environment


def env_roles_work(device, engine_paths, named_uff="", named_onnx=""):
    l4t = device["jetson"].get("l4t")
    chosen = {path: pin_sets.chosen_pin_set(pin_sets.the_table(), path, l4t, named or "")
              for path, named in (("uff", named_uff), ("onnx", named_onnx))}
    return environment(device["jetson_state"]["root_dir"], chosen, list(engine_paths))


class FilterModule:
    def filters(self):
        return {"env_roles_work": env_roles_work}
