rule train_text:
    # the longest jobs (20 min each on one CPU core) first, so they do not end the run alone
    priority: 50
    input:
        code=run_code,
        corpus=config["corpus"]["path"],
    output:
        summary="results/runs/text/{run_id}/summary.json",
        metrics="results/runs/text/{run_id}/metrics.csv",
        evals="results/runs/text/{run_id}/eval.csv",
        timing="results/runs/text/{run_id}/timing.csv",
        samples="results/runs/text/{run_id}/samples.jsonl",
        best_samples="results/runs/text/{run_id}/best_samples.jsonl",
        model="results/runs/text/{run_id}/model.pt",
    params:
        args=train_args,
        out=lambda wildcards, output: Path(output.summary).parent,
    log:
        "logs/train/text/{run_id}.log",
    benchmark:
        "results/compute/text/{run_id}.tsv"
    threads: EXEC.threads
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=train_runtime,
        execution=EXEC_ARGS,
    conda:
        ENV
    shell:
        # checkpoints/ (weights at every sample step, and best.pt at the lowest held-out loss) stays beside the outputs for re-sampling
        "rnnrepro train text {params.args} {resources.execution} --threads {threads}"
        " --corpus={input.corpus:q} --out={params.out:q}"
        " > {log:q} 2>&1"


localrules:
    complete_text,


rule complete_text:
    """Bonus: long completions of the report's prompts by the reference run's final model."""
    input:
        model=lambda wildcards: run_file(text_reference_run(), "model.pt"),
        code=command_code("complete"),
    output:
        "results/tables/completions.jsonl",
    params:
        prompts=REPORT["prompts"],
        length=REPORT["completion_length"],
    log:
        "logs/complete_text.log",
    conda:
        ENV
    shell:
        "rnnrepro complete --checkpoint={input.model:q} --length={params.length}"
        " --methods greedy random --temperature=1.0 --out={output:q} -- {params.prompts:q}"
        " > {log:q} 2>&1"
