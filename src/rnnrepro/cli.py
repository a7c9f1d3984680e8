"""The command line the workflow's rules call: `rnnrepro <command> ...`.

Heavy modules (torch and everything built on it) are imported inside the commands, so
`--help` and argument errors answer at once.
"""

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from .spec import SPECS, SpecError


def _spec_arguments(parser, cls):
    group = parser.add_argument_group(f"{cls.kind} run spec (defaults: SPEC §3)")
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, tuple):
            group.add_argument(flag, dest=f.name, type=float, nargs="*", default=None,
                               help=f"default: {list(default)}")
        else:
            group.add_argument(flag, dest=f.name, type=type(default), default=None,
                               help=f"default: {default}")
    parser.add_argument("--spec", type=Path, help="JSON file of spec fields (flags override it)")


def _build_spec(cls, args):
    fields = json.loads(args.spec.read_text()) if args.spec else {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name)
        if value is not None:
            fields[f.name] = value
    return cls.from_dict(fields)


def cmd_train(args):
    from . import train

    spec = _build_spec(SPECS[args.kind], args)
    if args.kind == "text":
        summary = train.train_text(spec, args.corpus, args.out, inject_nan_at=args.inject_nan_at)
    else:
        summary = train.train_palindrome(spec, args.out, inject_nan_at=args.inject_nan_at)
    print(json.dumps({"run_id": summary["run_id"], "eval_final": summary["eval_final"],
                      "wall_seconds": round(summary["wall_seconds"], 2)}))


def _load_text_model(path, device):
    import torch

    from .models import TextGenerationModel
    from .spec import TextSpec

    ck = torch.load(path, map_location=device, weights_only=False)
    if ck.get("kind") != "text":
        raise SpecError(f"{path} is not a text-model checkpoint")
    spec = TextSpec.from_dict(ck["spec"])
    model = TextGenerationModel(len(ck["vocab"]), spec.hidden, spec.layers).to(device)
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def cmd_sample(args):
    import torch

    from .io import write_jsonl
    from .sampling import samples_at
    from .train import derived_seed, resolve_device

    device = resolve_device(args.device)
    rows = []
    for path in args.checkpoint:
        model, ck = _load_text_model(path, device)
        gen = torch.Generator(device=device).manual_seed(derived_seed(args.seed, "resample", ck["step"]))
        first = torch.randint(len(ck["vocab"]), (args.n,), generator=gen, device=device)
        for row in samples_at(model, ck["vocab"], first, args.length, args.temperatures, gen, ck["step"]):
            rows.append({"checkpoint": str(path), "trained_temperature": ck["spec"]["temperature"], **row})
    write_jsonl(args.out, rows)


def cmd_complete(args):
    import torch

    from .io import write_jsonl
    from .sampling import generate
    from .train import derived_seed, resolve_device

    device = resolve_device(args.device)
    model, ck = _load_text_model(args.checkpoint, device)
    index = {ch: i for i, ch in enumerate(ck["vocab"])}
    rows = []
    for n, prompt in enumerate(args.prompt):
        missing = sorted(set(prompt) - set(index))
        if missing:
            raise SpecError(f"prompt {prompt!r} has characters outside the vocabulary: {missing}")
        gen = torch.Generator(device=device).manual_seed(derived_seed(args.seed, "complete", n))
        ids = torch.tensor([[index[ch] for ch in prompt]], device=device)
        out, _ = generate(model, ids, args.length, args.method, args.temperature, gen, chunk=args.chunk)
        rows.append({"prompt": prompt, "method": args.method, "temperature": args.temperature,
                     "step": ck["step"], "completion": "".join(ck["vocab"][i] for i in out[0].tolist())})
    write_jsonl(args.out, rows)


def cmd_corpus_stats(args):
    from .data import Corpus
    from .io import write_json

    write_json(args.out, Corpus.from_file(args.corpus, args.val_fraction).stats())


def cmd_grad_probe(args):
    import torch

    from .data import palindrome_batch
    from .io import write_csv
    from .models import PALINDROME_MODELS
    from .probe import hidden_grad_norms

    torch.set_num_threads(args.threads)
    rows = []
    for model_name in args.models:
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = PALINDROME_MODELS[model_name](args.hidden, init=args.init)
            gen = torch.Generator().manual_seed(seed)
            x, y = palindrome_batch(args.batch, args.input_length, gen)
            norms = hidden_grad_norms(model, x, y).tolist()
            T = len(norms)
            rows += [{"model": model_name, "seed": seed, "k": k + 1, "distance": T - k - 1,
                      "grad_norm": v} for k, v in enumerate(norms)]
    write_csv(args.out, rows, ("model", "seed", "k", "distance", "grad_norm"))


def build_parser():
    p = argparse.ArgumentParser(prog="rnnrepro", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one run into an output directory")
    kinds = train.add_subparsers(dest="kind", required=True)
    for kind, cls in SPECS.items():
        k = kinds.add_parser(kind, help=f"one {kind} run")
        _spec_arguments(k, cls)
        if kind == "text":
            k.add_argument("--corpus", type=Path, required=True, help="UTF-8 text file")
        k.add_argument("--out", type=Path, required=True, help="run directory")
        k.add_argument("--inject-nan-at", type=int, metavar="STEP",
                       help="testing aid: make the loss NaN at this step")
        k.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="greedy and random samples from text checkpoints")
    s.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    s.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    s.add_argument("--n", type=int, default=3, help="samples per checkpoint and method")
    s.add_argument("--length", type=int, default=30)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--out", type=Path, required=True, help="JSON-lines file")
    s.set_defaults(func=cmd_sample)

    c = sub.add_parser("complete", help="continue prompts, carrying the LSTM state")
    c.add_argument("--checkpoint", type=Path, required=True)
    c.add_argument("--prompt", nargs="+", required=True)
    c.add_argument("--length", type=int, default=200)
    c.add_argument("--method", choices=("greedy", "random"), default="greedy")
    c.add_argument("--temperature", type=float, default=1.0)
    c.add_argument("--chunk", type=int, default=30)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="cpu")
    c.add_argument("--out", type=Path, required=True, help="JSON-lines file")
    c.set_defaults(func=cmd_complete)

    cs = sub.add_parser("corpus-stats", help="characters, vocabulary, book and validation bounds")
    cs.add_argument("--corpus", type=Path, required=True)
    cs.add_argument("--val-fraction", type=float, default=0.05)
    cs.add_argument("--out", type=Path, required=True)
    cs.set_defaults(func=cmd_corpus_stats)

    g = sub.add_parser("grad-probe", help="‖∂L/∂h_k‖ against k for freshly initialised models")
    g.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    g.add_argument("--input-length", type=int, default=50)
    g.add_argument("--hidden", type=int, default=128)
    g.add_argument("--batch", type=int, default=256)
    g.add_argument("--init", default="default")
    g.add_argument("--seeds", type=int, default=3)
    g.add_argument("--threads", type=int, default=1)
    g.add_argument("--out", type=Path, required=True)
    g.set_defaults(func=cmd_grad_probe)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        args.func(args)
    except (SpecError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"rnnrepro {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
