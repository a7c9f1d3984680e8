"""What the loop (loop.fit_unit) asks of a task: one run of a kind (palindrome.py, text.py)
or a stack of palindrome runs (stack.py). A task draws the batches of its S runs, takes one
update step, evaluates them, and says what their checkpoints and summaries carry; so the loop
never asks whether it trains one run or a stack."""

import torch

from rnnrepro.train.fastpath import optimizer_step, zero_grads


class Task:
    """What the loop asks of every task, where a task has nothing to add. Besides these, a
    task has: S (its runs), impl (the code path its step takes), model (an nn.Module the loop
    switches between train and eval), eval_columns; params() (what the optimizer steps),
    draw(gens) and update(opt, params, max_norm, x, y) (one step), evaluate() (one row of
    held-out metrics per run), and per run r: member_parameters, member_state, load_member,
    metadata and checkpoint_extra."""

    stacked = False

    def scheduler(self, opt):
        return None

    def wants(self, step):
        return False

    def after_step(self, step, runs):
        """Called after each flush with the loop's runs (loop.Run: spec, out, state)."""

    def identity(self, r=0):
        """What a run's resume.pt must have been written with, beyond its run id."""
        return {}


class SingleRun(Task):
    """The parts of a one-run task (S = 1)."""

    S = 1

    def params(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def member_parameters(self, r=0):
        return list(self.model.parameters())

    def member_state(self, r=0):
        return self.model.state_dict()

    def load_member(self, r, state):
        self.model.load_state_dict(state)

    def draw(self, gens):
        return self.batch(gens[0])

    def update(self, opt, params, max_norm, x, y, foreach=None):
        """Loss, backward, clipping and the optimizer on one batch; returns (1, 3): loss,
        batch accuracy and gradient norm before clipping."""
        zero_grads(params)
        loss, acc = self.loss(x, y)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=foreach)
        optimizer_step(opt)
        return torch.stack((loss.detach(), acc, grad_norm)).unsqueeze(0)
