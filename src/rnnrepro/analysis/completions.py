"""Using a trained text model: load its checkpoint, sample again at other temperatures, and
continue prompts (`rnnrepro sample`, `rnnrepro complete`). Training does not import this
module, so changing it retrains nothing."""

import torch

from rnnrepro.config.spec import TextSpec
from rnnrepro.data.corpus import check_prompts
from rnnrepro.data.seeds import derived_seed
from rnnrepro.files import CheckpointError, load_checkpoint
from rnnrepro.models.sampling import generate, samples_at
from rnnrepro.models.text import TextGenerationModel


def load_text_model(path, device):
    """A text run's model.pt (or a checkpoint of it), checked, in eval mode; and the file."""
    ck = load_checkpoint(path, device, keys=("kind", "spec", "model", "step"))
    if ck["kind"] != "text" or "vocab" not in ck:
        raise CheckpointError(f"{path} is a {ck['kind']!r} checkpoint, not a text model's")
    spec = TextSpec.from_dict(ck["spec"])
    model = TextGenerationModel(len(ck["vocab"]), spec.hidden, spec.layers).to(device)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"{path}: its weights do not fit its own spec and vocabulary "
                              f"({str(err).splitlines()[0][:200]})") from None
    return model.eval(), ck


def resample(checkpoints, temperatures, n, length, seed, device):
    """Greedy and random samples (rows) from each checkpoint, a seed per checkpoint step."""
    rows = []
    for path in checkpoints:
        model, ck = load_text_model(path, device)
        gen = torch.Generator(device=device).manual_seed(derived_seed(seed, "resample", ck["step"]))
        first = torch.randint(len(ck["vocab"]), (n,), generator=gen, device=device)
        for row in samples_at(model, ck["vocab"], first, length, temperatures, gen, ck["step"]):
            rows.append({"checkpoint": str(path), "trained_temperature": ck["spec"]["temperature"],
                         **row})
    return rows


def complete(checkpoint, prompts, length, methods, temperature, seed, chunk, device):
    """Each prompt continued by `length` characters with each method (rows), carrying the
    LSTM state through the prompt `chunk` steps per forward pass."""
    model, ck = load_text_model(checkpoint, device)
    index = {ch: i for i, ch in enumerate(ck["vocab"])}
    check_prompts(prompts, ck["vocab"], f"the vocabulary of {checkpoint}")
    rows = []
    for n, prompt in enumerate(prompts):
        ids = torch.tensor([[index[ch] for ch in prompt]], device=device)
        for method in methods:
            gen = torch.Generator(device=device).manual_seed(derived_seed(seed, "complete", n))
            out, _ = generate(model, ids, length, method, temperature, gen, chunk=chunk)
            rows.append({"prompt": prompt, "method": method,
                         "temperature": temperature if method == "random" else None,
                         "step": ck["step"], "chunk": chunk,
                         "completion": "".join(ck["vocab"][i] for i in out[0].tolist())})
    return rows
