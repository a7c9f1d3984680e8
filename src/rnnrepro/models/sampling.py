"""Sampling from the text model: greedy (argmax) or random (softmax(logits / T)).

A temperature is a finite number > 0; T -> 0 is greedy sampling, which a caller asks for by
name (method "greedy"), never by a temperature of 0.
"""

import torch

from rnnrepro.config.spec import check_temperature

METHODS = ("greedy", "random")


def pick(logits, method="greedy", temperature=1.0, generator=None):
    """Next character ids from the last logits (B, V)."""
    if method == "greedy":
        return logits.argmax(-1)
    if method != "random":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    probs = torch.softmax(logits.double() / check_temperature(temperature), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def feed(model, idx, state=None, chunk=30):
    """Run (B, P) ids through the model in chunks of `chunk` steps, carrying (h, c)."""
    for part in idx.split(chunk, dim=1):
        logits, state = model(part, state)
    return logits[:, -1], state


@torch.no_grad()
def generate(model, prompt, length, method="greedy", temperature=1.0, generator=None,
             state=None, chunk=30):
    """Continue every row of `prompt` (B, P) by `length` characters, carrying the state.

    Returns the new ids (B, length) and the final state.
    """
    was_training = model.training
    model.eval()
    logits, state = feed(model, prompt, state, chunk)
    if length == 0:  # nothing to add (a one-character sample is its first character)
        model.train(was_training)
        return prompt.new_empty(prompt.shape[0], 0), state
    out = []
    for _ in range(length):
        nxt = pick(logits, method, temperature, generator)
        out.append(nxt)
        logits, state = model(nxt.unsqueeze(1), state)
        logits = logits[:, -1]
    model.train(was_training)
    return torch.stack(out, dim=1), state


def samples_at(model, vocab, first, length, temperatures, generator, step=None):
    """Greedy and random samples of `length` characters that start at the ids `first`.

    One record per (temperature, method, first character), as written to samples.jsonl.
    Greedy samples do not depend on the temperature, so they are made once, with T null.
    """
    device = next(model.parameters()).device
    start = first.to(device).unsqueeze(1)
    rows = []
    runs = [("greedy", None)] + [("random", t) for t in temperatures]
    for method, temp in runs:
        ids, _ = generate(model, start, length - 1, method, 1.0 if temp is None else temp,
                          generator)
        for f, row in zip(first.tolist(), ids.tolist()):
            rows.append({"step": step, "temperature": temp, "method": method,
                         "first": vocab[f], "text": vocab[f] + "".join(vocab[i] for i in row)})
    return rows
