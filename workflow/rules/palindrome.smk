rule train_palindrome:
    input:
        code=run_code,
    output:
        summary="results/runs/palindrome/{run_id}/summary.json",
        metrics="results/runs/palindrome/{run_id}/metrics.csv",
        evals="results/runs/palindrome/{run_id}/eval.csv",
        timing="results/runs/palindrome/{run_id}/timing.csv",
        model="results/runs/palindrome/{run_id}/model.pt",
    params:
        args=train_args,
        out=lambda wildcards, output: Path(output.summary).parent,
    log:
        "logs/train/palindrome/{run_id}.log",
    benchmark:
        "results/compute/palindrome/{run_id}.tsv"
    threads: EXEC.threads
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=train_runtime,
        execution=EXEC_ARGS,
    conda:
        ENV
    shell:
        # resume.pt, left beside the outputs by an interrupted attempt, is picked up here
        "rnnrepro train palindrome {params.args} {resources.execution} --threads {threads}"
        " --out={params.out:q} > {log:q} 2>&1"
