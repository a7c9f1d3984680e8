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


COLUMNS = ("model", "seed", "k", "distance", "grad_norm")


def probe(models, input_length, hidden, batch, init, seeds, threads):
    """The report's probe: ‖∂L/∂h_k‖ of freshly initialised models (rows of COLUMNS), one
    batch of palindromes per model and seed, seeded by that seed."""
    from rnnrepro.data.palindromes import palindrome_batch
    from rnnrepro.models import palindrome_model

    torch.set_num_threads(threads)
    rows = []
    for name in models:
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = palindrome_model(name)(hidden, init=init)
            x, y = palindrome_batch(batch, input_length, torch.Generator().manual_seed(seed))
            norms = hidden_grad_norms(model, x, y).tolist()
            rows += [{"model": name, "seed": seed, "k": k + 1, "distance": len(norms) - k - 1,
                      "grad_norm": v} for k, v in enumerate(norms)]
    return rows
