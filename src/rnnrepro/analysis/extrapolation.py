"""Length extrapolation (Section 2, claim 12): palindrome models trained at one input length,
scored on held-out palindromes of longer ones: at input length T a model reads T digits and
names the next, the first one again, so a longer input asks it to keep the first digit for
longer than it was trained to."""

import torch
import torch.nn.functional as F

from rnnrepro.config.kinds import SPECS
from rnnrepro.data.palindromes import palindrome_test_set
from rnnrepro.files import load_checkpoint

COLUMNS = ("study", "run_id", "model", "tau_low", "tau_high", "seed", "train_length", "length",
           "accuracy", "loss")
CHUNK = 1000  # held-out sequences per forward pass


def load_model(path):
    """A palindrome or phased run's final weights (model.pt: tensors and plain values only),
    in the model its spec names, with that spec."""
    from rnnrepro.models import palindrome_model
    from rnnrepro.models.phased import PhasedLSTM

    ck = load_checkpoint(path, keys=("kind", "spec", "model"))
    spec = SPECS[ck["kind"]].from_dict(ck["spec"])
    if spec.kind not in ("phased", "palindrome"):
        raise ValueError(f"{path}: a {spec.kind} run is not a palindrome model")
    onehot = spec.input_encoding == "onehot"
    if spec.kind == "phased":
        model = PhasedLSTM(spec.hidden, onehot=onehot, **spec.timing())
    else:
        model = palindrome_model(spec.model)(spec.hidden, onehot=onehot, init=spec.init,
                                             init_std=spec.init_std)
    model.load_state_dict(ck["model"])
    return model.eval(), spec


@torch.no_grad()
def score(model, length, size):
    """Held-out accuracy and loss of `model` on `size` palindromes of `length`."""
    x, y = palindrome_test_set(length, size)
    loss = correct = 0.0
    for xb, yb in zip(x.split(CHUNK), y.split(CHUNK)):
        logits = model(xb)
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
    return correct / len(y), loss / len(y)


def extrapolate(runs, lengths, size, threads=1):
    """Rows of COLUMNS: each run (study, folder) scored at each of `lengths`."""
    torch.set_num_threads(threads)
    rows = []
    for study, folder in runs:
        model, spec = load_model(folder / "model.pt")
        timed = spec.kind == "phased"
        for length in lengths:
            accuracy, loss = score(model, length, size)
            rows.append({"study": study, "run_id": spec.run_id(),
                         "model": "phased" if timed else spec.model,
                         "tau_low": spec.tau_low if timed else None,
                         "tau_high": spec.tau_high if timed else None, "seed": spec.seed,
                         "train_length": spec.input_length, "length": length,
                         "accuracy": accuracy, "loss": loss})
    return rows
