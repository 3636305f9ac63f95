"""The base of the project's callback plugins (plugins/callback/, and the tests' and the
bench's): what Ansible asks of each of them, said once. A plugin subclasses it and names
itself (CALLBACK_NAME)."""

from __future__ import annotations

from ansible.plugins.callback import CallbackBase


class ProjectCallback(CallbackBase):
    """A callback beside the output's own (aggregate), loaded only when ansible.cfg's
    callbacks_enabled names it."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NEEDS_ENABLED = True
