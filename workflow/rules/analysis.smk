# Tables and figures. Each figure depends only on the studies it draws.
# Short jobs run where Snakemake runs, also under a cluster executor; the bench does not:
# it times the CPU it runs on, which must be a compute node, not a login node.
localrules:
    aggregate_study,
    compute_table,
    figure,
    grad_probe,


rule aggregate_study:
    input:
        summaries=lambda wildcards: study_files(wildcards.study, "summary.json"),
        code=command_code("aggregate"),
    output:
        runs=study_table("{study}", "runs"),
        curves=study_table("{study}", "curves"),
        evals=study_table("{study}", "evals"),
        samples=study_table("{study}", "samples"),
    params:
        runs=lambda wildcards, input: [Path(p).parent for p in input.summaries],
        out=lambda wildcards, output: Path(output.runs).parent,
        threshold=REPORT["convergence_threshold"],  # the runs' outcomes are read against it
    log:
        "logs/aggregate/{study}.log",
    conda:
        ENV
    shell:
        "rnnrepro aggregate --study={wildcards.study} --runs {params.runs:q}"
        " --out-dir={params.out:q} --threshold={params.threshold} > {log:q} 2>&1"


rule compute_table:
    input:
        summaries=[run_file(r, "summary.json") for r in RUNS],
        code=command_code("compute-table"),
    output:
        "results/tables/compute.csv",
    params:
        # Snakemake's benchmark file of each training job, read where present: not an input,
        # so that a deleted one retrains nothing (the table leaves that job's time out)
        benchmarks=[f"results/compute/{RUNS[r].kind}/{r}.tsv" for r in RUNS],
    log:
        "logs/compute_table.log",
    conda:
        ENV
    shell:
        "rnnrepro compute-table --benchmarks {params.benchmarks:q} --summaries {input.summaries:q}"
        " --out={output:q} > {log:q} 2>&1"


rule grad_probe:
    input:
        code=command_code("grad-probe"),
    output:
        "results/tables/grad_norms.csv",
    params:
        length=config["report"]["probe_length"],
    log:
        "logs/grad_probe.log",
    threads: 1
    conda:
        ENV
    shell:
        "rnnrepro grad-probe --models rnn lstm phased --input-length={params.length}"
        " --out={output:q} > {log:q} 2>&1"


rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../../report/captions/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    params:
        caption=lambda wildcards: rst_caption(wildcards.figure),  # for the HTML report
        smoothing=REPORT["smoothing_window"],
        threshold=REPORT["convergence_threshold"],
    log:
        "logs/figures/{figure}.log",
    conda:
        ENV
    shell:
        "rnnrepro figure {wildcards.figure} --tables results/tables"
        " --smoothing={params.smoothing}"
        " --threshold={params.threshold} --out {output.pdf:q} {output.png:q} > {log:q} 2>&1"


rule bench:
    """Speed of the training step against a course-style baseline, in one process. Run here,
    it takes every core, so that no other job runs beside it while it times; in a cluster
    job, as many cores as the largest thread count it times."""
    input:
        corpus=config["corpus"]["path"],
        baseline="benchmarks/course_baseline.py",
        module="benchmarks/speed.py",
        code=command_code("bench"),
    output:
        "results/benchmarks/bench.csv",
    params:
        quick="--quick" if config["bench"]["quick"] else "",
        threads=config["bench"]["threads"],
    log:
        "logs/bench.log",
    threads: lambda wildcards: workflow.cores if workflow.local_exec else max(config["bench"]["threads"])
    conda:
        ENV
    shell:
        "rnnrepro bench --corpus={input.corpus:q} --baseline={input.baseline:q}"
        " --module={input.module:q}"
        " --threads {params.threads} {params.quick} --out {output:q} > {log:q} 2>&1"
