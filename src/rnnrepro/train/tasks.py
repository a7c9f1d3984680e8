"""What `fit_unit` asks of a task: one run of a kind (palindrome.py, text.py) or a stack of
palindrome runs (stack.py) — its batches, loss, held-out evaluation, and what its checkpoints
and summary carry."""


class Task:
    """What `fit_unit` asks of every task, where a task has nothing to add."""

    stacked = False

    def scheduler(self, opt):
        return None

    def wants(self, step):
        return False

    def after_step(self, step, state, out):
        pass

    def identity(self, r=0):
        """What a run's resume.pt must have been written with, beyond its run id."""
        return {}


class SingleRun(Task):
    """The parts of a one-run task (S = 1) that `fit_unit` asks every task for."""

    S = 1

    def params(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def member_state(self, r=0):
        return self.model.state_dict()

    def load_member(self, r, state):
        self.model.load_state_dict(state)
