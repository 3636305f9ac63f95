"""Filters that keep package index credentials out of what Ansible prints (controller/secrets.py).

    {{ url | jetson_env_mask_url }}           https://user:token@host/simple -> https://***@host/simple
    {{ text | jetson_env_mask_text(url) }}    every credential of ``url`` (raw or %-encoded) and
                                              every user:password@ of any URL in ``text`` -> ***
"""

from controller.secrets import mask_text, mask_url


class FilterModule:
    def filters(self):
        return {"jetson_env_mask_url": mask_url, "jetson_env_mask_text": mask_text}
