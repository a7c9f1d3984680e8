# Section 2's runs: the phased LSTM on palindromes (kind phased) and the frequency task
# (kind frequency), one rule for both; their files are the palindrome runs' (the
# evaluations add the time gate's measures).


rule train_timed:
    input:
        code=run_code,
    output:
        summary="results/runs/{kind}/{run_id}/summary.json",
        metrics="results/runs/{kind}/{run_id}/metrics.csv",
        evals="results/runs/{kind}/{run_id}/eval.csv",
        timing="results/runs/{kind}/{run_id}/timing.csv",
        model="results/runs/{kind}/{run_id}/model.pt",
    wildcard_constraints:
        kind="|".join(TIMED_KINDS),
    params:
        args=train_args,
        out=lambda wildcards, output: Path(output.summary).parent,
    log:
        "logs/train/{kind}/{run_id}.log",
    benchmark:
        "results/compute/{kind}/{run_id}.tsv"
    threads: EXEC.threads
    resources:
        gpu=GPU,
        mem_mb=MEM_MB,
        runtime=train_runtime,
        execution=EXEC_ARGS,
    conda:
        ENV
    shell:
        "rnnrepro train {wildcards.kind} {params.args} {resources.execution} --threads {threads}"
        " --out={params.out:q} > {log:q} 2>&1"


localrules:
    extrapolate,


rule extrapolate:
    input:
        models=[run_file(r, "model.pt") for _, r in extrapolation_runs()],
        code=command_code("extrapolate"),
    output:
        "results/tables/extrapolation.csv",
    params:
        runs=[f"{s}={run_file(r, '')}" for s, r in extrapolation_runs()],
        lengths=REPORT["extrapolation_lengths"],
        size=REPORT["extrapolation_size"],
    log:
        "logs/extrapolate.log",
    conda:
        ENV
    shell:
        "rnnrepro extrapolate --runs {params.runs:q} --lengths {params.lengths}"
        " --size={params.size} --out={output:q} > {log:q} 2>&1"
