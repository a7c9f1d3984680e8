"""The models, one module per model: `rnn` and `lstm` on palindromes, `text` on the corpus,
and `phased`, the phased LSTM (its time gate drawn by the report; no study trains it yet);
`recurrent` holds what the palindrome models share and `bptt` the hand-written backward pass
of the RNN and the LSTM.

A palindrome model named `m` in a spec lives in `models/m.py` as its `Model`, loaded by name
only when a run needs it: a training job imports (and its rerun rule watches) its own model's
module, so adding or editing one model's module retrains no run of another model.
"""

import importlib


def palindrome_model(name):
    """The class of the palindrome model called `name` (spec.MODELS)."""
    return importlib.import_module(f"{__name__}.{name}").Model


def module_of(name):
    """The module (its path in the package) that defines the model called `name`."""
    return f"models/{name}.py"


def count_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
