# The claims scorecard and the report: Jinja2 templates -> LaTeX -> PDF (latexmk or tectonic).


localrules:
    save_config,
    scorecard,
    render_report,
    compile_report,


rule save_config:
    """The resolved config (defaults filled in) for the report's provenance; rewritten when
    any value changes (a params trigger). A shell rule, not a run: block: Snakemake runs a
    run: block through a second Snakemake whose Snakefile path it quotes for the shell with
    Python's repr, which a checkout path holding a quote and a $ breaks (snakemake#2981)."""
    output:
        "results/report/config.json",
    params:
        config=json.dumps(config, sort_keys=True),
    log:
        "logs/save_config.log",
    conda:
        ENV
    shell:
        "rnnrepro save-config --out={output:q} -- {params.config:q} > {log:q} 2>&1"


rule scorecard:
    input:
        tables=all_study_tables(),
        corpus="results/tables/corpus_stats.json",
        extrapolation=EXTRAPOLATION,
        code=command_code("scorecard"),
    output:
        main=report(
            "results/tables/scorecard.csv",
            caption="../../report/captions/scorecard.rst",
            category="Claims",
        ),
        init="results/tables/scorecard_init.csv",
    params:
        threshold=REPORT["convergence_threshold"],
        target=REPORT["frequency_target"],
        size=REPORT["extrapolation_size"],
    log:
        "logs/scorecard.log",
    conda:
        ENV
    shell:
        "rnnrepro scorecard --tables-dir results/tables --threshold={params.threshold}"
        " --frequency-target={params.target} --extrapolation-size={params.size}"
        " --out {output.main:q} --init-out {output.init:q}"
        " > {log:q} 2>&1"


rule render_report:
    input:
        figures=expand("results/figures/{figure}.pdf", figure=ACTIVE_FIGURES),
        tables=all_study_tables(),
        text=([study_table(TEXT_STUDY, t) for t in ("curves", "samples")] if HAS_TEXT else []),
        scorecard=rules.scorecard.output.main,
        scorecard_init=rules.scorecard.output.init,
        corpus="results/tables/corpus_stats.json",
        compute="results/tables/compute.csv",
        completions="results/tables/completions.jsonl" if HAS_TEXT else [],
        grad_norms="results/tables/grad_norms.csv",
        extrapolation=EXTRAPOLATION,
        bench=rules.bench.output if config["bench"]["enabled"] else [],
        templates=sorted(str(p) for p in Path("report/templates").glob("*.tex.j2")),
        code=command_code("report"),
        config="results/report/config.json",
    output:
        tex="results/report/report.tex",
    params:
        figures=ACTIVE_FIGURES,
        bench=lambda wildcards, input: f"--bench {input.bench}" if input.bench else "",
    log:
        "logs/render_report.log",
    conda:
        ENV
    shell:
        "rnnrepro report --tables-dir results/tables --figures-dir results/figures"
        " --figures {params.figures} --config {input.config:q} {params.bench}"
        " --templates report/templates --tex {output.tex:q} > {log:q} 2>&1"


rule compile_report:
    """The PDF, where TeX is installed (else the workflow makes everything but this file)."""
    input:
        tex=rules.render_report.output.tex,
        figures=rules.render_report.input.figures,
        code=command_code("pdf"),
    output:
        report(
            "results/report/report.pdf",
            caption="../../report/captions/report_pdf.rst",
            category="Report",
        ),
    log:
        "logs/compile_report.log",
    conda:
        REPORT_ENV
    shell:
        "rnnrepro pdf --tex {input.tex:q} --pdf {output:q} > {log:q} 2>&1"
