"""A run's training job, and the other runs it may take on (`execution.runs_per_job`).

Every run has a Snakemake job of its own, so the plan `snakemake -n` shows, the reruns, the
logs and the cluster submission all stay per run. A job trains its own run first. Where
runs_per_job allows more (0 = auto: 1 on the CPU, where separate processes use the cores
best, and in a SLURM job; many on CUDA, where one process and one CUDA start should serve
many small runs), it
then trains runs of the workflow that nobody has trained yet (the run table the workflow
writes when it starts), several at once in one batched step where their shapes agree
(stack.py), and leaves each of them finished in its own run directory's `.staged/` folder.
When Snakemake comes to such a run's own job, the job finds it done for the same run id and
the same training code, moves it into place, and ends within a second.

So nothing is trained that Snakemake does not plan, and whatever Snakemake decides stays
true: the run table lists the training jobs Snakemake plans in this invocation (where its
plan cannot be read: the runs with no summary yet); a run it does not plan is never touched;
a run it plans is trained, by its own job or ahead of it, by the code this job runs. Adding a
seed or changing one study's value plans only the new runs, and only they are taken on. The
rules that keep jobs apart:

- a job holds a run's claim (an exclusive flock on `<run dir>/.claim`) while it trains
  that run; the kernel drops it when the process ends, however it ends;
- a run is pending while neither its own summary.json nor a staged one carries its current
  fingerprint (run id, sha256 of the run's code, and of the corpus for text);
- checkpoints: each run keeps its own resume.pt, in the folder it trains in. A job that
  takes a run on moves the newest resume.pt there first, so a killed job's runs continue
  from their checkpoints in whichever job trains them next, alone or stacked with others
  at the same step;
- a run that diverges (or fails) in another run's job leaves a failure note in `.staged/`;
  its own job reports it (naming the run and the step) and removes the note, so that the
  next attempt trains it again. A failure in another run never fails the job of a run that
  finished, and a job's own finished run is also kept in its `.staged/` until the job ends,
  so that a job killed while it trains others' runs loses nothing of its own.

Claims need flock on the results' filesystem; where it has none (some cluster mounts), a job
trains its own run only, with a warning. With one run per job a job claims its own run only.
"""

import errno
import functools
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from rnnrepro import sources
from rnnrepro.config.kinds import SPECS
from rnnrepro.files import write_json
from rnnrepro.run import gpus

log = logging.getLogger("rnnrepro")

RUN_TABLE = "results/runs/table.json"  # written by the workflow when it starts
STAGED = ".staged"
CLAIM = ".claim"
FAILED = "failed.json"

_DIGESTS = {}


def file_digest(path):
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _DIGESTS[key]


@functools.cache
def code_digest(modules):
    """The training modules as this process runs them: each set hashed once, when this
    process first asks, so that an edit while a long job runs is not taken for the code
    that trained its runs."""
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode() + b"\0" + file_digest(sources.PACKAGE / name).encode())
    return h.hexdigest()


def fingerprint(spec, corpus=None):
    """What a run's results are a function of: its id, its code (sources.run_code: the loop,
    its task and its model), the corpus."""
    code = code_digest(tuple(sources.run_code(spec)))
    parts = [spec.run_id(), code, file_digest(corpus) if corpus else None]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


@dataclass
class Entry:
    """One run of the run table."""

    spec: object
    dir: Path
    corpus: Path = None

    @property
    def run_id(self):
        return self.spec.run_id()

    @property
    def kind(self):
        return self.spec.kind

    def cost(self):
        s = self.spec
        per_step = {"text": 30.0, "palindrome": 4.0 if getattr(s, "model", "") == "lstm" else 1.0,
                    "phased": 4.0 * s.input_length / 10 if s.kind == "phased" else 0,
                    "frequency": 15.0 if getattr(s, "model", "") == "phased" else 3.0}
        return s.steps * per_step[self.kind]


def write_run_table(path, runs, run_dir, corpus, planned=None):
    """The runs that this invocation's training jobs may take on: `planned` (run ids of the
    training jobs Snakemake will run), or where that is None, the runs with no summary yet."""
    if planned is None:
        planned = {r for r in runs if not (Path(run_dir(r)) / "summary.json").exists()}
    rows = [{"run_id": r, "kind": run.kind, "spec": run.spec.to_dict(),
             "dir": str(run_dir(r)), "corpus": str(corpus) if run.kind == "text" else None}
            for r, run in runs.items() if r in planned]
    write_json(path, {"runs": rows})


def read_run_table(path):
    """The run table's entries; [] where there is none (a job run by hand)."""
    if not path or not Path(path).exists():
        return []
    try:
        rows = json.loads(Path(path).read_text())["runs"]
        return [Entry(SPECS[r["kind"]].from_dict(r["spec"]), Path(r["dir"]),
                      Path(r["corpus"]) if r["corpus"] else None) for r in rows]
    except (ValueError, KeyError, TypeError) as err:
        log.warning("ignoring the run table %s, which cannot be read (%s)", path, err)
        return []


class NoLocks(OSError):
    """The filesystem of the results has no flock."""


class Claim:
    """A run's claim: an exclusive flock on `<run dir>/.claim`, held while training it. The
    holder removes the file as it lets go, so that a folder keeps no trace of a claim; a
    process that locked a file since removed takes a new one (the inode check below)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / CLAIM
        self.fd = None
        self.made_dir = False

    def take(self, wait=False):
        import fcntl

        if self.fd is not None:
            return True
        while True:
            try:  # (again, where the holder it waited for removed the folder it had made)
                self.path.parent.mkdir(parents=True)
                self.made_dir = True
            except FileExistsError:
                pass
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise NoLocks(err.errno, f"no file locks on {self.path.parent} ({err.strerror})")
                raise
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def holder(self):
        try:
            return f"process {self.path.read_text().strip()}"
        except OSError:
            return "another process"

    def release(self):
        """Let go of the claim, leaving no trace of it: its file, and the run's folder where
        taking the claim made it and nothing else is in it."""
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)  # while held: a waiter sees it gone and retries
        if self.made_dir:
            try:
                self.path.parent.rmdir()
            except OSError:
                pass  # the run wrote files there: they stay
        os.close(self.fd)
        self.fd = None


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _resume_step(path):
    """The step a checkpoint is at (0 for one that cannot be read: set aside by load_resume)."""
    from rnnrepro.train.loop import load_resume

    ck = load_resume(Path(path), "cpu")
    return ck["state"]["step"] if ck else 0


def promote(staged, final):
    """Move a staged run's files into its run directory, summary.json last."""
    files = sorted(p for p in staged.rglob("*") if p.is_file()
                   and p.name not in ("summary.json", FAILED) and not p.name.startswith("resume.pt"))
    for p in files + [staged / "summary.json"]:
        target = final / p.relative_to(staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, target)
    shutil.rmtree(staged, ignore_errors=True)


def keep_staged(final, staged):
    """Hard links (copies where links fail) of a finished run's files in its staged folder,
    so that its job's next attempt finds the run done even after Snakemake removed them."""
    staged.mkdir(parents=True, exist_ok=True)
    files = sorted(q for q in final.rglob("*") if q.is_file() and STAGED not in q.parts
                   and q.name not in (CLAIM, "summary.json"))
    for p in files + [final / "summary.json"]:  # the summary last: it says the run is done
        target = staged / p.relative_to(final)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(p, target)
        except OSError:
            shutil.copy2(p, target)


@dataclass
class Member:
    entry: Entry
    out: Path
    claim: object  # a Claim, or None where no claims are taken
    fingerprint: str


@dataclass
class Job:
    """The job of run `own`: its placement, and the runs it trains."""

    own: Entry
    execution: object
    table: list = field(default_factory=list)
    inject_nan: dict = None
    device: str = None   # cpu or cuda, once placed
    slot: object = None  # the GPU slot, on CUDA
    trained: int = 0

    def fingerprint(self, entry):
        return fingerprint(entry.spec, entry.corpus if entry.kind == "text" else None)

    def place(self):
        """Choose the device (and take a GPU slot) before torch starts CUDA."""
        if self.device:
            return
        ex = self.execution
        if ex.device != "cpu":
            self.slot = gpus.acquire(ex.jobs_per_gpu, on_wait=lambda n: log.info(
                "all %d GPU slots are taken; waiting for one", n))
            if self.slot is None and ex.device == "cuda":
                raise RuntimeError("execution.device is cuda, but no GPU is visible here "
                                   "(CUDA_VISIBLE_DEVICES, nvidia-smi -L)")
        self.device = "cuda" if self.slot else "cpu"
        if self.slot:
            import torch

            if not torch.cuda.is_available():
                if ex.device == "cuda":
                    raise RuntimeError("execution.device is cuda, but this torch build "
                                       f"cannot use the GPU ({torch.__version__})")
                log.warning("a GPU is visible, but torch %s cannot use it: training on the CPU",
                            torch.__version__)
                gpus.release_all()
                self.slot, self.device = None, "cpu"
            else:
                log.info("placed on %s: %s", self.slot.describe(ex.jobs_per_gpu),
                         torch.cuda.get_device_name(0))

    @property
    def cap(self):
        return self.execution.runs_cap(self.device, in_cluster_job="SLURM_JOB_ID" in os.environ)

    def pending(self, entry):
        """Whether nobody has trained `entry` for the current code."""
        fp = self.fingerprint(entry)
        final = _read_json(entry.dir / "summary.json")
        if final is not None and final.get("fingerprint", fp) == fp:
            return False  # done (a summary without a fingerprint counts as done too)
        staged = entry.dir / STAGED
        if (_read_json(staged / "summary.json") or {}).get("fingerprint") == fp:
            return False
        return (_read_json(staged / FAILED) or {}).get("fingerprint") != fp

    @staticmethod
    def checkpoints(entry):
        """The run's checkpoints (in its run dir, in its staged folder) with their steps."""
        found = [p for p in (entry.dir / "resume.pt", entry.dir / STAGED / "resume.pt") if p.exists()]
        steps = {p: _resume_step(p) for p in found}
        return {p: s for p, s in steps.items() if p.exists()}

    def gather_resume(self, entry, folder, steps=None):
        """Put the run's newest checkpoint in `folder` (dropping an older one); its step."""
        steps = self.checkpoints(entry) if steps is None else steps
        if not steps:
            return 0
        best = max(steps, key=steps.get)
        for p in steps:
            if p != best:
                p.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        if best.parent != folder:
            os.replace(best, folder / "resume.pt")
        return steps[best]

    def take(self, entry):
        """Claim a pending run of someone else's for this job; its Member or None."""
        claim = Claim(entry.dir)
        if not claim.take():
            return None
        if not self.pending(entry):
            claim.release()
            return None
        staged = entry.dir / STAGED
        (staged / FAILED).unlink(missing_ok=True)  # a note from other code than this
        return Member(entry, staged, claim, self.fingerprint(entry))

    def others(self, exclude):
        """Pending runs of others, the longest first (a text run needs its corpus present)."""
        mine = {e.run_id for e in exclude}
        rows = [e for e in self.table if e.run_id not in mine
                and (e.kind != "text" or e.corpus.exists()) and self.pending(e)]
        return sorted(rows, key=Entry.cost, reverse=True)

    def unit(self, head, skip):
        """`head` and the pending runs that can share its step, within the job's cap."""
        step = self.gather_resume(head.entry, head.out)
        members = [head]
        if head.entry.kind != "palindrome" or self.cap <= 1:
            return members
        from rnnrepro.train.stack import stack_key

        key = stack_key(head.entry.spec)
        for e in self.others(skip + [head.entry]):
            if self.trained + len(members) >= self.cap:
                break
            if e.kind != "palindrome" or stack_key(e.spec) != key:
                continue
            m = self.take(e)
            if m is None:
                continue
            steps = self.checkpoints(e)
            if max(steps.values(), default=0) != step:  # another step: another unit
                m.claim.release()
                continue
            self.gather_resume(e, m.out, steps)
            members.append(m)
        return members

    def train(self, members):
        """Train a unit; returns the error of each member (None where it finished)."""
        from rnnrepro.data.corpus import Corpus
        from rnnrepro.train.loop import fit_unit
        from rnnrepro.train.palindrome import PalindromeTask
        from rnnrepro.train.stack import StackedPalindromeTask
        from rnnrepro.train.text import TextTask
        from rnnrepro.train.phased import PhasedTask
        from rnnrepro.train.frequency import FrequencyTask

        ex = self.execution
        specs = [m.entry.spec for m in members]
        if len(members) > 1:
            make = functools.partial(StackedPalindromeTask, specs, impl=ex.impl)
        elif specs[0].kind == "text":
            corpus = Corpus.from_file(members[0].entry.corpus, specs[0].val_fraction)
            make = functools.partial(TextTask, specs[0], corpus=corpus, impl=ex.impl)
        else:
            task = {"palindrome": PalindromeTask, "phased": PhasedTask,
                    "frequency": FrequencyTask}[specs[0].kind]
            make = functools.partial(task, specs[0], impl=ex.impl)
        extra = {"job": self.own.run_id}
        if self.slot:
            import torch

            extra["gpu"] = {"visible_device": self.slot.gpu, "slot": self.slot.index,
                            "jobs_per_gpu": ex.jobs_per_gpu, "name": torch.cuda.get_device_name(0)}
        results = fit_unit(specs, [m.out for m in members], make, replace(ex, device=self.device),
                           inject_nan=self.inject_nan, extra=extra,
                           tags=[{"fingerprint": m.fingerprint} for m in members])
        self.trained += len(members)
        errors = []
        for m, (summary, error) in zip(members, results):
            if m.entry.run_id != self.own.run_id:
                if error:
                    self.note_failure(m, error)
                m.claim.release()
            errors.append(error)
        return errors

    def note_failure(self, member, error):
        write_json(member.out / FAILED, {"fingerprint": member.fingerprint, "error": error,
                                         "job": self.own.run_id})

    def drain(self, skip):
        """Train pending runs of others, a unit at a time, while the cap allows. A unit that
        fails is noted for its runs' own jobs; it never fails this job."""
        while self.trained < self.cap:
            head = next((m for m in map(self.take, self.others(skip)) if m), None)
            if head is None:
                return
            members = [head]
            try:
                members = self.unit(head, skip)
                names = ", ".join(m.entry.run_id for m in members)
                log.info("training for their own jobs: %s (%d of at most %d runs in this job)",
                         names, self.trained + len(members), self.cap)
                self.train(members)
            except Exception as err:  # noqa: BLE001 - reported to each run's own job
                names = ", ".join(m.entry.run_id for m in members)
                log.warning("training %s failed (%s: %s); their own jobs will try again",
                            names, type(err).__name__, err)
                self.trained += len(members)
                for m in members:
                    self.note_failure(m, f"run {m.entry.run_id}: {type(err).__name__}: {err}")
                    m.claim.release()

    def finish_staged(self):
        """The own run, if another job has trained it already: moved into place."""
        staged, fp = self.own.dir / STAGED, self.fingerprint(self.own)
        failed = _read_json(staged / FAILED)
        if failed and failed.get("fingerprint") == fp:
            (staged / FAILED).unlink()
            raise RuntimeError(f"{failed['error']} (trained in the job of run {failed['job']})")
        summary = _read_json(staged / "summary.json")
        if summary and summary.get("fingerprint") == fp:
            promote(staged, self.own.dir)
            log.info("%s was trained in the job of run %s (%s); moved into place",
                     self.own.run_id, summary["execution"]["job"], summary["device"])
            return summary
        return None


def train_job(spec, out, execution, corpus=None, run_table=None, inject_nan_at=None):
    """The job of one run (`rnnrepro train`): its summary, or an error naming the run."""
    if corpus is not None and not Path(corpus).is_file():
        from rnnrepro.data.corpus import Corpus, CorpusError

        Corpus.from_file(corpus)  # names what it is: missing, a folder, empty
        raise CorpusError(f"corpus {corpus}: not a regular file")
    own = Entry(spec, Path(out), Path(corpus) if corpus else None)
    table = read_run_table(run_table) if execution.runs_per_job != 1 else []
    job = Job(own, execution, table, {own.run_id: inject_nan_at} if inject_nan_at else None)
    # The run's claim, also by hand: two commands with one --out (or another job that took
    # this run on) never train it side by side; the second waits, then finds it done.
    claim = Claim(own.dir)
    try:
        if not claim.take():
            log.info("%s is being trained by another job (%s); waiting for it", own.run_id,
                     claim.holder())
            if table:
                job.place()
                if job.cap > 1:
                    job.drain([own])  # meanwhile, train what nobody else is training
            claim.take(wait=True)
    except NoLocks as err:
        log.warning("%s: this job trains its own run only, and nothing keeps a second job off "
                    "it", err)
        job.table, claim = [], None
    try:
        return _train_own(job, own, claim)
    finally:
        if claim:
            claim.release()


def _train_own(job, own, claim):
    """The rest of `train_job`, under the run's claim."""
    done = job.finish_staged()
    if done:
        return done
    final = _read_json(own.dir / "summary.json")
    if final and final.get("run_id") == own.run_id and final.get("fingerprint") == job.fingerprint(own):
        # by hand, or after another job (one Snakemake lost, say) finished it meanwhile:
        # Snakemake itself removes a job's outputs before it runs it
        log.info("%s is already complete in %s for this code and data; nothing to train "
                 "(move the folder away to train it again)", own.run_id, own.dir)
        return final
    job.place()
    members = job.unit(Member(own, own.dir, claim, job.fingerprint(own)), [])
    if len(members) > 1:
        log.info("training %s with %d more pending runs in one step: %s", own.run_id,
                 len(members) - 1, ", ".join(m.entry.run_id for m in members[1:]))
    (error, *_) = job.train(members)
    if error:
        from rnnrepro.train.loop import Diverged

        raise Diverged(error)
    shutil.rmtree(own.dir / STAGED, ignore_errors=True)  # a killed sharing job's leftovers
    if job.cap > 1 and job.table:
        keep_staged(own.dir, own.dir / STAGED)  # until this job ends: see the docstring
        job.drain([own])
        shutil.rmtree(own.dir / STAGED, ignore_errors=True)
    return _read_json(own.dir / "summary.json")
