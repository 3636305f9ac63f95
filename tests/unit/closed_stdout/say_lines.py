"""Test action: prints its lines from its worker, as the project's steps do
(controller/action.py ControllerAction.say)."""

from controller.action import ControllerAction


class ActionModule(ControllerAction):
    ARGS = ("lines",)

    def decide(self, args, task_vars):
        self.say("line {}".format(number) for number in range(int(args["lines"])))
        return {"changed": False}
