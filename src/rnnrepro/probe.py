"""Measured vanishing gradients: ‖∂L/∂h_k‖ at every time step k (report, Question 1.1)."""

import torch
import torch.nn.functional as F


def hidden_grad_norms(model, digits, targets):
    """Mean over the batch of ‖∂L_i/∂h_k‖ for k = 1..T, L_i the loss of sample i at step T.

    Uses the model's reference path, whose hidden states are nodes of the graph.
    """
    hs = model.states(digits)
    logits = F.linear(hs[-1], model.W_p, model.b_p)
    loss = F.cross_entropy(logits, targets, reduction="sum")
    grads = torch.autograd.grad(loss, hs)
    return torch.stack([g.norm(dim=-1).mean() for g in grads])
